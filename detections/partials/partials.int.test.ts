/**
 * Rule partials beyond the differential test (which holds the three paths equal on fully
 * covered data): days without partials are read raw and said so, sketched values are re-read
 * raw, compaction (also interrupted) changes nothing, a rule version added after the data reads
 * raw events, and a real ingest worker killed mid-batch leaves exact partials after redelivery.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { dayIndices, dayOf, rollOver } from '../../core/store/event-indices.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { storeBatch } from '../../ingest/sinks/batch.ts';
import { indexEvents } from '../../ingest/sinks/elasticsearch.ts';
import { loadRuleFiles } from '../../parser/index.ts';
import type { Metric, RuleIR } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { runRuleOnElasticsearch } from '../engine/elasticsearch.ts';
import { evaluateRule } from '../engine/evaluate.ts';
import { generateEvents } from '../engine/generate.ts';
import { baselineRule, ev, thresholdRule } from '../engine/testing.ts';
import type { Detection, TimeRange } from '../engine/types.ts';
import { compactPartials } from './compact.ts';
import { PartialFolder, partialRule } from './fold.ts';
import { compactDocId, type PartialDoc } from './store.ts';
import { deliverWithFaults } from './testing.ts';

const H = 3600_000;
const M = 60_000;
const DAY = 24 * H;
const START = Date.UTC(2025, 3, 1);

function comparable(d: Detection) {
  const metrics: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(d.metrics)) metrics[k] = v === null ? null : Number(v.toPrecision(12));
  return { ...d, metrics };
}

const metrics: Metric[] = [
  { name: 'n', fn: 'count' },
  { name: 'users', fn: 'distinct_count', field: 'user.name' },
  { name: 'paths', fn: 'distinct_count', field: 'url.path' },
  { name: 'p90', fn: 'percentile', field: 'gatewatch.upstream_latency_ms', p: 90 },
  { name: 'bytes', fn: 'sum', field: 'http.response.bytes' },
];
const custom: RuleIR[] = [
  thresholdRule('pt-route', {
    groupBy: ['gatewatch.route'],
    window: { sizeMs: 30 * M, mode: 'sliding', slideMs: 10 * M },
    metrics,
    having: { op: 'cmp', metric: 'paths', cmp: '>=', value: 5 },
  }),
  thresholdRule('pt-global', {
    groupBy: [],
    window: { sizeMs: H, mode: 'tumbling' },
    metrics,
    having: { op: 'cmp', metric: 'users', cmp: '>', value: 3 },
  }),
  baselineRule('pb-users', {
    groupBy: ['gatewatch.route'],
    metric: { name: 'users', fn: 'distinct_count', field: 'user.name' },
    windowMs: 10 * M,
    historyMs: 3 * H,
    comparison: { kind: 'ratio', min: 1.5 },
    minHistoryBuckets: 2,
  }),
];
const pack = (await loadRuleFiles(['detections/rules'])).rules;
const windowed = [...custom, ...pack].filter((r) => partialRule(r));
const all = [...generateEvents(8_000, { seed: 3, start: START, spanMs: 2 * DAY, attackShare: 0.15 })];
const day1 = all.filter((e) => Date.parse(e['@timestamp']) < START + DAY);
const day2 = all.filter((e) => Date.parse(e['@timestamp']) >= START + DAY);
const crossing: TimeRange = { start: START + 12 * H, end: START + 36 * H };

async function same(
  ctx: ReturnType<typeof integrationContext>,
  rule: RuleIR,
  exactValues?: number,
): Promise<Awaited<ReturnType<typeof runRuleOnElasticsearch>>> {
  const local = evaluateRule(rule, all, crossing);
  const res = await runRuleOnElasticsearch(ctx.es, indexNames(ctx.prefix).eventsAlias, rule, crossing, {
    pageSize: 250,
    pruneMinEvents: 0,
    partials: { index: indexNames(ctx.prefix).partials, ...(exactValues ? { exactValues } : {}) },
  });
  expect(res.degraded).toEqual(local.degraded);
  expect(res.detections.map(comparable)).toEqual(local.detections.map(comparable));
  return res;
}

describe('a day without partials is read from the raw events, and the run says so', () => {
  const ctx = integrationContext('partials-mixed');
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await deliverWithFaults(ctx.es, ctx.prefix, day1, new PartialFolder(windowed), { tag: 'd1' });
    // the second day was stored before the partials existed (or by something that does not fold)
    await indexEvents(ctx.es, structuredClone(day2), { prefix: ctx.prefix, refresh: true });
  });
  afterAll(() => ctx.cleanup());
  it.each(windowed.map((r) => [r.id, r] as const))('%s', async (_id, rule) => {
    const res = await same(ctx, rule);
    // first seen reads its key index only when the partials cover its whole history and
    // range: here it reads everything raw and says which day sent it there
    if (rule.kind === 'first_seen') {
      expect(res.partials?.chunks).toBe(0);
      expect(res.partials?.raw).toEqual([{ chunk: START + DAY, folded: 0, stored: day2.length }]);
      expect(res.note).toMatch(
        /^partials: 0 day\(s\) from partials; read raw for 2025-04-02 \(0 of [\d,]+ events/,
      );
      return;
    }
    // baselines read a week of history: the empty days before the data count as covered
    expect(res.partials?.chunks).toBeGreaterThanOrEqual(1);
    expect(res.partials?.raw).toEqual([{ chunk: START + DAY, folded: 0, stored: day2.length }]);
    expect(res.note).toMatch(/read raw for 2025-04-02 \(0 of [\d,]+ events in partials\)/);
  });
});

describe('sketched values: windows that may fire are re-read raw, so incidents stay exact', () => {
  const ctx = integrationContext('partials-sketch');
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    // at most 3 values per cell and field: most distinct counts become sketches
    await deliverWithFaults(ctx.es, ctx.prefix, all, new PartialFolder(windowed, { exactValues: 3 }), {
      tag: 's',
    });
  });
  afterAll(() => ctx.cleanup());
  it.each(custom.map((r) => [r.id, r] as const))('%s', async (_id, rule) => {
    const res = await same(ctx, rule, 3);
    expect(res.partials?.raw).toEqual([]);
    expect(res.partials?.reread).toBeGreaterThan(0);
    expect(res.note).toMatch(/re-read raw for exact distinct values/);
  });
});

describe('compaction', () => {
  const ctx = integrationContext('partials-compact');
  const index = () => indexNames(ctx.prefix).partials;
  const count = async (level: string) =>
    (await ctx.es.count({ index: index(), query: { term: { level } } })).count;
  // events of the first day that arrive only after it was compacted
  const late = day1.filter((_, i) => i % 40 === 0);
  const early = all.filter((e) => !late.includes(e));
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await deliverWithFaults(ctx.es, ctx.prefix, early, new PartialFolder(windowed), { tag: 'c' });
  });
  afterAll(() => ctx.cleanup());
  it('folds a day into one document per rule version; late batches after it are still counted', async () => {
    const batches = await count('batch');
    const res = await compactPartials(ctx.es, ctx.prefix, { before: START + DAY, refresh: true });
    expect(res.chunks).toBe(1);
    expect(res.written).toBe(windowed.length);
    expect(await count('compact')).toBe(windowed.length);
    expect(await count('batch')).toBe(batches - res.batchDocs);
    await deliverWithFaults(ctx.es, ctx.prefix, late, new PartialFolder(windowed), { tag: 'late' });
    for (const rule of windowed) expect((await same(ctx, rule)).partials?.raw).toEqual([]);
  });
  it('compacting again (the late batches, the second day) changes nothing', async () => {
    const res = await compactPartials(ctx.es, ctx.prefix, { before: START + 2 * DAY, refresh: true });
    expect(res.chunks).toBe(2);
    expect(await count('batch')).toBe(0);
    for (const rule of windowed) expect((await same(ctx, rule)).partials?.raw).toEqual([]);
  });
  it('a generation left beside its successor, and batches it holds (a crash before the deletes), are skipped', async () => {
    const rule = windowed[0]!;
    const key = `${rule.id}@${rule.version}`;
    const cur = await ctx.es.search<{ gen: number; folded: string[] }>({
      index: index(),
      size: 1,
      query: {
        bool: {
          filter: [{ term: { level: 'compact' } }, { term: { rule: key } }, { term: { chunk: START } }],
        },
      },
    });
    const doc = cur.hits.hits[0]!._source!;
    expect(doc.gen).toBe(2);
    // an older generation with the same cells, listing nothing: counting it would double
    await ctx.es.index({
      index: index(),
      id: compactDocId(key, START, 1),
      document: { ...doc, gen: 1, folded: [] },
      refresh: true,
    });
    // and a batch the newest generation already holds, written again by a redelivery
    await deliverWithFaults(ctx.es, ctx.prefix, late, new PartialFolder(windowed), { tag: 'late' });
    expect((await same(ctx, rule)).partials?.raw).toEqual([]);
    // the next compaction removes both
    await compactPartials(ctx.es, ctx.prefix, { before: START + 2 * DAY, refresh: true });
    expect(await count('batch')).toBe(0);
    expect((await same(ctx, rule)).partials?.raw).toEqual([]);
  });
});

describe('compaction in parts', () => {
  const ctx = integrationContext('partials-compact-parts');
  const index = () => indexNames(ctx.prefix).partials;
  type Doc = PartialDoc & { _id: string };
  const compacted = async (key: string): Promise<Doc[]> =>
    (
      await ctx.es.search<PartialDoc>({
        index: index(),
        size: 1000,
        query: {
          bool: {
            filter: [{ term: { level: 'compact' } }, { term: { rule: key } }, { term: { chunk: START } }],
          },
        },
      })
    ).hits.hits.map((h) => ({ ...h._source!, _id: h._id! }));
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await deliverWithFaults(ctx.es, ctx.prefix, all, new PartialFolder(windowed), { tag: 'p' });
  });
  afterAll(() => ctx.cleanup());
  it('a generation split into parts of at most partCells cells is read whole', async () => {
    const res = await compactPartials(ctx.es, ctx.prefix, {
      before: START + DAY,
      refresh: true,
      partCells: 20,
    });
    expect(res.written).toBeGreaterThan(windowed.length);
    const split = windowed.filter((r) => r.kind !== 'first_seen');
    let multi = 0;
    for (const rule of split) {
      const docs = await compacted(`${rule.id}@${rule.version}`);
      const head = docs.find((d) => d.part === 0)!;
      expect(head.parts).toBe(docs.length);
      if (docs.length > 1) multi++;
      // no part above the bound unless it holds a single group bigger than it
      for (const d of docs)
        if ((d.cells ?? 0) > 20)
          expect(
            new Set((d.body[d.rule!] as { c: unknown[][] }).c.map((c) => JSON.stringify(c[0]))).size,
          ).toBe(1);
    }
    expect(multi).toBeGreaterThan(0);
    for (const rule of windowed) expect((await same(ctx, rule)).partials?.raw).toEqual([]);
  });
  it('parts are split again by bytes (large value maps), never inside a group', async () => {
    // every batch delivered again, so the chunk is compacted anew
    await deliverWithFaults(ctx.es, ctx.prefix, all, new PartialFolder(windowed), { tag: 'p' });
    const res = await compactPartials(ctx.es, ctx.prefix, {
      before: START + DAY,
      refresh: true,
      partCells: 1_000_000,
      partBytes: 2_000,
    });
    expect(res.written).toBeGreaterThan(windowed.length);
    for (const rule of windowed) {
      const docs = await compacted(partialRule(rule)!.key);
      expect(docs.find((d) => d.part === 0)?.parts).toBe(docs.length);
      for (const d of docs)
        if ((d.bytes ?? 0) > 2_000)
          expect(
            new Set((d.body[d.rule!] as { c: unknown[][] }).c.map((c) => JSON.stringify(c[0]))).size,
          ).toBe(1);
    }
    for (const rule of windowed) expect((await same(ctx, rule)).partials?.raw).toEqual([]);
  });
  it('a generation cut short while being written (part 0 or another part missing) is skipped, then removed', async () => {
    const rule = windowed.find((r) => r.kind === 'threshold')!;
    const key = `${rule.id}@${rule.version}`;
    const docs = await compacted(key);
    expect(docs.length).toBeGreaterThan(2);
    const gen = docs[0]!.gen!;
    // gen + 1: its parts but part 0 (the crash came before it); gen + 2: part 0 and one part short
    for (const d of docs.filter((d) => d.part !== 0)) {
      const { _id, ...doc } = d;
      await ctx.es.index({
        index: index(),
        id: compactDocId(key, START, gen + 1, d.part),
        document: { ...doc, gen: gen + 1 },
      });
    }
    for (const d of docs.filter((d) => d.part !== 1)) {
      const { _id, ...doc } = d;
      await ctx.es.index({
        index: index(),
        id: compactDocId(key, START, gen + 2, d.part),
        document: { ...doc, gen: gen + 2 },
      });
    }
    // and batches the complete generation holds (every batch delivered again)
    await deliverWithFaults(ctx.es, ctx.prefix, all, new PartialFolder(windowed), { tag: 'p' });
    expect((await same(ctx, rule)).partials?.raw).toEqual([]);
    // the next compaction writes a generation above both and deletes everything below it
    await compactPartials(ctx.es, ctx.prefix, { before: START + DAY, refresh: true, partCells: 20 });
    const after = await compacted(key);
    expect(new Set(after.map((d) => d.gen))).toEqual(new Set([gen + 3]));
    expect(after.find((d) => d.part === 0)?.parts).toBe(after.length);
    expect((await same(ctx, rule)).partials?.raw).toEqual([]);
  });
});

describe('a batch redelivered after its day rolled over to a new generation', () => {
  const ctx = integrationContext('partials-rollover');
  beforeAll(() => installCoreTemplates(ctx.es, { prefix: ctx.prefix }));
  afterAll(() => ctx.cleanup());
  it('owns the events its first delivery stored in the earlier generation, once; another batch owns none', async () => {
    const batch = day1.slice(0, 300);
    const folder = new PartialFolder(windowed);
    // the first delivery stored the events, then the worker died before the partials
    const first = structuredClone(batch);
    for (const e of first) {
      e.gatewatch ??= {} as NonNullable<GatewatchEvent['gatewatch']>;
      e.gatewatch.ingest = { batch: 'roll-0' };
    }
    await indexEvents(ctx.es, first, { prefix: ctx.prefix });
    const day = dayOf(batch[0]!['@timestamp']);
    const before = await dayIndices(ctx.es, ctx.prefix, day);
    expect(before.indices).toHaveLength(1);
    await rollOver(ctx.es, ctx.prefix, day, before.write!);
    // redelivered: its copies land in the new generation and are taken out again
    const again = await storeBatch(ctx.es, structuredClone(batch), {
      prefix: ctx.prefix,
      batchId: 'roll-0',
      partials: folder,
    });
    expect((await dayIndices(ctx.es, ctx.prefix, day)).indices).toHaveLength(2);
    expect(again).toMatchObject({ written: 0, duplicates: batch.length, owned: batch.length });
    const resent = await storeBatch(ctx.es, structuredClone(batch.slice(0, 50)), {
      prefix: ctx.prefix,
      batchId: 'roll-1',
      partials: folder,
    });
    expect(resent).toMatchObject({ written: 0, duplicates: 50, owned: 0 });
  });
});

describe('a rule version added after the data', () => {
  const ctx = integrationContext('partials-new-version');
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await deliverWithFaults(ctx.es, ctx.prefix, all, new PartialFolder(windowed), { tag: 'n' });
  });
  afterAll(() => ctx.cleanup());
  it('reads the raw events (no partials of its version exist)', async () => {
    const changed = { ...custom[0]!, version: 'v-changed' } as RuleIR;
    const res = await same(ctx, changed);
    expect(res.partials).toBeUndefined();
  });
});

describe('compacted days: only the parts of groups that can fire are read', () => {
  const ctx = integrationContext('partials-pruned');
  // a window of 10 minutes (sliding every 5) needs 20 events, 5 of them errors
  const rule = thresholdRule('pt-pruned', {
    groupBy: ['source.ip'],
    window: { sizeMs: 10 * M, mode: 'sliding', slideMs: 5 * M },
    metrics: [
      { name: 'n', fn: 'count' },
      {
        name: 'errors',
        fn: 'count',
        where: { op: 'cmp', field: 'http.response.status_code', cmp: '>=', value: 500 },
      },
      { name: 'paths', fn: 'distinct_count', field: 'url.path' },
    ],
    having: {
      op: 'and',
      args: [
        { op: 'cmp', metric: 'n', cmp: '>=', value: 20 },
        { op: 'cmp', metric: 'errors', cmp: '>=', value: 5 },
        { op: 'cmp', metric: 'paths', cmp: '>=', value: 2 },
      ],
    },
  });
  const events: GatewatchEvent[] = [];
  const hit = (ip: string, t: number, i: number, status = 500) =>
    events.push(
      ev(
        t,
        { 'source.ip': ip, 'url.path': `/p/${i % 3}`, 'http.response.status_code': status },
        `${ip}-${t}-${i}`,
      ),
    );
  // 40 quiet addresses: an error every 30 minutes, all day (48 a day: a day's total would not
  // rule them out, two hours' do)
  for (let a = 0; a < 40; a++)
    for (let i = 0; i < 3 * 48; i++) hit(`10.0.0.${a}`, START + a * 11_000 + i * 30 * M, i);
  // 10 chatty addresses: 30 requests in 10 minutes, all answered (the events reach 20, the errors never 5)
  for (let a = 0; a < 10; a++)
    for (let i = 0; i < 30; i++) hit(`10.0.1.${a}`, START + DAY + 6 * H + i * 20_000, i, 200);
  // a burst inside day 2
  for (let i = 0; i < 25; i++) hit('10.9.9.1', START + DAY + 12 * H + i * 10_000, i);
  // 12 events before the first midnight and 12 after: neither day alone reaches 20, the window does
  for (let i = 0; i < 12; i++) hit('10.9.9.2', START + DAY - 4 * M + i * 10_000, i);
  for (let i = 0; i < 12; i++) hit('10.9.9.2', START + DAY + i * 10_000, i + 12);
  // 15 on day 1 and 15 on day 3: never in one window
  for (let i = 0; i < 15; i++) hit('10.9.9.3', START + 2 * H + i * 10_000, i);
  for (let i = 0; i < 15; i++) hit('10.9.9.3', START + 2 * DAY + 2 * H + i * 10_000, i);
  // quiet all day like the first 40, and a burst on day 2: only the hours around the burst count
  for (let i = 0; i < 3 * 48; i++) hit('10.9.9.4', START + 7_000 + i * 30 * M, i);
  for (let i = 0; i < 25; i++) hit('10.9.9.4', START + DAY + 18 * H + i * 10_000, i);
  const range = { start: START, end: START + 3 * DAY };
  const run = () =>
    runRuleOnElasticsearch(ctx.es, indexNames(ctx.prefix).eventsAlias, rule, range, {
      partials: { index: indexNames(ctx.prefix).partials },
      pruneMinEvents: 0,
    });
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await deliverWithFaults(ctx.es, ctx.prefix, events, new PartialFolder([rule]), { tag: 'q' });
  });
  afterAll(() => ctx.cleanup());

  it('finds what the evaluator and the raw path find, reading a fraction of the cells', async () => {
    const before = await run(); // batch documents: every cell is read
    await compactPartials(ctx.es, ctx.prefix, { before: START + 4 * DAY, refresh: true, partCells: 50 });
    const after = await run();
    const local = evaluateRule(rule, events, range).detections;
    const raw = await runRuleOnElasticsearch(ctx.es, indexNames(ctx.prefix).eventsAlias, rule, range, {
      pruneMinEvents: 0,
    });
    expect(new Set(local.map((d) => d.group['source.ip']))).toEqual(
      new Set(['10.9.9.1', '10.9.9.2', '10.9.9.4']),
    );
    expect(after.partials?.raw).toEqual([]);
    expect(after.detections.map(comparable)).toEqual(local.map(comparable));
    expect(raw.detections.map(comparable)).toEqual(local.map(comparable));
    expect(before.detections.map(comparable)).toEqual(local.map(comparable));
    // the quiet and chatty addresses' cells are most of the day; their parts are not fetched
    expect(before.cells).toBeGreaterThanOrEqual(40 * 3 * 48);
    expect(after.cells).toBeLessThan(before.cells / 10);
    // Of a fetched part, only the cells of the groups and hours a window that may fire touches
    // are merged: the bursts' few buckets and 10.9.9.4's quiet cells within an hour of its
    // burst (≤ 6), not its other 46 cells of that day nor the part's other groups.
    expect(after.cells).toBeLessThan(30);
  });
});

void ({} as GatewatchEvent);
