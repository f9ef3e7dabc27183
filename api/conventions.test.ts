/**
 * One API convention (issue 19, items 18 and 19), checked on the OpenAPI document and on
 * requests to the embedded API over a real SQLite file:
 * - every list answers `items` (paged ones with `next_cursor`), every page size is `limit`,
 *   and the older `size` is answered with a 400 naming `limit`;
 * - a value outside an enumeration is one error naming the allowed values, not one
 *   "must be equal to constant" per alternative.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import { buildEmbeddedApp } from '../embedded/app.ts';
import { EmbeddedStore } from '../embedded/store.ts';

let store: EmbeddedStore;
let app: FastifyInstance;
let admin: { authorization: string };

beforeAll(async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'gw-conventions-')), 'store.sqlite');
  store = new EmbeddedStore(path);
  app = await buildEmbeddedApp({ config: loadConfig({ env: {} }), store, path });
  await app.ready();
  admin = { authorization: `Bearer ${(await app.gatewatch.keys.create('admin', 'test', 'test')).token}` };
});
afterAll(async () => {
  await app?.close();
  store?.close();
});

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
}
interface Operation {
  parameters?: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses?: Record<string, { content?: Record<string, { schema: Schema }> }>;
}

/** Results of running rules, not lists of a collection: they name what they hold. */
const RESULTS = new Set(['POST /api/v1/rules/test', 'POST /api/v1/rules/preview']);

describe('the OpenAPI document', () => {
  it('names every list `items` and every page size `limit`, and says so', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json', headers: admin })).json() as {
      info: { description: string };
      paths: Record<string, Record<string, Operation>>;
    };
    const lists: string[] = [];
    const offenders: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const name = `${method.toUpperCase()} ${path}`;
        const body = op.requestBody?.content?.['application/json']?.schema?.properties ?? {};
        const inputs = new Set([...(op.parameters ?? []).map((p) => p.name), ...Object.keys(body)]);
        if (inputs.has('size')) offenders.push(`${name} takes "size"`);
        const answer = op.responses?.['200']?.content?.['application/json']?.schema?.properties ?? {};
        const arrays = Object.entries(answer)
          .filter(([, p]) => p.type === 'array')
          .map(([k]) => k);
        // a list: it pages (limit, cursor) or its answer is one array
        const isList =
          inputs.has('limit') ||
          inputs.has('cursor') ||
          (arrays.length === 1 && Object.keys(answer).length <= 2);
        if (!isList || RESULTS.has(name)) continue;
        lists.push(name);
        if (!arrays.includes('items')) offenders.push(`${name} answers its list as ${arrays.join(', ')}`);
        if (inputs.has('cursor') && !('next_cursor' in answer)) offenders.push(`${name} has no next_cursor`);
      }
    }
    expect(offenders).toEqual([]);
    expect(lists).toEqual(
      expect.arrayContaining([
        'GET /api/v1/incidents',
        'POST /api/v1/events/search',
        'GET /api/v1/ingest/dead-letters',
        'GET /api/v1/audit',
        'GET /api/v1/rules/{id}/runs',
        'GET /api/v1/inventory/endpoints',
      ]),
    );
    expect(doc.info.description).toContain('The page size is `limit` on every endpoint');
  });
});

describe('requests', () => {
  const get = (url: string) => app.inject({ method: 'GET', url, headers: admin });

  it('answer the old page-size name with a 400 naming `limit`', async () => {
    for (const url of ['/api/v1/audit?size=5', '/api/v1/ingest/dead-letters?size=5']) {
      const r = await get(url);
      expect(r.statusCode, url).toBe(400);
      expect(r.json().errors).toEqual([
        {
          field: '/querystring/size',
          message: '`size` is not a parameter: the page size is `limit` (one name across the API)',
        },
      ]);
    }
    const search = await app.inject({
      method: 'POST',
      url: '/api/v1/events/search',
      headers: admin,
      payload: {
        filter: 'source.ip exists',
        from: '2026-01-01T00:00:00Z',
        to: '2026-01-02T00:00:00Z',
        size: 5,
      },
    });
    expect(search.statusCode).toBe(400);
    expect(search.json().errors).toEqual([
      {
        field: '/body/size',
        message: '`size` is not a field: the page size is `limit` (one name across the API)',
      },
    ]);
    const page = await app.inject({
      method: 'POST',
      url: '/api/v1/events/search',
      headers: admin,
      payload: {
        filter: 'source.ip exists',
        from: '2026-01-01T00:00:00Z',
        to: '2026-01-02T00:00:00Z',
        limit: 5,
      },
    });
    expect(page.statusCode).toBe(200);
    expect(page.json()).toEqual({ items: [], next_cursor: null });
    expect((await get('/api/v1/audit?limit=5')).statusCode).toBe(200);
  });

  it('name an unknown parameter once, with the known ones', async () => {
    const r = await get('/api/v1/incidents?colour=red');
    expect(r.statusCode).toBe(400);
    expect(r.json().errors).toEqual([
      {
        field: '/querystring/colour',
        message: expect.stringMatching(/^`colour` is not a parameter here \(known: status, severity, /),
      },
    ]);
  });

  it('answer a bad enumeration value with one error naming the allowed values', async () => {
    const r = await get('/api/v1/incidents?severity=urgent');
    expect(r.statusCode).toBe(400);
    expect(r.json().errors).toEqual([
      { field: '/querystring/severity/0', message: '"urgent" is not one of: low, medium, high, critical' },
    ]);
    expect(r.json().detail).toBe(
      'request validation failed: /querystring/severity/0 "urgent" is not one of: low, medium, high, critical',
    );
    const sort = await get('/api/v1/incidents?sort=title&order=up');
    expect(sort.json().errors).toEqual([
      { field: '/querystring/sort', message: '"title" is not one of: created_at, last_seen, severity, risk' },
      { field: '/querystring/order', message: '"up" is not one of: asc, desc' },
    ]);
    const patch = await app.inject({
      method: 'PATCH',
      url: '/api/v1/incidents/inc-1',
      headers: admin,
      payload: { status: 'closed', assignee: 5 },
    });
    expect(patch.statusCode).toBe(400);
    expect(patch.json().errors).toEqual([
      {
        field: '/body/status',
        message: '"closed" is not one of: new, triaged, in_remediation, resolved, false_positive',
      },
      { field: '/body/assignee', message: 'must be one of: string, null' },
    ]);
  });
});
