/**
 * The index lifecycle on the real Elasticsearch and Redis: retention (indices past it deleted,
 * the rest kept, documents of the single indices deleted, incidents outliving their events and
 * saying so), rollover by age and size without a doubled event, sealing, replicas, shard sizing,
 * an earlier version's mapping, and the runner's lease (one pass per interval per deployment).
 *
 * Time: indices cannot be made old, so the passes run "later" (now + N days); everything they
 * read is then as old as it would be by then.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../api/metrics.ts';
import { makeIncident, startTestApp, storeIncidents, type TestApp } from '../api/testing/harness.ts';
import { loadConfig } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { bulkWrite, indexNames } from '../core/store/elasticsearch.ts';
import { dayIndices, dayOf, dayRange, writeAlias } from '../core/store/event-indices.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { ensurePartialsIndex } from '../detections/partials/store.ts';
import { writeDeadLetters } from '../ingest/sinks/dead-letters.ts';
import { indexEvents } from '../ingest/sinks/elasticsearch.ts';
import { runLifecycle } from './lifecycle.ts';
import { exposeLifecycleMetrics, LifecycleRunner, lastLifecycleRun } from './runner.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp('lifecycle');
  await installCoreTemplates(t.it.es, { prefix: t.it.prefix });
});
afterAll(async () => {
  await t?.close();
});

function configWith(
  prefix: string,
  overrides: {
    retention?: Partial<GatewatchConfig['retention']>;
    lifecycle?: Partial<GatewatchConfig['lifecycle']>;
    replicas?: number;
  } = {},
): GatewatchConfig {
  return loadConfig({
    env: {},
    overrides: {
      elasticsearch: { url: t.it.elasticsearchUrl, indexPrefix: prefix, replicas: overrides.replicas ?? 0 },
      redis: { url: t.it.redisUrl, prefix, requireNoEviction: false },
      ...(overrides.retention ? { retention: overrides.retention } : {}),
      ...(overrides.lifecycle ? { lifecycle: overrides.lifecycle } : {}),
    },
  });
}

let seq = 0;
function event(at: number, id = `ev-${seq++}`): GatewatchEvent {
  return {
    '@timestamp': new Date(at).toISOString(),
    event: { id, outcome: 'success' },
    source: { ip: '198.51.100.7' },
    http: { request: { method: 'GET' }, response: { status_code: 200 } },
    url: { path: `/items/${seq}` },
  } as GatewatchEvent;
}

async function eventIndicesOf(prefix: string): Promise<string[]> {
  const r = await t.it.es.indices.get({
    index: `${prefix}-events-*`,
    allow_no_indices: true,
    ignore_unavailable: true,
  });
  return Object.keys(r).sort();
}

async function count(prefix: string, query: object = { match_all: {} }): Promise<number> {
  await t.it.es.indices.refresh({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true });
  return (
    await t.it.es.count({
      index: indexNames(prefix).eventsAlias,
      query,
      ignore_unavailable: true,
      allow_no_indices: true,
    })
  ).count;
}

describe('index lifecycle and retention (real Elasticsearch)', () => {
  it('deletes events indices past retention and keeps the rest; incidents outlive their events and say when they expired', async () => {
    const prefix = t.it.prefix;
    const es = t.it.es;
    // The pass runs 40 days from now, at noon: retention.events (30d) then ends at noon of a day
    // whose first index holds only earlier events, its second one later events.
    const later = dayRange(dayOf(Date.now() + 40 * DAY)).start + 12 * HOUR;
    const cutoff = later - 30 * DAY;
    const cutoffDay = dayOf(cutoff);
    const sink = { prefix, refresh: true };
    expect(
      (
        await indexEvents(
          es,
          [event(later - 45 * DAY), event(later - 29 * DAY), event(later - 2 * DAY)],
          sink,
        )
      ).written,
    ).toBe(3);
    // The cutoff day: 01:00 into its first generation; then 18:00 into its second.
    expect((await indexEvents(es, [event(dayRange(cutoffDay).start + HOUR, 'early')], sink)).written).toBe(1);
    const first = (await dayIndices(es, prefix, cutoffDay)).write!;
    await es.indices.rollover({ alias: writeAlias(prefix, cutoffDay) });
    expect(
      (await indexEvents(es, [event(dayRange(cutoffDay).start + 18 * HOUR, 'late')], sink)).written,
    ).toBe(1);
    const second = (await dayIndices(es, prefix, cutoffDay)).write!;
    expect(second).not.toBe(first);
    // A day index as an earlier version wrote it (one index per day, no generations).
    const legacy = indexNames(prefix).eventsIndexFor(new Date(later - 33 * DAY).toISOString());
    await bulkWrite(
      es,
      [{ op: 'create', index: legacy, id: 'old-version', doc: event(later - 33 * DAY, 'old-version') }],
      {
        refresh: true,
      },
    );
    expect(await count(prefix)).toBe(6);

    // Incidents: one whose events will be gone, one recent; closed and triaged ones past retention.incidents.
    const expiredWindow = new Date(later - 35 * DAY).toISOString();
    const recentWindow = new Date(later - 2 * DAY).toISOString();
    const longAgo = new Date(later - 400 * DAY).toISOString();
    await storeIncidents(t, [
      makeIncident(1, { window: { start: expiredWindow, end: expiredWindow }, updated_at: expiredWindow }),
      makeIncident(2, { window: { start: recentWindow, end: recentWindow }, updated_at: recentWindow }),
      makeIncident(3, { status: 'resolved', updated_at: longAgo, window: { start: longAgo, end: longAgo } }),
      makeIncident(4, { status: 'triaged', updated_at: longAgo, window: { start: longAgo, end: longAgo } }),
    ]);
    // Dead letters, rule runs, audit entries, inventory endpoints: old and recent.
    await writeDeadLetters(es, prefix, [
      { source: 'edge', reason: 'x', stage: 'parse', raw: 'old line', at: later - 40 * DAY },
      { source: 'edge', reason: 'x', stage: 'parse', raw: 'new line', at: later - DAY },
    ]);
    const runs = indexNames(prefix).ruleRuns;
    for (const [id, at] of [
      ['old-run', later - 31 * DAY],
      ['new-run', later - HOUR],
    ] as const)
      await es.index({
        index: runs,
        id,
        document: { id, rule_id: 'r', finished_at: new Date(at).toISOString(), outcome: 'ok' },
      });
    for (const [id, at] of [
      ['old-audit', later - 366 * DAY],
      ['new-audit', later - DAY],
    ] as const)
      await es.index({
        index: `${prefix}-audit`,
        id,
        document: { id, at: new Date(at).toISOString(), action: 'x' },
      });
    for (const [id, at] of [
      ['old-endpoint', later - 200 * DAY],
      ['new-endpoint', later - DAY],
    ] as const)
      await es.index({
        index: `${prefix}-inventory`,
        id,
        document: { id, last_seen: new Date(at).toISOString() },
      });
    // Rule partials per day chunk: the old day's go with its events; the cutoff day keeps its
    // partials (events of it are left), as does a recent day.
    const partials = await ensurePartialsIndex(es, prefix);
    for (const [id, at] of [
      ['old-chunk', later - 45 * DAY],
      ['cutoff-chunk', dayRange(cutoffDay).start],
      ['new-chunk', later - 2 * DAY],
    ] as const)
      await es.index({
        index: partials,
        id,
        document: {
          level: 'batch',
          chunk: dayRange(dayOf(at)).start,
          batch: id,
          rules: [],
          events: 1,
          written_at: new Date(at).toISOString(),
          body: {},
        },
      });
    await es.indices.refresh({ index: `${prefix}-*` });

    const before = await eventIndicesOf(prefix);
    const report = await runLifecycle({ es, config: configWith(prefix), now: later });
    expect(report.errors).toEqual([]);
    const after = await eventIndicesOf(prefix);
    const old = generationOf(prefix, later - 45 * DAY);
    expect(report.deleted_indices.sort()).toEqual([first, legacy, old].sort());
    expect(after).toEqual(
      [...before.filter((i) => ![first, legacy, old].includes(i)), ...report.created].sort(),
    );
    expect(after).toContain(second);
    // What is left: the events after the cutoff.
    expect(await count(prefix)).toBe(3);
    expect(await count(prefix, { ids: { values: ['late'] } })).toBe(1);
    expect(report.deleted_documents).toEqual({
      deadLetters: 1,
      ruleRuns: 1,
      incidents: 1,
      audit: 1,
      inventory: 1,
      partials: 1,
    });
    const ids = async (index: string) =>
      (await es.search({ index, size: 100, _source: false })).hits.hits.map((h) => h._id).sort();
    expect(await ids(indexNames(prefix).incidents)).toEqual(['inc-0000001', 'inc-0000002', 'inc-0000004']);
    expect(await ids(runs)).toEqual(['new-run']);
    expect(await ids(`${prefix}-audit`)).toEqual(['new-audit']);
    expect(await ids(`${prefix}-inventory`)).toEqual(['new-endpoint']);
    expect(await ids(partials)).toEqual(['cutoff-chunk', 'new-chunk']);
    expect(
      (await es.search({ index: indexNames(prefix).deadLetters, size: 10 })).hits.hits.map(
        (h) => (h._source as { raw: string }).raw,
      ),
    ).toEqual(['new line']);
    // The kept indices of past days are sealed: read-only, merged.
    const blocks = await es.indices.getSettings({ index: second, name: 'index.blocks.write' });
    expect(JSON.stringify(blocks)).toContain('"write":"true"');
    expect(report.sealed).toContain(second);

    // The API: the first incident's events are gone, and it says so; the recent one's are there.
    const expired = await t.app.inject({ url: '/api/v1/incidents/inc-0000001', headers: t.auth('viewer') });
    expect(expired.statusCode).toBe(200);
    expect(expired.json().evidence.expired).toMatchObject({ partial: false });
    expect(expired.json().evidence.expired.note).toMatch(/events expired around .*retention\.events 30d/);
    expect(expired.json().evidence.event_ids).toEqual(['e1', 'e2']);
    const recent = await t.app.inject({ url: '/api/v1/incidents/inc-0000002', headers: t.auth('viewer') });
    expect(recent.json().evidence.expired).toBeUndefined();
    const retention = await t.app.inject({ url: '/api/v1/retention', headers: t.auth('viewer') });
    expect(retention.statusCode).toBe(200);
    expect(retention.json()).toMatchObject({
      policy: {
        events: '30d',
        deadLetters: '30d',
        ruleRuns: '30d',
        incidents: '365d',
        inventory: '180d',
        audit: '365d',
      },
      earliest_event: new Date(dayRange(cutoffDay).start + 18 * HOUR).toISOString(),
    });
  });

  it('rolls a day over by age and by size without doubling an event, sizes shards, sets replicas', async () => {
    const prefix = `${t.it.prefix}-roll`;
    const es = t.it.es;
    await installCoreTemplates(es, { prefix });
    // The first pass runs two minutes from now; the events are of that pass's day.
    const firstPass = Date.now() + 2 * 60_000;
    const today = dayOf(firstPass);
    const at = Math.max(dayRange(today).start, firstPass - 60 * 60_000);
    const batch = Array.from({ length: 50 }, (_, i) => event(at + i, `roll-${i}`));
    expect((await indexEvents(es, batch, { prefix, refresh: true })).written).toBe(50);
    const gen1 = (await dayIndices(es, prefix, today)).write!;

    // Age: today's write index is older than rolloverAge when the pass runs.
    const aged = await runLifecycle({
      es,
      config: configWith(prefix, { lifecycle: { rolloverAge: '1m' } }),
      now: firstPass,
    });
    expect(aged.errors).toEqual([]);
    expect(aged.rolled_over).toEqual([{ from: gen1, to: expect.stringMatching(/-000002$/), reason: 'age' }]);
    const gen2 = (await dayIndices(es, prefix, today)).write!;
    expect(gen2).toBe(aged.rolled_over[0]!.to);
    // The same batch again (a retry after the rollover) and ten new events: nothing doubled.
    const again = await indexEvents(
      es,
      [...batch, ...Array.from({ length: 10 }, (_, i) => event(at + 100 + i, `new-${i}`))],
      {
        prefix,
        refresh: true,
      },
    );
    expect(again).toMatchObject({ written: 10, duplicates: 50 });
    expect(await count(prefix)).toBe(60);
    expect((await es.count({ index: gen2 })).count).toBe(10);

    // Size: a primary shard past lifecycle.shardSize rolls over (any day); a day's data this
    // size needs more shards, at most lifecycle.maxShards. Replicas converge to the setting.
    await es.indices.putSettings({
      index: indexNames(prefix).deadLetters,
      settings: { 'index.number_of_replicas': 1 },
    });
    // The second pass runs at noon the day after: the day of the events is its yesterday.
    const nextNoon = dayRange(today).start + DAY + 12 * HOUR;
    const sized = await runLifecycle({
      es,
      config: configWith(prefix, { lifecycle: { shardSize: '1kb', maxShards: 3, rolloverAge: '1d' } }),
      now: nextNoon,
    });
    expect(sized.errors).toEqual([]);
    expect(sized.rolled_over).toEqual([
      { from: gen2, to: expect.stringMatching(/-000003$/), reason: 'size' },
    ]);
    expect(sized.shards).toBe(3);
    // The day after (the pass's today) was made ahead with that many shards.
    const made = sized.created.find((i) => i.includes(dayOf(nextNoon)))!;
    const shards = await es.indices.getSettings({
      index: made,
      name: 'index.number_of_shards',
      flat_settings: true,
    });
    expect(Object.values(shards)[0]!.settings).toEqual({ 'index.number_of_shards': '3' });
    expect(sized.replicas_updated).toContain(indexNames(prefix).deadLetters);
    // A generation is sealed sealAfter (1h) after the next one took over; the one just rolled is not yet.
    expect(sized.sealed).toContain(gen1);
    expect(sized.sealed).not.toContain(gen2);
    expect(await count(prefix)).toBe(60);
  });

  it('writes with this version’s mapping where an earlier version made the day’s index, and names conflicts', async () => {
    const prefix = `${t.it.prefix}-map`;
    const es = t.it.es;
    await installCoreTemplates(es, { prefix });
    const day = dayOf(Date.now());
    // An earlier version's write index for today: strict, without url.domain (a field added
    // since), and with http.response.status_code as a keyword (a type changed since).
    const old = `${prefix}-events-${day}-000001`;
    await es.indices.create({
      index: old,
      aliases: { [writeAlias(prefix, day)]: { is_write_index: true }, [indexNames(prefix).eventsAlias]: {} },
      mappings: {
        dynamic: 'strict',
        properties: {
          '@timestamp': { type: 'date' },
          event: { properties: { id: { type: 'keyword' }, outcome: { type: 'keyword' } } },
          http: { properties: { response: { properties: { status_code: { type: 'keyword' } } } } },
        },
      },
    });
    const e = {
      ...event(Date.now(), 'after-upgrade'),
      url: { path: '/x', domain: 'api.example.com' },
    } as GatewatchEvent;
    const result = await indexEvents(es, [e], { prefix, refresh: true });
    // Not rejected, not dead-lettered, not retried forever: written to a new index of this version.
    expect(result).toMatchObject({ written: 1, rejected: [] });
    const now = await dayIndices(es, prefix, day);
    expect(now.write).not.toBe(old);
    expect((await es.count({ index: now.write! })).count).toBe(1);
    const report = await runLifecycle({ es, config: configWith(prefix), now: Date.now() });
    expect(report.mapping_conflicts).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${old} maps http\\.response\\.status_code as keyword where this version maps it as \\w+.*reindex it`,
        ),
      ),
    ]);
  });

  it('runs once per interval per deployment under a lease, recorded in Redis and Elasticsearch, with metrics', async () => {
    const prefix = `${t.it.prefix}-runner`;
    const config = configWith(prefix, { lifecycle: { interval: '1h' } });
    await installCoreTemplates(t.it.es, { prefix });
    const runners = [1, 2, 3].map(
      () => new LifecycleRunner({ es: t.it.es, redis: t.redis, config, log: () => undefined }),
    );
    const reports = await Promise.all(runners.map((r) => r.tick()));
    expect(reports.filter((r) => r !== undefined)).toHaveLength(1);
    // Within the interval, nobody runs again.
    expect((await Promise.all(runners.map((r) => r.tick()))).filter((r) => r !== undefined)).toHaveLength(0);
    const last = await lastLifecycleRun(t.redis, prefix);
    expect(last?.started_at).toBe(reports.find((r) => r)!.started_at);
    await t.it.es.indices.refresh({ index: `${prefix}-lifecycle-runs` });
    expect((await t.it.es.count({ index: `${prefix}-lifecycle-runs` })).count).toBe(1);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/gatewatch_lifecycle_runs_total\{outcome="ok"\} [1-9]/);
    expect(metrics).toMatch(/gatewatch_lifecycle_last_run_timestamp_seconds [1-9]/);
    await Promise.all(runners.map((r) => r.stop()));
    // The API process, which runs no pass, shows the deployment's last one from Redis.
    exposeLifecycleMetrics(t.redis, prefix);
    await t.redis.set(
      `${prefix}:lifecycle:last`,
      JSON.stringify({ ...last, finished_at: '2000-01-01T00:00:00.000Z', outcome: 'error' }),
    );
    const scraped = await registry.metrics();
    expect(scraped).toMatch(/gatewatch_lifecycle_last_run_timestamp_seconds 946684800\n/);
    expect(scraped).toMatch(/gatewatch_lifecycle_last_run_ok 0\n/);
    await t.redis.del(`${prefix}:lifecycle:last`);
  });
});

/** The first generation of the day holding `at` (what the sink made for it). */
function generationOf(prefix: string, at: number): string {
  return `${prefix}-events-${dayOf(at)}-000001`;
}
