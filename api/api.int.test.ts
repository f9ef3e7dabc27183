/**
 * Rules, events, ingest administration, keys, operations; the authorisation matrix over every
 * route and role; the OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { buildPartials } from '../detections/partials/build.ts';
import { PartialFolder, partialRule } from '../detections/partials/fold.ts';
import { writeBatchPartials } from '../detections/partials/store.ts';
import { startIngest } from '../ingest/runtime.ts';
import { loadRuleFiles } from '../parser/index.ts';
import { eventually } from '../test/harness/eventually.ts';
import { ACCESS_ROLES } from './app.ts';
import { ROLES } from './auth/keys.ts';
import { CONSOLE_ROUTES } from './console.ts';
import { startTestApp, type TestApp } from './testing/harness.ts';

let t: TestApp;

const RULE = (title = 'Admin route probed') => `rule admin-probe {
  title "${title}"
  severity medium
  tags ["API5:2023"]
  where gatewatch.route startswith "/admin" and http.response.status_code >= 400
  incident {
    entities ip: source.ip
  }
}
`;

function event(n: number, overrides: Record<string, unknown> = {}) {
  return {
    '@timestamp': new Date(Date.parse('2026-02-01T10:00:00Z') + n * 1000).toISOString(),
    event: { id: `ev-${String(n).padStart(4, '0')}`, kind: 'event', dataset: 'nginx.access' },
    source: { ip: `198.51.100.${n % 3}` },
    http: { request: { method: n % 2 ? 'GET' : 'POST' }, response: { status_code: n % 5 === 0 ? 403 : 200 } },
    gatewatch: { route: n % 2 ? '/admin/users' : '/orders/{id}' },
    ...overrides,
  };
}

beforeAll(async () => {
  t = await startTestApp('api-main');
  await installCoreTemplates(t.it.es, { prefix: t.it.prefix });
  const index = indexNames(t.it.prefix).eventsIndexFor('2026-02-01T00:00:00Z');
  const operations = Array.from({ length: 30 }, (_, n) => event(n)).flatMap((doc) => [
    { create: { _index: index, _id: doc.event.id } },
    doc,
  ]);
  const r = await t.it.es.bulk({ operations, refresh: true });
  expect(r.errors).toBe(false);
  // Sources and dead letters as the ingest pipeline leaves them: a worker takes a batch with two
  // lines it cannot parse, stores them as dead letters and counts them per source in Redis.
  const ingest = await startIngest(t.config, { workers: 1, refresh: true });
  try {
    await ingest.producer.enqueue(
      { source: 'edge-nginx', receivedAt: Date.parse('2026-02-01T10:00:00Z') },
      ['garbage one', 'garbage two'],
      'api-main-seed',
    );
    await eventually(
      async () => (await t.ports.ingest.sources())[0]?.errors_total ?? 0,
      (n) => n === 2,
    );
  } finally {
    await ingest.close();
  }
});
afterAll(async () => {
  await t?.close();
});

const call = (
  method: string,
  url: string,
  role: (typeof ROLES)[number] | null,
  payload?: Record<string, unknown>,
) =>
  t.app.inject({
    method: method as 'GET',
    url,
    headers: role ? t.auth(role) : {},
    ...(payload !== undefined ? { payload } : {}),
  });

describe('rules', () => {
  test('create, get, update with revisions, enable/disable, delete; audited', async () => {
    const created = await call('POST', '/api/v1/rules', 'admin', { text: RULE() });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      id: 'admin-probe',
      revision: 1,
      kind: 'filter',
      severity: 'medium',
      enabled: true,
    });
    expect((await call('POST', '/api/v1/rules', 'admin', { text: RULE() })).statusCode).toBe(409);

    const got = await call('GET', '/api/v1/rules/admin-probe', 'viewer');
    expect(got.json()).toMatchObject({ rule: { text: RULE(), revision: 1 }, status: { degraded: false } });

    const updated = await call('PUT', '/api/v1/rules/admin-probe', 'admin', {
      text: RULE('Admin probed'),
      expected_revision: 1,
    });
    expect(updated.statusCode).toBe(200);
    expect(updated.json()).toMatchObject({ revision: 2, title: 'Admin probed' });
    expect(updated.json().version).not.toBe(created.json().version);
    const stale = await call('PUT', '/api/v1/rules/admin-probe', 'admin', {
      text: RULE(),
      expected_revision: 1,
    });
    expect(stale.statusCode).toBe(409);

    expect((await call('POST', '/api/v1/rules/admin-probe/disable', 'admin')).json()).toMatchObject({
      enabled: false,
      revision: 3,
    });
    expect((await call('POST', '/api/v1/rules/admin-probe/enable', 'admin')).json()).toMatchObject({
      enabled: true,
      revision: 4,
    });

    const revisions = (await call('GET', '/api/v1/rules/admin-probe/revisions', 'viewer')).json().items;
    expect(revisions.map((r: { change: string }) => r.change)).toEqual([
      'enable',
      'disable',
      'update',
      'create',
    ]);
    expect((await call('GET', '/api/v1/rules/admin-probe/revisions/1', 'viewer')).json().text).toBe(RULE());
    expect((await call('GET', '/api/v1/rules/admin-probe/revisions/99', 'viewer')).statusCode).toBe(404);

    const listed = (await call('GET', '/api/v1/rules', 'viewer')).json().items;
    expect(listed.filter((r: { source: string }) => r.source === 'api')).toEqual([
      expect.objectContaining({ id: 'admin-probe', revision: 4, source: 'api', file: null }),
    ]);
    expect(t.ports.detection.changes).toEqual(['admin-probe', 'admin-probe', 'admin-probe', 'admin-probe']);

    const renamed = await call('PUT', '/api/v1/rules/admin-probe', 'admin', {
      text: RULE().replace('admin-probe', 'other'),
    });
    expect(renamed.statusCode).toBe(422);

    const runs0 = (await call('GET', '/api/v1/rules/admin-probe/runs', 'viewer')).json();
    expect(runs0).toEqual({ status: { degraded: false }, items: [] });
    const run = await call('POST', '/api/v1/rules/admin-probe/run', 'admin');
    expect(run.statusCode).toBe(200);
    const runs = (await call('GET', '/api/v1/rules/admin-probe/runs?limit=5', 'viewer')).json();
    expect(runs.items).toHaveLength(1);
    expect(runs.status.last_run.id).toBe(run.json().id);

    expect((await call('DELETE', '/api/v1/rules/admin-probe', 'admin')).statusCode).toBe(204);
    expect((await call('GET', '/api/v1/rules/admin-probe', 'viewer')).statusCode).toBe(404);
    expect((await call('DELETE', '/api/v1/rules/admin-probe', 'admin')).statusCode).toBe(404);

    await t.it.es.indices.refresh({ index: `${t.it.prefix}-audit` });
    const audit = (await call('GET', '/api/v1/audit?limit=50', 'admin')).json().items;
    const actions = audit.map((e: { action: string }) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'rule.create',
        'rule.update',
        'rule.disable',
        'rule.enable',
        'rule.run',
        'rule.delete',
      ]),
    );
    expect(audit[0]).toMatchObject({ actor: expect.stringContaining('test-admin'), actor_role: 'admin' });
  });

  test('built-in file rules: listed with source and version, readable, disable/enable, not deletable, replaceable', async () => {
    const BUILT_IN = 'api-key-many-ips';
    const { loadRuleFiles } = await import('../parser/index.ts');
    const files = await loadRuleFiles(t.config.detections.rulePaths);
    expect(files.rules.length).toBeGreaterThanOrEqual(19);

    const list = (await call('GET', '/api/v1/rules', 'viewer')).json().items as Record<string, unknown>[];
    const fromFiles = list.filter((r) => r.source === 'file');
    expect(fromFiles.map((r) => r.id).sort()).toEqual(files.rules.map((r) => r.id).sort());
    const builtIn = fromFiles.find((r) => r.id === BUILT_IN)!;
    expect(builtIn).toEqual({
      id: BUILT_IN,
      source: 'file',
      file: 'detections/rules/api-keys.gwr',
      revision: null,
      version: files.rules.find((r) => r.id === BUILT_IN)!.version,
      title: expect.any(String),
      kind: expect.any(String),
      severity: expect.any(String),
      enabled: true,
      created_at: null,
      created_by: null,
      updated_at: null,
      updated_by: null,
    });
    expect(list.map((r) => r.id)).toEqual([...list.map((r) => r.id)].sort());

    const got = await call('GET', `/api/v1/rules/${BUILT_IN}`, 'viewer');
    expect(got.statusCode).toBe(200);
    expect(got.json().rule.text).toMatch(new RegExp(`^rule ${BUILT_IN} \\{[\\s\\S]*\\}\\n$`));
    expect(got.json().rule.text).not.toContain('rule api-key-new-asn');
    expect(got.json().status).toEqual({ degraded: false });

    // Disable: the file is untouched, the state is stored, the scheduler is told, the loader skips it.
    const disabled = await call('POST', `/api/v1/rules/${BUILT_IN}/disable`, 'admin');
    expect(disabled.statusCode).toBe(200);
    expect(disabled.json()).toMatchObject({
      id: BUILT_IN,
      source: 'file',
      enabled: false,
      updated_by: expect.stringContaining('test-admin'),
    });
    expect(t.ports.detection.changes.at(-1)).toBe(BUILT_IN);
    const { loadRuleSet } = await import('../detections/rule-set.ts');
    const loaded = async () => (await loadRuleSet(t.config, t.it.es)).rules.find((r) => r.id === BUILT_IN);
    expect((await loaded())?.enabled).toBe(false);
    expect(
      ((await call('GET', '/api/v1/rules', 'viewer')).json().items as Record<string, unknown>[]).find(
        (r) => r.id === BUILT_IN,
      ),
    ).toMatchObject({ enabled: false });
    expect((await call('POST', `/api/v1/rules/${BUILT_IN}/enable`, 'admin')).json()).toMatchObject({
      enabled: true,
    });
    expect((await loaded())?.enabled).toBe(true);
    expect((await call('POST', `/api/v1/rules/${BUILT_IN}/disable`, 'analyst')).statusCode).toBe(403);

    // Not deletable, not editable in place: 409 problems saying what to do instead.
    for (const [method, payload] of [
      ['DELETE', undefined],
      ['PUT', { text: RULE().replace('admin-probe', BUILT_IN) }],
    ] as const) {
      const r = await call(method, `/api/v1/rules/${BUILT_IN}`, 'admin', payload);
      expect(r.statusCode, method).toBe(409);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.json()).toMatchObject({ type: 'urn:gatewatch:problem:rule-from-file' });
      expect(r.json().detail).toContain('detections/rules/api-keys.gwr');
    }
    expect((await call('GET', `/api/v1/rules/${BUILT_IN}`, 'viewer')).statusCode).toBe(200);
    expect((await call('GET', `/api/v1/rules/${BUILT_IN}/revisions`, 'viewer')).statusCode).toBe(404);
    const runs = await call('GET', `/api/v1/rules/${BUILT_IN}/runs`, 'viewer');
    expect(runs.statusCode).toBe(200);
    expect(runs.json().items).toEqual([]);
    const preview = await call('POST', '/api/v1/rules/preview', 'analyst', {
      rule_id: BUILT_IN,
      from: '2026-02-01T00:00:00Z',
      to: '2026-02-02T00:00:00Z',
    });
    expect(preview.statusCode).toBe(200);
    const run = await call('POST', `/api/v1/rules/${BUILT_IN}/run`, 'admin');
    expect(run.statusCode).toBe(200);
    expect(run.json()).toMatchObject({ rule_id: BUILT_IN, outcome: 'ok' });

    // A stored rule with the same id replaces the file rule until it is deleted.
    const replacing = RULE().replace('admin-probe', BUILT_IN);
    const created = await call('POST', '/api/v1/rules', 'admin', { text: replacing });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      id: BUILT_IN,
      source: 'api',
      file: 'detections/rules/api-keys.gwr',
      revision: 1,
    });
    const replaced = (
      (await call('GET', '/api/v1/rules', 'viewer')).json().items as Record<string, unknown>[]
    ).filter((r) => r.id === BUILT_IN);
    expect(replaced).toEqual([expect.objectContaining({ source: 'api', title: 'Admin route probed' })]);
    expect((await loaded())?.title).toBe('Admin route probed');
    expect((await call('DELETE', `/api/v1/rules/${BUILT_IN}`, 'admin')).statusCode).toBe(204);
    expect((await call('GET', `/api/v1/rules/${BUILT_IN}`, 'viewer')).json().rule).toMatchObject({
      source: 'file',
      revision: null,
    });
    expect((await loaded())?.title).not.toBe('Admin route probed');

    await t.it.es.indices.refresh({ index: `${t.it.prefix}-audit` });
    const audit = (await call('GET', '/api/v1/audit?limit=100', 'admin')).json().items as {
      action: string;
      target_id: string;
    }[];
    expect(audit.filter((e) => e.target_id === BUILT_IN).map((e) => e.action)).toEqual(
      expect.arrayContaining(['rule.disable', 'rule.enable', 'rule.create', 'rule.delete']),
    );
  });

  test('invalid rule text: 422 with line and column; validate returns the diagnostics', async () => {
    const text = 'rule broken {\n  title "x"\n  severity extreme\n  where true\n}\n';
    const r = await call('POST', '/api/v1/rules', 'admin', { text });
    expect(r.statusCode).toBe(422);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.json().errors[0]).toMatchObject({ field: '/body/text', line: 3, column: expect.any(Number) });

    const v = await call('POST', '/api/v1/rules/validate', 'analyst', { text });
    expect(v.statusCode).toBe(200);
    expect(v.json().valid).toBe(false);
    expect(v.json().diagnostics[0]).toMatchObject({ line: 3, severity: 'error' });
    const ok = (await call('POST', '/api/v1/rules/validate', 'analyst', { text: RULE() })).json();
    expect(ok).toMatchObject({ valid: true, rules: [{ id: 'admin-probe', kind: 'filter' }] });
    expect((await call('POST', '/api/v1/rules/validate', 'analyst', { text: '' })).statusCode).toBe(400);
  });

  test('test over supplied events and preview over stored events write no incidents', async () => {
    const events = Array.from({ length: 10 }, (_, n) => event(n));
    const r = await call('POST', '/api/v1/rules/test', 'analyst', { text: RULE(), events });
    expect(r.statusCode).toBe(200);
    // Events 5 (403 on /admin): one source IP 198.51.100.2.
    expect(r.json().incidents).toHaveLength(1);
    expect(r.json().incidents[0]).toMatchObject({
      rule: { id: 'admin-probe' },
      entities: { ip: ['198.51.100.2'] },
      event_count: 1,
    });

    const p = await call('POST', '/api/v1/rules/preview', 'analyst', {
      text: RULE(),
      from: '2026-02-01T00:00:00Z',
      to: '2026-02-02T00:00:00Z',
    });
    expect(p.statusCode).toBe(200);
    // Odd n, multiple of 5, below 30: 5, 15, 25 → IPs .2, .0, .1.
    expect(p.json().incidents).toHaveLength(3);
    expect(p.json().raw_detections).toHaveLength(3);
    const stored = await t.it.es.count({ index: indexNames(t.it.prefix).incidents });
    expect(stored.count).toBe(0);
    const both = await call('POST', '/api/v1/rules/preview', 'analyst', {
      text: RULE(),
      rule_id: 'x',
      from: '2026-02-01T00:00:00Z',
      to: '2026-02-02T00:00:00Z',
    });
    expect(both.statusCode).toBe(400);
  });
});

describe('events', () => {
  test('search with a filter expression, cursor pages, drill-down by id', async () => {
    const search = (body: Record<string, unknown>) =>
      call('POST', '/api/v1/events/search', 'viewer', {
        from: '2026-02-01T00:00:00Z',
        to: '2026-02-02T00:00:00Z',
        ...body,
      });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await search({
        filter: 'http.request.method == "GET"',
        limit: 4,
        order: 'asc',
        ...(cursor ? { cursor } : {}),
      });
      expect(r.statusCode).toBe(200);
      seen.push(...r.json().items.map((e: { event: { id: string } }) => e.event.id));
      cursor = r.json().next_cursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 15 }, (_, i) => `ev-${String(i * 2 + 1).padStart(4, '0')}`));

    const bad = await search({ filter: 'http.request.method === "GET"' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0]).toMatchObject({
      field: '/body/filter',
      line: 1,
      column: expect.any(Number),
    });
    const unknownField = await search({ filter: 'no.such.field == 1' });
    expect(unknownField.statusCode).toBe(400);

    const one = await call('GET', '/api/v1/events/ev-0003', 'viewer');
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ event: { id: 'ev-0003' }, source: { ip: '198.51.100.0' } });
    expect((await call('GET', '/api/v1/events/ev-9999', 'viewer')).statusCode).toBe(404);
  });
});

describe('ingest administration, keys', () => {
  test('sources with status; dead letters list and replay, from the real store', async () => {
    const sources = await call('GET', '/api/v1/ingest/sources', 'viewer');
    expect(sources.statusCode).toBe(200);
    expect(sources.json().items).toEqual([
      expect.objectContaining({ name: 'edge-nginx', type: 'file', state: 'running', errors_total: 2 }),
    ]);
    const page = await call('GET', '/api/v1/ingest/dead-letters?limit=1', 'admin');
    expect(page.statusCode).toBe(200);
    const first = page.json().items;
    expect(first).toEqual([
      expect.objectContaining({ source: 'edge-nginx', at: '2026-02-01T10:00:00.000Z', replayed_at: null }),
    ]);
    const next = await call(
      'GET',
      `/api/v1/ingest/dead-letters?limit=1&cursor=${page.json().next_cursor}`,
      'admin',
    );
    expect(next.statusCode).toBe(200);
    const second = next.json().items;
    expect(second).toHaveLength(1);
    expect([first[0].payload, second[0].payload].sort()).toEqual(['garbage one', 'garbage two']);
    const end = await call(
      'GET',
      `/api/v1/ingest/dead-letters?limit=1&cursor=${next.json().next_cursor}`,
      'admin',
    );
    expect(end.json()).toEqual({ items: [], next_cursor: null });
    const bySource = await call('GET', '/api/v1/ingest/dead-letters?source=nobody', 'admin');
    expect(bySource.json()).toEqual({ items: [], next_cursor: null });

    const depth = await t.producer.currentDepth();
    const replay = await call('POST', '/api/v1/ingest/dead-letters/replay', 'admin', { ids: [first[0].id] });
    expect(replay.json()).toEqual({ replayed: 1, failed: 0 });
    const jobs = await t.producer.queue.getJobs(['waiting']);
    expect(jobs.flatMap((j) => j.data.records)).toEqual([first[0].payload]);
    expect(await t.producer.queue.count()).toBe(depth + 1);
    const after = (await call('GET', '/api/v1/ingest/dead-letters?limit=10', 'admin')).json().items;
    expect(after.find((l: { id: string }) => l.id === first[0].id).replayed_at).toEqual(expect.any(String));
    expect((await call('POST', '/api/v1/ingest/dead-letters/replay', 'admin', {})).statusCode).toBe(400);
  });

  test('keys: created once with a secret, listed without it, revoked', async () => {
    const created = await call('POST', '/api/v1/keys', 'admin', { role: 'viewer', name: 'grafana' });
    expect(created.statusCode).toBe(201);
    const { token, key } = created.json();
    expect(token).toMatch(/^gw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const listed = (await call('GET', '/api/v1/keys', 'admin')).json().items;
    expect(listed.find((k: { id: string }) => k.id === key.id)).toMatchObject({
      role: 'viewer',
      name: 'grafana',
    });
    // the secret is everything after "gw_<16 hex>_" (base64url: it may itself contain "_")
    const secret = token.slice(20);
    expect(secret).toHaveLength(43);
    expect(JSON.stringify(listed)).not.toContain(secret);
    expect(JSON.stringify(listed)).not.toMatch(/hash|salt/);
    const stored = await t.it.es.get<{ hash: string }>({ index: `${t.it.prefix}-api-keys`, id: key.id });
    expect(stored._source!.hash).not.toContain(secret);
    const use = () =>
      t.app.inject({ method: 'GET', url: '/api/v1/rules', headers: { authorization: `Bearer ${token}` } });
    expect((await use()).statusCode).toBe(200);
    expect((await call('DELETE', `/api/v1/keys/${key.id}`, 'admin')).json().revoked_at).toEqual(
      expect.any(String),
    );
    expect((await use()).statusCode).toBe(401);
    expect((await call('DELETE', '/api/v1/keys/0000000000000000', 'admin')).statusCode).toBe(404);
  });
});

describe('operations', () => {
  test('liveness without a key; readiness checks Redis and Elasticsearch; metrics', async () => {
    const live = await call('GET', '/health/live', null);
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'alive' });
    const ready = await call('GET', '/health/ready', 'viewer');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({
      status: 'ready',
      checks: { redis: { ok: true }, elasticsearch: { ok: true } },
    });
    const metrics = await call('GET', '/metrics', 'viewer');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toContain('gatewatch_api_requests_total');
    expect(metrics.body).toContain('gatewatch_rule_run_duration_seconds');
    expect(metrics.body).toContain('gatewatch_incidents_created_total');
    // Ingest counters from the workers (through Redis), per source and outcome.
    expect(metrics.body).toContain(
      'gatewatch_ingest_events_total{source="edge-nginx",outcome="dead_letter"} 2',
    );
    expect(metrics.body).toContain('gatewatch_ingest_events_total{source="edge-nginx",outcome="dropped"} 0');
    // Before any partials exist the gauges say nothing; a batch's partials (the built-in pack's,
    // written as ingest writes them, docs/partials.md) show at the next scrape.
    expect(metrics.body).not.toMatch(/gatewatch_partials_documents\{level="batch"\} [1-9]/);
    const pack = (await loadRuleFiles(['detections/rules'])).rules;
    // event 3 carries an API key from a network: a key of the built-in first_seen rules
    const keyed = event(3, {
      gatewatch: { route: '/orders/{id}', api_key: { fingerprint: 'k1' }, network: { id: 'AS1' } },
    });
    const folded = new PartialFolder(pack).fold([event(0), event(1), keyed] as unknown as GatewatchEvent[]);
    await writeBatchPartials(t.it.es, t.it.prefix, 'api-metrics', folded, true);
    const after = await call('GET', '/metrics', 'viewer');
    expect(after.body).toMatch(/gatewatch_partials_documents\{level="batch"\} 1/);
    expect(after.body).toMatch(/gatewatch_partials_index_bytes [1-9]/);
    expect(after.body).toMatch(/gatewatch_partials_pending_cells [1-9]/);
    expect(after.body).toMatch(/gatewatch_partials_documents\{level="key"\} [1-9]/);
    // the background build of a rule version's partials: days built, to build, events folded
    expect(after.body).not.toContain('gatewatch_partials_build_days{');
    const rule = pack.find((r) => partialRule(r))!;
    await buildPartials(t.it.es, t.it.prefix, { rules: [rule], refresh: true });
    const built = await call('GET', '/metrics', 'viewer');
    const label = `rule="${partialRule(rule)!.key}"`;
    expect(built.body).toContain(`gatewatch_partials_build_days{${label},state="built"} 1`);
    expect(built.body).toContain(`gatewatch_partials_build_days{${label},state="to_build"} 1`);
    expect(built.body).toContain(`gatewatch_partials_build_events{${label}} 30`);
  });

  test('an unknown route is a problem, not a stack trace; 5xx hide internals', async () => {
    const r = await call('GET', '/api/v1/nothing-here', 'viewer');
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ status: 404, type: 'urn:gatewatch:problem:not-found' });
    const original = t.ports.ingest.sources;
    t.ports.ingest.sources = async () => {
      throw new Error('connection string redis://secret@host leaked');
    };
    try {
      const failed = await call('GET', '/api/v1/ingest/sources', 'viewer');
      expect(failed.statusCode).toBe(500);
      expect(failed.body).not.toContain('secret');
      expect(failed.body).not.toContain('at ');
      expect(failed.json()).toMatchObject({ status: 500, type: 'urn:gatewatch:problem:internal' });
    } finally {
      t.ports.ingest.sources = original;
    }
  });

  test('one convention: the old page-size name and a bad enumeration value are one clear 400 each', async () => {
    const old = await call('GET', '/api/v1/ingest/dead-letters?size=5', 'admin');
    expect(old.statusCode).toBe(400);
    expect(old.json().errors).toEqual([
      {
        field: '/querystring/size',
        message: '`size` is not a parameter: the page size is `limit` (one name across the API)',
      },
    ]);
    const bad = await call('GET', '/api/v1/incidents?status=closed', 'viewer');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors).toEqual([
      {
        field: '/querystring/status/0',
        message: '"closed" is not one of: new, triaged, in_remediation, resolved, false_positive',
      },
    ]);
  });

  test('body size limit and content type are problems', async () => {
    const big = await t.app.inject({
      method: 'POST',
      url: '/api/v1/rules/validate',
      headers: { ...t.auth('analyst'), 'content-type': 'application/json' },
      payload: JSON.stringify({ text: 'x'.repeat(t.config.api.bodyLimit + 10) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.headers['content-type']).toMatch(/^application\/problem\+json/);
    const xml = await t.app.inject({
      method: 'POST',
      url: '/api/v1/rules/validate',
      headers: { ...t.auth('analyst'), 'content-type': 'application/xml' },
      payload: '<text/>',
    });
    expect(xml.statusCode).toBe(415);
  });
});

describe('authorisation matrix (generated from the route table)', () => {
  const sample = (url: string) =>
    url
      .replace(':revision', '1')
      .replace(/\/keys\/:id$/, '/keys/0123456789abcdef')
      .replace(':id', 'matrix-probe')
      .replace('*', 'index.html');

  test('every route: 401 without a key, 403 for roles outside its access level, through otherwise', async () => {
    const routes = t.app.routeTable;
    expect(routes.length).toBeGreaterThan(25);
    const rows: string[] = [];
    for (const route of routes) {
      const url = sample(route.url);
      const anonymous = await call(route.method, url, null);
      if (route.access === 'public')
        expect(anonymous.statusCode, `${route.method} ${route.url}`).not.toBe(401);
      else {
        expect(anonymous.statusCode, `${route.method} ${route.url} without key`).toBe(401);
        expect(anonymous.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
      const cells: string[] = [];
      for (const role of ROLES) {
        const r = await call(route.method, url, role);
        const allowed = ACCESS_ROLES[route.access].includes(role);
        if (allowed) expect(r.statusCode, `${role} ${route.method} ${route.url}`).not.toBeOneOf([401, 403]);
        else expect(r.statusCode, `${role} ${route.method} ${route.url}`).toBe(403);
        cells.push(`${role}:${r.statusCode}`);
      }
      rows.push(`${route.method} ${route.url} [${route.access}] ${cells.join(' ')}`);
    }
    // Every route declares an access level and no route is public except liveness and the
    // console's static files (which hold no data: the console reads everything with a key).
    expect(
      routes.filter((r) => r.access === 'public' && !CONSOLE_ROUTES.includes(r.url)).map((r) => r.url),
    ).toEqual(['/health/live']);
    expect(
      routes
        .filter((r) => CONSOLE_ROUTES.includes(r.url))
        .every((r) => r.access === 'public' && r.method === 'GET'),
    ).toBe(true);
  });
});

describe('OpenAPI', () => {
  test('3.1 document: every route documented with request and response schemas, problem responses, security', async () => {
    const r = await call('GET', '/openapi.json', 'viewer');
    expect(r.statusCode).toBe(200);
    expect((await call('GET', '/openapi.json', null)).statusCode).toBe(401);
    const doc = r.json();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        documented.add(`${method.toUpperCase()} ${path}`);
        const codes = Object.keys(op.responses);
        expect(
          codes.some((c) => c.startsWith('2')),
          `${method} ${path} success response`,
        ).toBe(true);
        expect(op.responses['500'].content['application/problem+json'].schema.properties.type).toBeDefined();
        if (path !== '/health/live') {
          expect(op.responses['401'], `${method} ${path}`).toBeDefined();
          expect(op.responses['403'], `${method} ${path}`).toBeDefined();
        } else expect(op.security).toEqual([]);
        if (op.requestBody) {
          // Spec uploads take the document's own text (JSON or YAML); every other body is an object.
          const expected = path.endsWith('/inventory/specs') && method === 'post' ? 'string' : 'object';
          expect(op.requestBody.content['application/json'].schema.type, `${method} ${path} body`).toBe(
            expected,
          );
        }
      }
    }
    for (const route of t.app.routeTable) {
      if (
        route.url.startsWith('/docs') ||
        route.url === '/openapi.json' ||
        CONSOLE_ROUTES.includes(route.url)
      )
        continue;
      const path = route.url.replace(/:([a-z_]+)/g, '{$1}');
      expect(documented.has(`${route.method} ${path}`), `${route.method} ${path} documented`).toBe(true);
    }
  });
});
