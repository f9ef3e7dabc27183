/**
 * What one client can make the API spend, bounded: rule work runs off the thread that serves
 * requests within time, memory and concurrency budgets; names and nesting have limits;
 * clients without a valid key are rate-limited before any lookup; slow bodies are cut; very
 * long ids get a problem document.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { eventually } from '../test/harness/eventually.ts';
import { startTestApp, type TestApp } from './testing/harness.ts';

let normal: TestApp;
let tight: TestApp;

beforeAll(async () => {
  normal = await startTestApp('api-limits', { api: { previewConcurrency: 1 } });
  tight = await startTestApp('api-limits-tight', {
    api: {
      ruleCheckTimeout: '100ms',
      previewTimeout: '1ms',
      unauthenticatedPerMinute: 5,
      requestTimeout: '1s',
    },
  });
});
afterAll(async () => {
  await normal?.close();
  await tight?.close();
});

/** The largest rule text the API accepts (262,144 characters), of many long unknown names. */
function largestRule(): string {
  const name = (n: number) => `f${n}_${'a'.repeat(200)}`;
  let where = name(0);
  for (let n = 1; where.length < 261_000; n++) where += ` == 1 or ${name(n)}`;
  return `rule big {\n  title "t"\n  severity low\n  where ${where} == 1\n}\n`.slice(0, 262_144);
}

const validate = (t: TestApp, text: string) =>
  t.app.inject({
    method: 'POST',
    url: '/api/v1/rules/validate',
    headers: { ...t.auth('analyst'), 'content-type': 'application/json' },
    payload: JSON.stringify({ text }),
  });

