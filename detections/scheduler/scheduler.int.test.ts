/**
 * Scheduling without gaps or duplicates, on real Redis and Elasticsearch, with a controlled
 * clock: overlapping look-backs, late events, a two-hour downtime, two workers racing and a
 * run that dies mid-way. The incident count must be exactly right every time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../core/queue/bullmq.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { bulkWrite, indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { parseRules } from '../../parser/index.ts';
import type { RuleIR } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { elasticsearchExecutor } from '../runtime.ts';
import { DetectionScheduler, type RuleExecutor, runRecordMappings } from './scheduler.ts';

const ctx = integrationContext('scheduler');
const names = indexNames(ctx.prefix);
const MIN = 60_000;
const T0 = Date.parse('2026-11-20T10:00:00.000Z');

const RULE = `
rule burst-401 {
  title "401 burst"
  description "Five or more 401s from one IP in a five-minute window."
  severity high
  tags ["API2:2023", "T1110"]
  schedule every 5m lookback 15m lateness 1m
  where http.response.status_code == 401
  threshold {
    group by source.ip
    window 5m
    metric failures = count()
    having failures >= 5
  }
  incident {
    title "401 burst from {source.ip}"
    summary "{failures} failures"
    entities ip: source.ip
  }
}
`;

function rule(): RuleIR {
  const parsed = parseRules(RULE, { file: 'scheduler-test.gwr' });
  expect(parsed.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return parsed.rules[0]!;
}

let seq = 0;
/** `n` 401s from `ip` spread inside the 5-minute window starting at `windowStart`. */
function burst(ip: string, windowStart: number, n = 6): GatewatchEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    '@timestamp': new Date(windowStart + 10_000 + i * 20_000).toISOString(),
    event: { id: `ev-${ip}-${windowStart}-${i}-${seq++}`, outcome: 'failure' },
    source: { ip },
    http: { request: { method: 'POST' }, response: { status_code: 401 } },
    url: { path: '/login' },
  }));
}

async function index(events: GatewatchEvent[]): Promise<void> {
  const result = await bulkWrite(
    ctx.es,
    events.map((doc) => ({
      op: 'create',
      index: names.eventsIndexFor(doc['@timestamp']),
      id: doc.event!.id!,
      doc,
    })),
    { refresh: 'wait_for' },
  );
  expect(result.rejected).toBe(0);
}

async function incidents(): Promise<Incident[]> {
  await ctx.es.indices.refresh({ index: names.incidents, ignore_unavailable: true });
  const r = await ctx.es.search<Incident>({ index: names.incidents, size: 1000, ignore_unavailable: true });
  return r.hits.hits.map((h) => h._source!);
}

