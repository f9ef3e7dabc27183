/**
 * The background build of a new rule version's partials (build.ts), against the real
 * Elasticsearch: events stored with partials for version 1 only (ingest starting to fold
 * version 2 half-way through the last day), version 2 appears, the build runs in two halves (as
 * if interrupted) and is resumed; at each stage the runs through partials open exactly the
 * detections of the raw path and of the in-process evaluator, and the progress figures are
 * right. Then late events (from a worker with the new rule set, and from one with the old),
 * a batch in flight, and compaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { storeBatch } from '../../ingest/sinks/batch.ts';
import { indexEvents } from '../../ingest/sinks/elasticsearch.ts';
import { loadRuleFiles } from '../../parser/index.ts';
import type { Metric, RuleIR } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { runRuleOnElasticsearch } from '../engine/elasticsearch.ts';
import { evaluateRule } from '../engine/evaluate.ts';
import { generateEvents } from '../engine/generate.ts';
import { baselineRule, thresholdRule } from '../engine/testing.ts';
import type { Detection, TimeRange } from '../engine/types.ts';
import { startDetection } from '../runtime.ts';
import { type BuildProgress, buildPartials, buildStatusId } from './build.ts';
import { compactPartials } from './compact.ts';
import { PartialFolder, partialRule } from './fold.ts';
import { partialsStats } from './store.ts';
import { deliverWithFaults } from './testing.ts';

const H = 3600_000;
const M = 60_000;
const DAY = 24 * H;
const START = Date.UTC(2025, 4, 1);
const days = ['2025-05-01', '2025-05-02', '2025-05-03'];

const metrics: Metric[] = [
  { name: 'n', fn: 'count' },
  { name: 'users', fn: 'distinct_count', field: 'user.name' },
  { name: 'p90', fn: 'percentile', field: 'gatewatch.upstream_latency_ms', p: 90 },
];
const custom: RuleIR[] = [
  thresholdRule('bt-route', {
    groupBy: ['gatewatch.route'],
    window: { sizeMs: 30 * M, mode: 'sliding', slideMs: 10 * M },
    metrics,
    having: { op: 'cmp', metric: 'users', cmp: '>=', value: 4 },
  }),
  baselineRule('bb-users', {
    groupBy: ['gatewatch.route'],
    metric: { name: 'users', fn: 'distinct_count', field: 'user.name' },
    windowMs: 10 * M,
    historyMs: 3 * H,
    comparison: { kind: 'ratio', min: 1.5 },
    minHistoryBuckets: 2,
  }),
];
const pack = (await loadRuleFiles(['detections/rules'])).rules.filter((r) => partialRule(r));
// one or two of each partial kind from the built-in pack
const chosen = [
  ...pack.filter((r) => r.kind === 'threshold').slice(0, 2),
  ...pack.filter((r) => r.kind === 'baseline').slice(0, 1),
  ...pack.filter((r) => r.kind === 'first_seen').slice(0, 1),
];
const v1 = [...custom, ...chosen];
// version 2 of every rule (the same semantics under a new version: its partials are new)
const v2 = v1.map((r) => ({ ...r, version: `${r.version}-2` }) as RuleIR);
// the name partial documents give the version (a first_seen version's key index: `id@version#keys`)
const key = (r: RuleIR) => partialRule(r)!.key;

const events = [...generateEvents(6_000, { seed: 5, start: START, spanMs: 3 * DAY, attackShare: 0.15 })];
const onDay = (d: number) =>
  events.filter((e) => {
    const t = Date.parse(e['@timestamp']);
    return t >= START + d * DAY && t < START + (d + 1) * DAY;
  });
// the second half of the last day is stored by workers that fold both versions
const day3 = onDay(2);
const before = [...onDay(0), ...onDay(1), ...day3.slice(0, day3.length / 2)];
const after = day3.slice(day3.length / 2);
const range: TimeRange = { start: START, end: START + 3 * DAY };

function comparable(d: Detection) {
  const m: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(d.metrics)) m[k] = v === null ? null : Number(v.toPrecision(12));
  return { ...d, metrics: m };
}

describe('the background build of a new rule version', () => {
  const ctx = integrationContext('partials-build');
  const index = () => indexNames(ctx.prefix).partials;
  let stored: GatewatchEvent[] = [...events];
  const refresh = () => ctx.es.indices.refresh({ index: `${ctx.prefix}-*` });
  /** Partials, raw and evaluator agree for `rule`; returns the partials run. */
  async function same(rule: RuleIR) {
    const local = evaluateRule(rule, stored, range);
    const alias = indexNames(ctx.prefix).eventsAlias;
    const opts = { pageSize: 250, pruneMinEvents: 0 };
    const [viaPartials, raw] = await Promise.all([
      runRuleOnElasticsearch(ctx.es, alias, rule, range, { ...opts, partials: { index: index() } }),
      runRuleOnElasticsearch(ctx.es, alias, rule, range, opts),
    ]);
    expect(raw.detections.map(comparable)).toEqual(local.detections.map(comparable));
    expect(viaPartials.detections.map(comparable)).toEqual(local.detections.map(comparable));
    return viaPartials;
  }
  /** Events the batches folding `rule` hold on `day` (independent of the build). */
  async function heldByBatches(rule: string, day: string): Promise<number> {
    const res = await ctx.es.search({
      index: index(),
      size: 0,
      query: {
        bool: {
          filter: [
            { term: { level: 'batch' } },
            { term: { rules: rule } },
            { term: { chunk: Date.parse(`${day}T00:00:00Z`) } },
          ],
          must_not: [{ prefix: { batch: 'build:' } }],
        },
      },
      aggs: { e: { sum: { field: 'events' } } },
    });
    return (res.aggregations!.e as { value: number }).value;
  }
  const storedOn = (day: string) => stored.filter((e) => e['@timestamp'].startsWith(day)).length;
  const progress = async (): Promise<Map<string, BuildProgress>> =>
    new Map((await partialsStats(ctx.es, ctx.prefix))!.builds.map((b) => [b.rule, b]));
  const perSecond = new Set<string>();

  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await deliverWithFaults(ctx.es, ctx.prefix, before, new PartialFolder(v1), { tag: 'old' });
    await deliverWithFaults(ctx.es, ctx.prefix, after, new PartialFolder([...v1, ...v2]), { tag: 'new' });
  });
  afterAll(async () => {
    console.log(
      `build speed (events read and folded per second, per day built): ${[...perSecond].join('; ')}`,
    );
    await ctx.cleanup();
  });

  it('before the build: version 2 reads every day raw, and the runs say so', async () => {
    expect(await heldByBatches(key(v2[0]!), days[2]!)).toBe(after.length);
    for (const rule of v2) {
      const res = await same(rule);
      // no day covered: the raw path itself (no partials); baselines' empty history days are covered
      const raw = res.partials?.raw.map((r) => r.chunk) ?? [START, START + DAY, START + 2 * DAY];
      // first seen reads its key index only when every day is covered: here none is
      if (rule.kind === 'first_seen') expect(res.partials?.chunks ?? 0).toBe(0);
      else expect(raw).toEqual([START, START + DAY, START + 2 * DAY]);
    }
    // version 1 is covered everywhere
    for (const rule of v1.filter((r) => r.kind !== 'first_seen'))
      expect((await same(rule)).partials?.raw).toEqual([]);
  });

  it('half the build (the newest day first), then a restart: progress and runs at each stage', async () => {
    const first = await buildPartials(ctx.es, ctx.prefix, { rules: v2, maxDays: 1, refresh: true });
    // the newest day of every version, folding only the events no version-2 batch holds
    expect(first.built.map((b) => b.day)).toEqual(v2.map(() => days[2]));
    for (const b of first.built) {
      expect(b.events).toBe(storedOn(days[2]!) - after.length);
      expect(b.read).toBe(storedOn(days[2]!));
      perSecond.add(
        `${b.day} (${b.versions} version(s) from one read): ${Math.round((b.read / b.foldMs) * 1000)}`,
      );
    }
    expect(first.waiting).toEqual([]);
    const p = await progress();
    for (const rule of v2)
      expect(p.get(key(rule))).toEqual({
        rule: key(rule),
        daysBuilt: 1,
        daysToBuild: 3,
        events: storedOn(days[2]!) - after.length,
        waiting: 0,
        stuck: 0,
      });
    for (const rule of v2) {
      const res = await same(rule);
      if (rule.kind === 'first_seen') continue;
      expect(res.partials?.raw.map((r) => r.chunk)).toEqual([START, START + DAY]);
      expect(res.note).toMatch(/read raw for 2025-05-01 .* partials build in progress, 1 of 3 days built/);
    }
    // a worker killed after writing the next day's document but before its status: the status
    // is gone too (the worst case); the next pass finds the document and counts it
    const second = await buildPartials(ctx.es, ctx.prefix, {
      rules: v2.slice(0, 1),
      maxDays: 1,
      refresh: true,
    });
    expect(second.built).toEqual([expect.objectContaining({ rule: key(v2[0]!), day: days[1] })]);
    await ctx.es.delete({ index: index(), id: buildStatusId(key(v2[0]!)), refresh: true });
    const resumed = await buildPartials(ctx.es, ctx.prefix, { rules: v2, maxDays: 100, refresh: true });
    // version 2 of the first rule builds only its first day; the others both remaining days
    expect(resumed.built.filter((b) => b.rule === key(v2[0]!)).map((b) => b.day)).toEqual([days[0]]);
    for (const rule of v2.slice(1))
      expect(resumed.built.filter((b) => b.rule === key(rule)).map((b) => b.day)).toEqual([days[1], days[0]]);
    for (const b of resumed.built) {
      expect(b.events).toBe(storedOn(b.day));
      perSecond.add(
        `${b.day} (${b.versions} version(s) from one read): ${Math.round((b.read / b.foldMs) * 1000)}`,
      );
    }
    const done = await progress();
    const total = storedOn(days[0]!) + storedOn(days[1]!) + storedOn(days[2]!) - after.length;
    for (const rule of v2)
      expect(done.get(key(rule))).toMatchObject({ daysBuilt: 3, daysToBuild: 3, events: total });
    for (const rule of v2) {
      const res = await same(rule);
      if (rule.kind === 'first_seen') expect(res.partials).toBeDefined();
      else expect(res.partials?.raw).toEqual([]);
      expect(res.note ?? '').not.toMatch(/build in progress/);
    }
    // nothing left: a further pass builds nothing
    expect(
      (await buildPartials(ctx.es, ctx.prefix, { rules: v2, maxDays: 100, refresh: true })).built,
    ).toEqual([]);
  });

  it('late events from a worker with the new rule set keep the day covered', async () => {
    const late = [
      ...generateEvents(300, { seed: 9, start: START + 2 * H, spanMs: 6 * H, attackShare: 0.3 }),
    ].map((e) => ({ ...e, event: { ...e.event, id: `late-new-${e.event!.id}` } }) as GatewatchEvent);
    await deliverWithFaults(ctx.es, ctx.prefix, late, new PartialFolder([...v1, ...v2]), { tag: 'late-new' });
    stored = [...stored, ...late];
    for (const rule of v2) {
      const res = await same(rule);
      if (rule.kind !== 'first_seen') expect(res.partials?.raw).toEqual([]);
    }
  });

  it('late events from a worker with the old rule set: read raw, then the day is built again', async () => {
    const late = [
      ...generateEvents(200, { seed: 13, start: START + DAY + H, spanMs: 4 * H, attackShare: 0.3 }),
    ].map((e) => ({ ...e, event: { ...e.event, id: `late-old-${e.event!.id}` } }) as GatewatchEvent);
    await deliverWithFaults(ctx.es, ctx.prefix, late, new PartialFolder(v1), { tag: 'late-old' });
    stored = [...stored, ...late];
    for (const rule of v2) {
      const res = await same(rule);
      if (rule.kind !== 'first_seen') expect(res.partials?.raw.map((r) => r.chunk)).toEqual([START + DAY]);
    }
    // the first pass sees the day short and waits a pass (a day still receiving events is short
    // for a moment after each batch); the counts held still, so the next pass builds it again
    expect(
      (await buildPartials(ctx.es, ctx.prefix, { rules: v2, maxDays: 100, refresh: true })).built,
    ).toEqual([]);
    const again = await buildPartials(ctx.es, ctx.prefix, { rules: v2, maxDays: 100, refresh: true });
    expect(again.built.map((b) => b.day)).toEqual(v2.map(() => days[1]));
    for (const b of again.built) expect(b.events).toBe(storedOn(days[1]!));
    for (const rule of v2) {
      const res = await same(rule);
      if (rule.kind !== 'first_seen') expect(res.partials?.raw).toEqual([]);
    }
    const p = await progress();
    for (const rule of v2) expect(p.get(key(rule))).toMatchObject({ daysBuilt: 3, daysToBuild: 3 });
  });

  it('a batch whose events are stored but whose partials are not: the day waits, then is built', async () => {
    const inflight = [
      ...generateEvents(150, { seed: 17, start: START + 3 * H, spanMs: 2 * H, attackShare: 0.3 }),
    ].map((e) => ({ ...e, event: { ...e.event, id: `inflight-${e.event!.id}` } }) as GatewatchEvent);
    // an old-rule-set worker stored them and died before the partials
    const copy = structuredClone(inflight);
    for (const e of copy) {
      e.gatewatch ??= {} as NonNullable<GatewatchEvent['gatewatch']>;
      e.gatewatch.ingest = { batch: 'inflight-0' };
    }
    await indexEvents(ctx.es, copy, { prefix: ctx.prefix, refresh: true });
    stored = [...stored, ...inflight];
    const noticed = await buildPartials(ctx.es, ctx.prefix, { rules: v2, maxDays: 100, refresh: true });
    expect([noticed.built, noticed.waiting]).toEqual([[], []]);
    const waiting = await buildPartials(ctx.es, ctx.prefix, {
      rules: v2,
      maxDays: 100,
      refresh: true,
      rechecks: 1,
      recheckMs: 50,
    });
    expect(waiting.built).toEqual([]);
    expect(waiting.waiting).toEqual(
      expect.arrayContaining(v2.map((r) => ({ rule: key(r), day: days[0], undecided: inflight.length }))),
    );
    expect(waiting.waiting).toHaveLength(v2.length);
    expect((await progress()).get(key(v2[0]!))).toMatchObject({ daysBuilt: 3, daysToBuild: 3, waiting: 1 });
    for (const rule of v2) {
      const res = await same(rule);
      if (rule.kind !== 'first_seen') expect(res.partials?.raw.map((r) => r.chunk)).toEqual([START]);
    }
    // redelivered to the same old-rule-set worker: its partials name version 1 only
    await storeBatch(ctx.es, structuredClone(inflight), {
      prefix: ctx.prefix,
      batchId: 'inflight-0',
      partials: new PartialFolder(v1),
      refresh: true,
    });
    const built = await buildPartials(ctx.es, ctx.prefix, { rules: v2, maxDays: 100, refresh: true });
    expect(built.built.map((b) => b.day)).toEqual(v2.map(() => days[0]));
    // all but the late events a worker with the new rule set stored that day (their batches hold them)
    for (const b of built.built)
      expect(b.events).toBe(storedOn(days[0]!) - (await heldByBatches(b.rule, days[0]!)));
    expect(await heldByBatches(key(v2[0]!), days[0]!)).toBe(300);
    for (const rule of v2) {
      const res = await same(rule);
      if (rule.kind !== 'first_seen') expect(res.partials?.raw).toEqual([]);
    }
    expect((await progress()).get(key(v2[0]!))).toMatchObject({ daysBuilt: 3, daysToBuild: 3, waiting: 0 });
  });

  it('compaction folds the builds like any batch; progress holds; events without a batch are folded', async () => {
    await compactPartials(ctx.es, ctx.prefix, { before: START + 3 * DAY, refresh: true });
    expect((await ctx.es.count({ index: index(), query: { term: { level: 'batch' } } })).count).toBe(0);
    for (const rule of [...v1, ...v2]) {
      const res = await same(rule);
      if (rule.kind !== 'first_seen') expect(res.partials?.raw).toEqual([]);
    }
    const p = await progress();
    for (const rule of v2) expect(p.get(key(rule))).toMatchObject({ daysBuilt: 3, daysToBuild: 3 });
    // a day stored without any partials (partials off): the build folds all of it, version 1 too
    const next = [
      ...generateEvents(400, { seed: 21, start: START + 3 * DAY, spanMs: DAY, attackShare: 0.2 }),
    ];
    await indexEvents(ctx.es, structuredClone(next), { prefix: ctx.prefix });
    await refresh();
    stored = [...stored, ...next];
    const res = await buildPartials(ctx.es, ctx.prefix, {
      rules: [...v1, ...v2],
      maxDays: 100,
      refresh: true,
    });
    expect(res.built.map((b) => b.day).every((d) => d === '2025-05-04')).toBe(true);
    expect(res.built.length).toBe(v1.length + v2.length);
    for (const b of res.built) expect(b.events).toBe(next.length);
    const all = { start: START, end: START + 4 * DAY };
    for (const rule of v2.filter((r) => r.kind !== 'first_seen')) {
      const viaPartials = await runRuleOnElasticsearch(
        ctx.es,
        indexNames(ctx.prefix).eventsAlias,
        rule,
        all,
        {
          pruneMinEvents: 0,
          partials: { index: index() },
        },
      );
      expect(viaPartials.partials?.raw).toEqual([]);
      expect(viaPartials.detections.map(comparable)).toEqual(
        evaluateRule(rule, stored, all).detections.map(comparable),
      );
    }
    const final = await progress();
    expect(final.get(key(v1[0]!))).toMatchObject({ daysBuilt: 1, daysToBuild: 1, events: next.length });
    // version 1 leaves the rule set: its progress goes, version 2's stays
    await buildPartials(ctx.es, ctx.prefix, { rules: v2, refresh: true });
    expect([...(await progress()).keys()].sort()).toEqual(v2.map(key).sort());
  });
});