describe('rule work off the request thread, within budgets', () => {
  it('answers liveness while the largest accepted rule is being checked', async () => {
    let settled = false;
    const checking = validate(normal, largestRule()).then((r) => {
      settled = true;
      return r;
    });
    // The check is under way in the sandbox worker...
    await eventually(
      async () => normal.app.gatewatch.sandbox.check.load,
      (n) => n > 0,
      { intervalMs: 5 },
    );
    // ...and the thread that serves requests is free meanwhile.
    const live = await normal.app.inject({ method: 'GET', url: '/health/live' });
    expect(live.statusCode).toBe(200);
    expect(settled).toBe(false);
    const checked = await checking;
    expect(checked.statusCode).toBe(200);
    expect(checked.json().valid).toBe(false);
  });

  it('stops a check past its time budget with a problem saying what to do', async () => {
    const r = await validate(tight, largestRule());
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ type: 'urn:gatewatch:problem:rule-too-complex' });
    expect(r.json().detail).toMatch(/stopped after its 0\.1 s budget; shorten or split it/);
  });

  it('refuses names longer than 256 characters and nesting deeper than 64 levels, at once', async () => {
    const long = await validate(
      normal,
      `rule r {\n  title "t"\n  severity low\n  where ${'x'.repeat(300)} == 1\n}\n`,
    );
    expect(long.json().diagnostics.map((d: { code: string }) => d.code)).toEqual(['too-long']);
    const deep = await validate(
      normal,
      `rule r {\n  title "t"\n  severity low\n  where ${'('.repeat(500)}http.response.status_code == 1${')'.repeat(500)}\n}\n`,
    );
    expect(deep.json().diagnostics.map((d: { code: string }) => d.code)).toEqual(['too-deep']);
    const filter = await normal.app.inject({
      method: 'POST',
      url: '/api/v1/events/search',
      headers: normal.auth('viewer'),
      payload: {
        filter: `${'not '.repeat(2_000)}source.ip exists`,
        from: '2026-01-01T00:00:00Z',
        to: '2026-01-02T00:00:00Z',
      },
    });
    expect(filter.statusCode).toBe(400);
    expect(filter.json().errors[0].message).toMatch(/^too-deep: expression nested more than 64 levels deep/);
  });

  it('runs previews one at a time here (previewConcurrency 1), refusing beyond one waiting', async () => {
    const preview = () =>
      normal.app.inject({
        method: 'POST',
        url: '/api/v1/rules/preview',
        headers: normal.auth('analyst'),
        payload: {
          rule_id: 'forced-browsing-enumeration',
          from: '2026-02-01T00:00:00Z',
          to: '2026-02-02T00:00:00Z',
        },
      });
    const answers = await Promise.all(Array.from({ length: 6 }, preview));
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    const refused = answers.filter((a) => a.statusCode === 503);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]!.json()).toMatchObject({ type: 'urn:gatewatch:problem:busy' });
    expect(Number(refused[0]!.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('answers a broad preview with at most 1,000 incidents, saying how many there were', async () => {
    await installCoreTemplates(normal.it.es, { prefix: normal.it.prefix });
    const index = indexNames(normal.it.prefix).eventsIndexFor('2026-03-01T00:00:00Z');
    const operations = Array.from({ length: 1_500 }, (_, i) => [
      { create: { _index: index, _id: `wide-${i}` } },
      {
        '@timestamp': new Date(Date.parse('2026-03-01T10:00:00Z') + i * 1000).toISOString(),
        event: { id: `wide-${i}`, kind: 'event', dataset: 'nginx.access' },
        source: { ip: `10.9.${i >> 8}.${i & 255}` },
        gatewatch: { route: '/admin/wide' },
        http: { response: { status_code: 403 } },
      },
    ]).flat();
    expect((await normal.it.es.bulk({ operations, refresh: true })).errors).toBe(false);
    const r = await normal.app.inject({
      method: 'POST',
      url: '/api/v1/rules/preview',
      headers: normal.auth('analyst'),
      payload: {
        text: 'rule wide {\n  title "wide"\n  severity low\n  where gatewatch.route == "/admin/wide"\n}\n',
        from: '2026-03-01T00:00:00Z',
        to: '2026-03-02T00:00:00Z',
      },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().detections).toBe(1_500);
    expect(r.json().raw_detections).toHaveLength(1_000);
    expect(r.json().incidents.length).toBeLessThanOrEqual(1_000);
    expect(r.json().degraded.reason).toMatch(
      /^showing the first \d+ of \d+ incidents and 1000 of 1500 detections$/,
    );
  });

  it('stops a preview past its time budget', async () => {
    const r = await tight.app.inject({
      method: 'POST',
      url: '/api/v1/rules/preview',
      headers: tight.auth('analyst'),
      payload: {
        rule_id: 'forced-browsing-enumeration',
        from: '2026-02-01T00:00:00Z',
        to: '2026-02-02T00:00:00Z',
      },
    });
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ type: 'urn:gatewatch:problem:preview-too-expensive' });
  });
});

describe('limits on what a client without a key or with odd requests costs', () => {
  it('cuts a body that arrives too slowly (requestTimeout) instead of waiting 300 s', async () => {
    await tight.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (tight.app.server.address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let closed = false;
    socket.on('data', (d) => (answer += d));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    socket.write(
      `POST /api/v1/rules/validate HTTP/1.1\r\nHost: x\r\n${Object.entries(tight.auth('analyst'))
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n')}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"text":"`,
    );
    const seen = await eventually(
      async () => ({ answer, closed }),
      (s) => s.closed,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    socket.destroy();
    expect(seen.closed).toBe(true);
    expect(seen.answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('rate-limits requests without a valid key per address before looking keys up', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await tight.app.inject({
        method: 'GET',
        url: '/api/v1/rules',
        headers: { authorization: `Bearer gw_${String(i).padStart(16, '0')}_${'x'.repeat(43)}` },
      });
      statuses.push(r.statusCode);
      if (r.statusCode === 429) {
        expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
      }
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
  });

  it('answers an id longer than 2,048 characters with a problem document', async () => {
    const r = await normal.app.inject({
      method: 'GET',
      url: `/api/v1/rules/${'a'.repeat(3_000)}`,
      headers: normal.auth('viewer'),
    });
    expect(r.statusCode).toBeGreaterThanOrEqual(400);
    expect(r.statusCode).toBeLessThan(500);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.json()).toMatchObject({ status: r.statusCode });
  });
});
