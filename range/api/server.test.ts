import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorld } from '../world.ts';
import { createRangeApi } from './server.ts';

const world = buildWorld(3);
const server = createRangeApi(world);
let base = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function call(
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(base + path, init);
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

const form = (o: Record<string, string>): RequestInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(o).toString(),
});
const jsonBody = (o: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(o),
});

describe('range test API', () => {
  const alice = world.accounts[4]!;
  const partner = world.apiClients[0]!;

  it('logs in by form and JSON body; wrong or missing credentials are 401 / 400', async () => {
    const ok = await call('/api/login', form({ username: alice.username, password: alice.password }));
    expect(ok.status).toBe(200);
    expect(String(ok.body.token)).toMatch(/^eyJ/);
    expect(
      (await call('/api/login', jsonBody({ username: alice.username, password: alice.password }))).status,
    ).toBe(200);
    expect((await call('/api/login', jsonBody({ username: alice.username, password: 'nope' }))).status).toBe(
      401,
    );
    expect((await call('/api/login', jsonBody({ username: alice.username }))).status).toBe(400);
    expect((await call('/api/login')).status).toBe(405);
  });

  it('guards /basic/reports with basic auth', async () => {
    const s = world.staff[0]!;
    const auth = (u: string, p: string) => ({
      headers: { Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` },
    });
    expect((await call('/basic/reports', auth(s.username, s.password))).status).toBe(200);
    const denied = await fetch(`${base}/basic/reports`, auth(s.username, 'wrong'));
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toBe('Basic realm="reports"');
  });

  it('issues tokens: client credentials (body or basic) and password grant', async () => {
    const c = world.oauthClients[0]!;
    expect(
      (
        await call(
          '/oauth/token',
          form({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.secret }),
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await call('/oauth/token', {
          ...form({ grant_type: 'client_credentials' }),
          headers: {
            'Content-Type': 'application/x-www-form-urlencoded',
            Authorization: `Basic ${Buffer.from(`${c.clientId}:${c.secret}`).toString('base64')}`,
          },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await call(
          '/oauth/token',
          form({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: 'x' }),
        )
      ).status,
    ).toBe(401);
    expect(
      (
        await call(
          '/oauth/token',
          form({ grant_type: 'password', username: alice.username, password: alice.password }),
        )
      ).status,
    ).toBe(200);
    expect(
      (await call('/oauth/token', form({ grant_type: 'password', username: alice.username, password: 'x' })))
        .body.error,
    ).toBe('invalid_grant');
  });

  it('enforces object ownership: 200 own, 403 others, 404 missing, 401 anonymous', async () => {
    const token = String(
      (await call('/api/login', jsonBody({ username: alice.username, password: alice.password }))).body.token,
    );
    const bearer = { headers: { Authorization: `Bearer ${token}` } };
    expect((await call(`/api/users/${alice.id}/addresses`, bearer)).status).toBe(200);
    expect((await call(`/api/users/${alice.id + 1}/addresses`, bearer)).status).toBe(403);
    expect((await call(`/api/users/${world.accounts.length + 5}/orders`, bearer)).status).toBe(404);
    expect((await call(`/api/users/${alice.id}/addresses`)).status).toBe(401);
    // an API key acts for its owner
    expect(
      (await call(`/api/users/${partner.ownerId}/orders`, { headers: { 'X-API-Key': partner.key } })).status,
    ).toBe(200);
  });

  it('pages listings by page, offset and cursor, with the key in a header or the query', async () => {
    const p2 = await call('/api/products?page=2', { headers: { 'X-API-Key': partner.key } });
    expect(p2.status).toBe(200);
    expect(p2.body.offset).toBe(20);
    const off = await call(`/api/products?offset=40&limit=10&api_key=${partner.key}`);
    expect((off.body.items as unknown[]).length).toBe(10);
    const cur = await call(`/api/products?limit=5&cursor=${String(off.body.next_cursor)}`, {
      headers: { 'X-API-Key': partner.key },
    });
    expect(cur.body.offset).toBe(50);
    expect((await call('/api/products?page=1')).status).toBe(401);
    expect((await call('/api/products?page=x', { headers: { 'X-API-Key': partner.key } })).status).toBe(400);
  });

  it('answers GraphQL queries and a login mutation; fails on purpose on /api/fail', async () => {
    const ok = await call(
      '/graphql',
      jsonBody({
        query:
          'mutation Login($username: String!, $password: String!) { login(username: $username, password: $password) { token } }',
        variables: { username: alice.username, password: alice.password },
      }),
    );
    expect((ok.body.data as { login: { token: string } }).login.token).toMatch(/^eyJ/);
    const bad = await call(
      '/graphql',
      jsonBody({ query: 'mutation { login(username: "a", password: "b") { token } }', variables: {} }),
    );
    expect(bad.status).toBe(200);
    expect(bad.body.errors).toBeDefined();
    expect((await call('/graphql', jsonBody({}))).status).toBe(400);
    expect((await call('/api/fail?code=503')).status).toBe(503);
    expect((await call('/api/fail?code=500')).status).toBe(500);
    expect((await call('/nope')).status).toBe(404);
  });
});