describe('the detection worker builds in the background', () => {
  const ctx = integrationContext('partials-build-worker');
  afterAll(() => ctx.cleanup());
  it('builds the days a rule version lacks within seconds of starting', async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    // a day stored before any partials existed
    const day = onDay(0).slice(0, 600);
    await indexEvents(ctx.es, structuredClone(day), { prefix: ctx.prefix, refresh: true });
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
      },
    });
    const rules = custom;
    const runtime = await startDetection(config, { rules, worker: true });
    try {
      const deadline = Date.now() + 90_000;
      let builds: BuildProgress[] = [];
      while (Date.now() < deadline) {
        builds = (await partialsStats(ctx.es, ctx.prefix))?.builds ?? [];
        if (builds.length === rules.length && builds.every((b) => b.daysBuilt === 1)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(new Map(builds.map((b) => [b.rule, b]))).toEqual(
        new Map(
          rules.map((r) => [
            key(r),
            { rule: key(r), daysBuilt: 1, daysToBuild: 1, events: day.length, waiting: 0, stuck: 0 },
          ]),
        ),
      );
    } finally {
      await runtime.close();
    }
    await ctx.es.indices.refresh({ index: indexNames(ctx.prefix).partials });
    const dayRange = { start: START, end: START + DAY };
    for (const rule of rules) {
      const res = await runRuleOnElasticsearch(ctx.es, indexNames(ctx.prefix).eventsAlias, rule, dayRange, {
        partials: { index: indexNames(ctx.prefix).partials },
      });
      expect(res.partials?.raw).toEqual([]);
      expect(res.detections.map(comparable)).toEqual(
        evaluateRule(rule, day, dayRange).detections.map(comparable),
      );
    }
  });
});
