/**
 * Rule coverage on the real store: GET /api/v1/rules/coverage and `gatewatch rules coverage`
 * over events indexed in Elasticsearch as gateways log them (no ASN, no usernames, no TLS
 * fingerprint), and the embedded store's port.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { startTestApp, type TestApp } from './testing/harness.ts';

let t: TestApp;

function kongLogin(n: number) {
  return {
    '@timestamp': new Date(Date.parse('2026-03-01T10:00:00Z') + n * 1000).toISOString(),
    event: { id: `cov-${n}`, kind: 'event', dataset: 'kong.http_log' },
    source: { ip: `203.0.113.${n % 40}` },
    url: { path: '/api/login' },
    http: { request: { method: 'POST' }, response: { status_code: n % 10 === 0 ? 200 : 401 } },
    user_agent: { original: 'Mozilla/5.0' },
    gatewatch: {
      source: { name: 'kong', format: 'kong.http_log' },
      route: '/api/login',
      resource: '/api/login',
      network: { id: `203.0.113.0/24`, kind: 'prefix' },
      auth: { attempt: true, endpoint: true, outcome: n % 10 === 0 ? 'success' : 'failure' },
    },
  };
}

beforeAll(async () => {
  t = await startTestApp('coverage');
  await installCoreTemplates(t.it.es, { prefix: t.it.prefix });
  const index = indexNames(t.it.prefix).eventsIndexFor('2026-03-01T00:00:00Z');
  const docs = Array.from({ length: 60 }, (_, n) => kongLogin(n));
  const r = await t.it.es.bulk({
    operations: docs.flatMap((doc) => [{ create: { _index: index, _id: doc.event.id } }, doc]),
    refresh: true,
  });
  expect(r.errors).toBe(false);
});
afterAll(async () => {
  await t?.close();
});

describe('rule coverage', () => {
  test('GET /api/v1/rules/coverage says which rules cannot fire on these events, and why', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/rules/coverage',
      headers: t.auth('viewer'),
    });
    expect(res.statusCode).toBe(200);
    const report = res.json();
    expect(report.events).toBe(60);
    expect(report.sources).toEqual([{ name: 'kong', events: 60 }]);
    const byRule = Object.fromEntries(report.rules.map((r: { rule: string }) => [r.rule, r]));
    expect(byRule['credential-stuffing-single-source'].verdict).toBe('can fire');
    expect(byRule['api-key-impossible-travel'].verdict).toBe('cannot fire');
    expect(byRule['credential-stuffing-distributed-ja3'].reasons.join()).toContain('no TLS fingerprint');
    expect(byRule['credential-stuffing-single-source'].fields).toContainEqual({
      field: 'gatewatch.auth.attempt',
      share: { kong: 1 },
    });
    expect(report.summary).toMatch(/rules cannot fire on these logs: .*no country \(2\)/);
    // A time range without events: nothing can fire.
    const empty = await t.app.inject({
      method: 'GET',
      url: '/api/v1/rules/coverage?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z',
      headers: t.auth('viewer'),
    });
    expect(empty.json().events).toBe(0);
    const n = empty.json().rules.length;
    expect(empty.json().summary).toBe(`${n} of ${n} rules cannot fire on these logs: no events (${n})`);
  });

  test('gatewatch rules coverage prints the same report from Elasticsearch', () => {
    const out = execFileSync(process.execPath, ['cli/gatewatch.ts', 'rules', 'coverage', '--json'], {
      env: {
        ...process.env,
        ELASTICSEARCH_URL: t.it.elasticsearchUrl,
        GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: t.it.prefix,
      },
      encoding: 'utf8',
    });
    const report = JSON.parse(out);
    expect(report.events).toBe(60);
    expect(report.rules.find((r: { rule: string }) => r.rule === 'api-key-impossible-travel').verdict).toBe(
      'cannot fire',
    );
  });
});
