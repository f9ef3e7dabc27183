/**
 * The routes the console needs, on the real Elasticsearch (the embedded store's side is in
 * embedded/console-api.test.ts): exceptions stored in Elasticsearch and honoured by the
 * scheduler's runs, entity activity, incident timelines, rule activity per day.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { exceptionsIndex } from '../detections/exceptions.ts';
import { IngestAdmin } from '../ingest/admin.ts';
import { IngestProducer } from '../ingest/pipeline/producer.ts';
import { createScrubber } from '../ingest/transforms/scrub.ts';
import { startTestApp, type TestApp } from './testing/harness.ts';

let t: TestApp;

const RULE = `rule console-probe {
  title "Admin probes from {source.ip}"
  severity medium
  schedule every 5m lookback 1h lateness 0s
  where gatewatch.route startswith "/admin"
  threshold {
    group by source.ip
    window 10m
    metric hits = count()
    having hits >= 3
  }
  incident {
    entities ip: source.ip
  }
}
`;
const IPS = ['198.51.100.10', '198.51.100.11', '198.51.100.12'];
const WINDOW = 600_000;
// One whole 10-minute window, ended a few minutes ago (inside the rule's look-back).
const windowStart = Math.floor((Date.now() - 16 * 60_000) / WINDOW) * WINDOW;

beforeAll(async () => {
  t = await startTestApp('api-console');
  await installCoreTemplates(t.it.es, { prefix: t.it.prefix });
  const docs = IPS.flatMap((ip, i) =>
    Array.from({ length: 6 }, (_, k) => ({
      '@timestamp': new Date(windowStart + 60_000 + k * 20_000 + i * 1000).toISOString(),
      event: { id: `ev-${i}-${k}`, kind: 'event', dataset: 'nginx.access' },
      source: { ip },
      http: { request: { method: 'GET' }, response: { status_code: 403 } },
      gatewatch: { route: '/admin/users' },
    })),
  );
  const index = (ts: string) => indexNames(t.it.prefix).eventsIndexFor(ts);
  const r = await t.it.es.bulk({
    operations: docs.flatMap((doc) => [
      { create: { _index: index(doc['@timestamp']), _id: doc.event.id } },
      doc,
    ]),
    refresh: true,
  });
  expect(r.errors).toBe(false);
  const created = await t.app.inject({
    method: 'POST',
    url: '/api/v1/rules',
    headers: t.auth('admin'),
    payload: { text: RULE },
  });
  expect(created.statusCode).toBe(201);
});
afterAll(async () => {
  await t?.close();
});

const call = (
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  role: 'viewer' | 'analyst' | 'admin',
  payload?: object,
) => t.app.inject({ method, url, headers: t.auth(role), ...(payload ? { payload } : {}) });

describe('exceptions on Elasticsearch', () => {
  test('a run skips the excepted entity and counts it; lifting it brings the entity back', async () => {
    const first = (await call('POST', '/api/v1/rules/console-probe/run', 'admin')).json();
    expect(first).toMatchObject({
      outcome: 'ok',
      detections: 3,
      incidents_created: 3,
      incidents_excepted: 0,
    });
    const incidents = (await call('GET', '/api/v1/incidents?rule=console-probe', 'viewer')).json().items;
    const target = incidents.find((i: { entities: { ip: string[] } }) => i.entities.ip[0] === IPS[0]);

    const body = {
      rule_id: 'console-probe',
      entity: { type: 'ip', value: IPS[0] },
      reason: 'our vulnerability scanner',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      incident_id: target.id,
    };
    expect((await call('POST', '/api/v1/exceptions', 'viewer', body)).statusCode).toBe(403);
    const created = await call('POST', '/api/v1/exceptions', 'analyst', body);
    expect(created.statusCode).toBe(201);
    const stored = await t.it.es.get({ index: exceptionsIndex(t.it.prefix), id: created.json().id });
    expect(stored._source).toMatchObject({
      rule_id: 'console-probe',
      created_by: expect.stringContaining('test-analyst'),
    });

    // The next run starts from the checkpoint; the look-back covers the same window again.
    const second = (await call('POST', '/api/v1/rules/console-probe/run', 'admin')).json();
    expect(second).toMatchObject({
      outcome: 'ok',
      detections: 3,
      incidents_excepted: 1,
      incidents_created: 0,
    });
    const runs = (await call('GET', '/api/v1/rules/console-probe/runs?limit=1', 'viewer')).json();
    expect(runs.items[0].incidents_excepted).toBe(1);

    const lifted = await call('DELETE', `/api/v1/exceptions/${created.json().id}`, 'analyst');
    expect(lifted.json()).toMatchObject({ active: false });
    const active = (
      await call('GET', '/api/v1/exceptions?rule_id=console-probe&active=true', 'viewer')
    ).json();
    expect(active.items).toEqual([]);
    const all = (await call('GET', '/api/v1/exceptions?rule_id=console-probe', 'viewer')).json();
    expect(all.items).toHaveLength(1);
    const third = (await call('POST', '/api/v1/rules/console-probe/run', 'admin')).json();
    expect(third.incidents_excepted).toBe(0);
  });
});

describe('investigation routes on Elasticsearch', () => {
  test('entity: first and last seen and activity count its events', async () => {
    const e = (await call('GET', `/api/v1/entities/ip/${IPS[1]}`, 'viewer')).json();
    expect(e).toMatchObject({
      event_count: 6,
      first_seen: new Date(windowStart + 60_000 + 1000).toISOString(),
      last_seen: new Date(windowStart + 60_000 + 5 * 20_000 + 1000).toISOString(),
      filter: `source.ip == "${IPS[1]}"`,
    });
    expect(e.activity.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(6);
    const ranged = (
      await call(
        'GET',
        `/api/v1/entities/ip/${IPS[1]}?from=${new Date(windowStart).toISOString()}&to=${new Date(windowStart + 60_000 + 2 * 20_000).toISOString()}`,
        'viewer',
      )
    ).json();
    expect(ranged.activity.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(2);
    expect(ranged.event_count).toBe(6);
  });

  test("timeline: the incident's window is one bucket, counted as the threshold counts", async () => {
    const incidents = (await call('GET', '/api/v1/incidents?rule=console-probe', 'viewer')).json().items;
    const timeline = (await call('GET', `/api/v1/incidents/${incidents[0].id}/timeline`, 'viewer')).json();
    expect(timeline.threshold).toEqual({ metric: 'hits', op: '>=', value: 3 });
    expect(timeline.interval_ms).toBe(WINDOW);
    const own = timeline.buckets.find(
      (b: { start: string }) => b.start === new Date(windowStart).toISOString(),
    );
    expect(own.count).toBe(6);
    expect(timeline.buckets.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(6);
  });

  test('rule activity per day from the run records', async () => {
    const r = (await call('GET', '/api/v1/rules/activity?days=1', 'viewer')).json();
    const row = r.items.find((x: { rule_id: string }) => x.rule_id === 'console-probe');
    expect(row).toMatchObject({ day: r.to, runs: 3, detections: 9, failed: 0 });
  });

  test('the draft of a stored rule is its text; session tells the role', async () => {
    expect((await call('GET', '/api/v1/rules/console-probe/draft', 'viewer')).json().text).toBe(RULE);
    expect((await call('GET', '/api/v1/session', 'admin')).json()).toMatchObject({
      role: 'admin',
      can: { triage: true, admin: true },
    });
  });
});

describe('ingest queue on Redis', () => {
  test('depth per state and the oldest waiting batch', async () => {
    const producer = new IngestProducer({
      producer: t.redis,
      queuePrefix: t.it.prefix,
      highWaterMark: 2000,
      batchSize: 2,
      scrub: createScrubber(),
    });
    const admin = new IngestAdmin({
      es: t.it.es,
      redis: t.redis,
      prefix: t.it.prefix,
      queuePrefix: t.it.prefix,
      sources: [],
      producer,
    });
    expect(await admin.queue()).toEqual({
      waiting: 0,
      active: 0,
      delayed: 0,
      failed: 0,
      oldest_waiting_seconds: null,
      high_water_mark: 2000,
    });
    await producer.enqueue({ source: 'edge', receivedAt: Date.now() }, ['a', 'b', 'c'], 'file#0');
    await new Promise((r) => setTimeout(r, 20));
    const status = await admin.queue();
    expect(status).toMatchObject({ waiting: 2, active: 0, failed: 0 });
    expect(status.oldest_waiting_seconds).toBeGreaterThan(0);
    // The route reads the same queue (the test app's ingest port is wired to this Redis prefix).
    expect((await call('GET', '/api/v1/ingest/queue', 'viewer')).json().queue).toMatchObject({
      waiting: 2,
      high_water_mark: expect.any(Number),
    });
    await producer.queue.close();
  });
});