describe('detection scheduler (real Redis and Elasticsearch, controlled clock)', () => {
  let now = T0;
  const redisPromise = connectRedis(ctx.redisUrl, 'producer');
  const schedulers: DetectionScheduler[] = [];

  async function makeScheduler(queuePrefix: string, execute?: RuleExecutor, leaseMs = 60_000) {
    const s = new DetectionScheduler({
      es: ctx.es,
      redis: await redisPromise,
      redisUrl: ctx.redisUrl,
      prefix: ctx.prefix,
      queuePrefix,
      rules: [rule()],
      execute: execute ?? elasticsearchExecutor(ctx.es, ctx.prefix, 100_000),
      maxCatchUpMs: 30 * MIN,
      leaseMs,
      clock: () => now,
    });
    await s.init();
    schedulers.push(s);
    return s;
  }

  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
  });
  afterAll(async () => {
    for (const s of schedulers) await s.close();
    (await redisPromise).disconnect();
    await ctx.cleanup();
  });

  it('overlapping look-backs and late events within lateness: each window fires exactly once', async () => {
    const s = await makeScheduler(`${ctx.prefix}-a`);
    // Both windows lie inside the first run's look-back, [T0 − 16m, T0 − 1m).
    await index([...burst('203.0.113.1', T0 - 15 * MIN), ...burst('203.0.113.2', T0 - 10 * MIN)]);
    now = T0;
    await s.runRule('burst-401');
    expect((await incidents()).length).toBe(2);
    // Next runs overlap the previous range by the look-back: nothing new, nothing doubled.
    now = T0 + 5 * MIN;
    await s.runRule('burst-401');
    now = T0 + 10 * MIN;
    await s.runRule('burst-401');
    expect((await incidents()).length).toBe(2);

    // A late burst: its events are indexed after the run that covered their window, but
    // within the look-back of the next run.
    await index(burst('203.0.113.3', T0 + 5 * MIN));
    now = T0 + 15 * MIN;
    await s.runRule('burst-401');
    const all = await incidents();
    expect(all.map((i) => i.group['source.ip']).sort()).toEqual([
      '203.0.113.1',
      '203.0.113.2',
      '203.0.113.3',
    ]);
    expect(all.every((i) => i.occurrences === 1)).toBe(true);
  });

  it('catches up a two-hour downtime in bounded steps without skipping a range', async () => {
    const s = await makeScheduler(`${ctx.prefix}-a`);
    const before = (await incidents()).length;
    const last = (await s.getCheckpoint('burst-401'))!;
    // Bursts spread over the two hours the scheduler was down.
    const windows = [10, 35, 60, 95, 115].map((m) => Math.floor((last + m * MIN) / (5 * MIN)) * 5 * MIN);
    await index(windows.flatMap((w, i) => burst(`198.51.100.${i + 1}`, w)));
    now = last + 2 * 60 * MIN + MIN;
    const records = await s.runRule('burst-401');
    expect(records.length).toBeGreaterThanOrEqual(4); // 30-minute steps
    // Consecutive steps leave no hole between them.
    for (let i = 1; i < records.length; i++) {
      expect(Date.parse(records[i]!.range_start)).toBeLessThanOrEqual(Date.parse(records[i - 1]!.range_end));
    }
    expect((await incidents()).length).toBe(before + windows.length);
    expect(await s.getCheckpoint('burst-401')).toBe(now - MIN);
  });

  it('two workers racing on one rule: one runs, the other is skipped, no duplicates', async () => {
    const a = await makeScheduler(`${ctx.prefix}-a`);
    const b = await makeScheduler(`${ctx.prefix}-a`);
    const before = (await incidents()).length;
    const last = (await a.getCheckpoint('burst-401'))!;
    const w = Math.ceil(last / (5 * MIN)) * 5 * MIN;
    await index(burst('192.0.2.200', w));
    now = w + 11 * MIN;
    const [ra, rb] = await Promise.all([a.runRule('burst-401'), b.runRule('burst-401')]);
    const outcomes = [...ra, ...rb].map((r) => r.outcome);
    expect(outcomes.filter((o) => o === 'skipped').length).toBe(1);
    expect((await incidents()).length).toBe(before + 1);
  });

  it('a run that dies mid-way is redone after its lease expires, without duplicates', async () => {
    const real = elasticsearchExecutor(ctx.es, ctx.prefix, 100_000);
    let dying = true;
    // Finds the incidents, then "dies": the promise never settles and the lease is never released.
    const crashing: RuleExecutor = async (r, range, at) => {
      const result = await real(r, range, at);
      if (dying) return new Promise(() => undefined);
      return result;
    };
    const victim = await makeScheduler(`${ctx.prefix}-a`, crashing, 1_500);
    const before = (await incidents()).length;
    const last = (await victim.getCheckpoint('burst-401'))!;
    const w = Math.ceil(last / (5 * MIN)) * 5 * MIN;
    await index([...burst('192.0.2.201', w), ...burst('192.0.2.202', w)]);
    now = w + 11 * MIN;
    void victim.runRule('burst-401');
    await new Promise((r) => setTimeout(r, 300));
    // Another worker right away: the lease is still held.
    const survivor = await makeScheduler(`${ctx.prefix}-a`);
    expect((await survivor.runRule('burst-401')).map((r) => r.outcome)).toEqual(['skipped']);
    expect(await survivor.getCheckpoint('burst-401')).toBe(last);
    // After the lease expires the range is run again from the unchanged checkpoint.
    await new Promise((r) => setTimeout(r, 1_600));
    dying = false;
    const records = await survivor.runRule('burst-401');
    expect(records.map((r) => r.outcome)).toEqual(['ok']);
    expect((await incidents()).length).toBe(before + 2);
    // And once more for good measure: an overlapping rerun changes nothing.
    now += 5 * MIN;
    await survivor.runRule('burst-401');
    expect((await incidents()).length).toBe(before + 2);
  });

  it('run records carry the cells a run read, also in a run index made before that field existed', async () => {
    // The run-record index an earlier version made: a strict mapping without cells_read.
    const prefix = `${ctx.prefix}-old`;
    const runs = indexNames(prefix).ruleRuns;
    const { cells_read: _, ...before } = runRecordMappings.properties;
    await ctx.es.indices.create({
      index: runs,
      mappings: { dynamic: 'strict', properties: before as never },
    });
    const s = new DetectionScheduler({
      es: ctx.es,
      redis: await redisPromise,
      redisUrl: ctx.redisUrl,
      prefix,
      queuePrefix: prefix,
      rules: [rule()],
      execute: elasticsearchExecutor(ctx.es, ctx.prefix, 100_000),
      maxCatchUpMs: 30 * MIN,
      clock: () => now,
    });
    await s.init();
    schedulers.push(s);
    const w = Math.ceil(now / (5 * MIN)) * 5 * MIN + 60 * MIN;
    await index(burst('192.0.2.77', w));
    now = w + 11 * MIN;
    const records = await s.runRule('burst-401');
    expect(records.map((r) => r.outcome)).toEqual(['ok']);
    // the burst's one (ip, 5-minute bucket) cell
    expect(records[0]!.cells_read).toBe(1);
    await ctx.es.indices.refresh({ index: runs });
    const stored = await ctx.es.search<{ cells_read?: number }>({ index: runs, query: { match_all: {} } });
    expect(stored.hits.hits.map((h) => h._source!.cells_read)).toEqual([1]);
  });

  it('a baseline rule with less history than it needs says so in its run record', async () => {
    const [baseline] = parseRules(
      `rule spike-401 {
  title "401 spike"
  severity medium
  where http.response.status_code == 401
  baseline {
    group by source.ip
    metric failures = count()
    window 10m
    history 1d
    spike ratio >= 3
    min_buckets 72
  }
  incident {
    entities ip: source.ip
  }
}
`,
      { file: 'history-test.gwr' },
    ).rules;
    const prefix = `${ctx.prefix}-hist`;
    await installCoreTemplates(ctx.es, { prefix });
    const w = Math.ceil(now / (5 * MIN)) * 5 * MIN;
    await bulkWrite(
      ctx.es,
      burst('192.0.2.88', w).map((doc) => ({
        op: 'create' as const,
        index: indexNames(prefix).eventsIndexFor(doc['@timestamp']),
        id: doc.event!.id!,
        doc,
      })),
      { refresh: 'wait_for' },
    );
    now = w + 2 * 60 * MIN;
    const s = new DetectionScheduler({
      es: ctx.es,
      redis: await redisPromise,
      redisUrl: ctx.redisUrl,
      prefix,
      queuePrefix: prefix,
      rules: [baseline!],
      execute: elasticsearchExecutor(ctx.es, prefix, 100_000),
      maxCatchUpMs: 30 * MIN,
      clock: () => now,
    });
    await s.init();
    schedulers.push(s);
    const runs = await s.runRule('spike-401');
    expect(runs.at(-1)!.note).toMatch(
      /^needs 12h of history before it compares; the events begin 2h? before/,
    );
  });
});
