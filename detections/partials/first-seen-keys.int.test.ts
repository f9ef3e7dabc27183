/**
 * The first-seen key index (docs/partials.md, "First seen") against a real Elasticsearch: every
 * built-in first_seen rule and the differential first_seen cases open the same detections
 * through the key index, the raw path and the evaluator, for a backtest and a series of
 * scheduled ranges (the first starting mid-hour, a key seen on both sides of that start in its
 * hour, keys seen before the history that reappear, a group new in the range); the key documents
 * are exactly the fold of every event once, whatever the delivery faults, and writing them again
 * changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { storeBatch } from '../../ingest/sinks/batch.ts';
import { loadRuleFiles } from '../../parser/index.ts';
import type { FirstSeenRule, RuleIR } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { runRuleOnElasticsearch } from '../engine/elasticsearch.ts';
import { evaluateRule } from '../engine/evaluate.ts';
import { generateEvents } from '../engine/generate.ts';
import { ev, firstSeenCases, firstSeenRule } from '../engine/testing.ts';
import type { TimeRange } from '../engine/types.ts';
import { compactPartials } from './compact.ts';
import { HOUR_MS, keyDocId, mergeKey, writeFirstSeenKeys } from './first-seen-keys.ts';
import { PartialFolder } from './fold.ts';
import { deliverWithFaults } from './testing.ts';

const H = HOUR_MS;
const M = 60_000;
const DAY = 24 * H;
const START = Date.UTC(2025, 4, 1);
/** On the hour, 30 days and 6 hours into the data. */
const T = START + 30 * DAY + 6 * H;

const custom: FirstSeenRule[] = [
  // the differential test's first_seen cases
  ...firstSeenCases(),
  // the built-in ASN rule's shape without its filter, for the hand-made keys below
  firstSeenRule('fs-asn-30d', {
    fields: ['source.as.number'],
    groupBy: ['gatewatch.api_key.fingerprint'],
    historyMs: 30 * DAY,
    ignoreNewGroups: true,
  }),
];
const pack = (await loadRuleFiles(['detections/rules'])).rules.filter(
  (r): r is FirstSeenRule => r.kind === 'first_seen',
);
const rules: FirstSeenRule[] = [...custom, ...pack];

/** A successful call with API key `f` from AS `asn` (network `AS<asn>`, a country per AS): what the built-in rules read. */
const fp = (f: string, asn: number) => ({
  'gatewatch.api_key.fingerprint': f,
  'source.as.number': asn,
  'gatewatch.network.id': `AS${asn}`,
  'source.geo.country_iso_code': { 64999: 'NZ', 64998: 'DE', 1: 'FR', 2: 'IT' }[asn],
  'http.response.status_code': 200,
});
const at = (ts: number, id: string, fields: Record<string, unknown>) => ev(ts, fields, `hand-${id}`);
/** Keys whose answer is known: the generic data alone might not reach these branches. */
const hand: GatewatchEvent[] = [
  // seen 31 days before, its group known since 2 days: new again at T+9m (fs-asn-30d and the
  // built-in rules)
  at(T - 31 * DAY, 'a1', fp('fp-again', 64999)),
  at(T - 2 * DAY, 'a2', fp('fp-again', 64998)),
  // seen on both sides of the first scheduled start (T+7m) in the same hour: not new
  at(T + 3 * M, 'a3', fp('fp-again', 64998)),
  at(T + 8 * M, 'a4', fp('fp-again', 64998)),
  at(T + 9 * M, 'a5', fp('fp-again', 64999)),
  // a group new in the range: its first key is ignored, its second is new (group known by then)
  at(T + 11 * M, 'b1', fp('fp-brand-new', 1)),
  at(T + 12 * M, 'b2', fp('fp-brand-new', 2)),
  // seen 5 hours before with a 2-hour history: new again (fs-ip-short-history)
  at(T - 5 * H, 'c1', { 'source.ip': '203.0.113.77' }),
  at(T + 12 * M, 'c2', { 'source.ip': '203.0.113.77' }),
  // last seen in the hour holding t − 2h: decided by the exact time (raw read of that hour)
  at(T - 110 * M, 'd1', { 'source.ip': '203.0.113.79' }),
  at(T + 15 * M, 'd2', { 'source.ip': '203.0.113.79' }),
  at(T - 119 * M, 'd3', { 'source.ip': '203.0.113.80' }),
  at(T - 104 * M, 'd4', { 'source.ip': '203.0.113.80' }),
  at(T + 10 * M, 'd5', { 'source.ip': '203.0.113.80' }),
  // seen 5 minutes before the start, in its hour: not new
  at(T + 2 * M, 'c3', { 'source.ip': '203.0.113.78' }),
  at(T + 14 * M, 'c4', { 'source.ip': '203.0.113.78' }),
];
const events: GatewatchEvent[] = [
  ...generateEvents(24_000, { seed: 5, start: START, spanMs: 31 * DAY, attackShare: 0.15 }),
  ...hand,
];
const backtest: TimeRange = { start: T - 12 * H + 13 * M, end: T - 13 * M };
const shortBacktest: TimeRange = { start: T - 2 * H + 13 * M, end: T - 13 * M };
/** Scheduled runs of 10 minutes, the first starting mid-hour, across an hour boundary. */
const scheduled: TimeRange[] = Array.from({ length: 8 }, (_, i) => ({
  start: T + 7 * M + i * 10 * M,
  end: T + 17 * M + i * 10 * M,
}));

const ctx = integrationContext('fs-keys');
const index = indexNames(ctx.prefix).eventsAlias;
const partials = { index: indexNames(ctx.prefix).partials };
const folder = new PartialFolder(rules);

type KeySource = Record<string, unknown>;
async function keyDocs(): Promise<Map<string, KeySource>> {
  const out = new Map<string, KeySource>();
  let after: (string | number)[] | undefined;
  for (;;) {
    const res = await ctx.es.search<KeySource>({
      index: partials.index,
      size: 1000,
      query: { term: { level: 'key' } },
      sort: [{ rule: 'asc' }, { key: 'asc' }],
      ...(after ? { search_after: after } : {}),
    });
    for (const h of res.hits.hits) out.set(h._id!, h._source!);
    if (res.hits.hits.length < 1000) return out;
    after = res.hits.hits.at(-1)!.sort as (string | number)[];
  }
}

beforeAll(async () => {
  await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
  const d = await deliverWithFaults(ctx.es, ctx.prefix, events, folder, { tag: 'k' });
  expect(d.redelivered * d.resent * d.crashed).toBeGreaterThan(0);
  expect(await ctx.countEvents()).toBe(events.length);
}, 300_000);
afterAll(() => ctx.cleanup());

describe('the key index holds every event once, whatever the delivery', () => {
  it('its documents are the fold of all events, each once (late, redelivered, resent, crashed batches)', async () => {
    const expected = new Map<string, KeySource>();
    for (const u of folder.fold(events).keys?.upserts ?? [])
      expected.set(keyDocId(u.rule, u.key), { ...mergeKey(undefined, u)! });
    const stored = await keyDocs();
    expect(stored.size).toBeGreaterThan(1000);
    expect(stored).toEqual(expected);
  });

  it('writing the keys again, or resending stored records in a new batch, changes nothing', async () => {
    const before = await keyDocs();
    const again = folder.fold(events.slice(0, 3000)).keys!.upserts;
    expect(await writeFirstSeenKeys(ctx.es, partials.index, again)).toBe(0);
    const resent = await storeBatch(ctx.es, structuredClone(events.slice(5000, 5600)), {
      prefix: ctx.prefix,
      batchId: 'resend-late',
      partials: folder,
      refresh: true,
    });
    expect(resent.owned).toBe(0);
    await ctx.es.indices.refresh({ index: partials.index });
    expect(await keyDocs()).toEqual(before);
  });
});

describe('concurrent workers', () => {
  it('upserting overlapping keys at once gives the fold of all their events', async () => {
    const rule = 'concurrent@1';
    const slices = [0, 1, 2, 3].map((i) =>
      folder
        .fold(events.slice(i * 4000, i * 4000 + 6000))
        .keys!.upserts.filter((u) => u.rule.startsWith('fs-ip-short-history@'))
        .map((u) => ({ ...u, rule })),
    );
    await Promise.all(slices.map((ups) => writeFirstSeenKeys(ctx.es, partials.index, ups)));
    await ctx.es.indices.refresh({ index: partials.index });
    const expected = new Map<string, KeySource>();
    for (const ups of slices)
      for (const u of ups) {
        const id = keyDocId(u.rule, u.key);
        const merged = mergeKey(expected.get(id) as Parameters<typeof mergeKey>[0], u);
        if (merged) expected.set(id, merged as unknown as KeySource);
      }
    const stored = new Map([...(await keyDocs())].filter(([, d]) => d.rule === rule));
    // the slices overlap: many keys were written by several workers
    expect(slices[0]!.filter((u) => slices[1]!.some((v) => v.key === u.key)).length).toBeGreaterThan(10);
    expect(stored).toEqual(expected);
  });
});

describe('three paths: key index, raw events, evaluator', () => {
  const cases = rules.flatMap((rule) =>
    [
      ['backtest', rule.firstSeen.historyMs >= 12 * H ? backtest : shortBacktest] as const,
      ...scheduled.map((r, i) => [`scheduled ${i + 1}`, r] as const),
    ].map(([name, range]) => [rule.id, name, rule, range] as const),
  );
  const fired = new Map<string, number>();
  it.each(cases)('%s, %s', async (_id, _name, rule, range) => {
    const local = evaluateRule(rule as RuleIR, events, range);
    const limits = { pageSize: 250, pruneMinEvents: 0, firstSeenSearches: 0 };
    const raw = await runRuleOnElasticsearch(ctx.es, index, rule, range, limits);
    const keys = await runRuleOnElasticsearch(ctx.es, index, rule, range, { ...limits, partials });
    expect(raw.partials).toBeUndefined();
    // through the key index: every day of history and range covered
    expect(keys.partials?.raw).toEqual([]);
    expect(keys.partials?.chunks).toBe(
      Math.floor((range.end - 1) / DAY) - Math.floor((range.start - rule.firstSeen.historyMs) / DAY) + 1,
    );
    expect(raw.degraded).toEqual(local.degraded);
    expect(keys.degraded).toEqual(local.degraded);
    expect(raw.detections).toEqual(local.detections);
    expect(keys.detections).toEqual(local.detections);
    fired.set(rule.id, (fired.get(rule.id) ?? 0) + local.detections.length);
  });

  it('the hand-made keys are decided as the evaluator decides them', () => {
    const first = scheduled[0]!;
    const keysOf = (id: string) =>
      evaluateRule(rules.find((r) => r.id === id) as RuleIR, events, first).detections.map((d) =>
        (JSON.parse(d.groupKey) as unknown[]).join('/'),
      );
    expect(keysOf('fs-asn-30d')).toContain('fp-again/64999');
    expect(keysOf('fs-asn-30d')).toContain('fp-brand-new/2');
    expect(keysOf('fs-asn-30d')).not.toContain('fp-brand-new/1');
    expect(keysOf('fs-asn-30d')).not.toContain('fp-again/64998');
    expect(keysOf('api-key-new-asn').sort()).toEqual(['fp-again/AS64999', 'fp-brand-new/AS2']);
    expect(keysOf('api-key-new-country').sort()).toEqual(['fp-again/NZ', 'fp-brand-new/IT']);
    expect(keysOf('fs-ip-short-history')).toContain('203.0.113.77');
    expect(keysOf('fs-ip-short-history')).not.toContain('203.0.113.78');
    expect(keysOf('fs-ip-short-history')).toContain('203.0.113.79');
    expect(keysOf('fs-ip-short-history')).not.toContain('203.0.113.80');
  });

  it('every rule fires somewhere (the comparisons are not of empty lists)', () => {
    for (const r of rules) expect(fired.get(r.id) ?? 0, r.id).toBeGreaterThan(0);
  });
});

describe('bounded', () => {
  it('more keys than maxGroups: the run is degraded and says so, as the raw path is', async () => {
    const rule = rules.find((r) => r.id === 'fs-route')!;
    const limits = { pageSize: 250, pruneMinEvents: 0, maxGroups: 5 };
    const raw = await runRuleOnElasticsearch(ctx.es, index, rule, backtest, limits);
    const keys = await runRuleOnElasticsearch(ctx.es, index, rule, backtest, { ...limits, partials });
    expect(keys.partials?.raw).toEqual([]);
    expect(raw.degraded?.reason).toMatch(/more than 5 first_seen keys/);
    expect(keys.degraded).toEqual(raw.degraded);
  });
});

describe('after compaction', () => {
  it('the compacted days still prove the key index, and the three paths still agree', async () => {
    const res = await compactPartials(ctx.es, ctx.prefix, { before: T - DAY, refresh: true });
    expect(res.batchDocs).toBeGreaterThan(0);
    for (const rule of rules) {
      const range = scheduled[0]!;
      const local = evaluateRule(rule as RuleIR, events, range);
      const keys = await runRuleOnElasticsearch(ctx.es, index, rule, range, {
        pageSize: 250,
        pruneMinEvents: 0,
        firstSeenSearches: 0,
        partials,
      });
      expect(keys.partials?.raw, rule.id).toEqual([]);
      expect(keys.detections, rule.id).toEqual(local.detections);
    }
  });
});

describe('cost of a scheduled run over 30 days of history', () => {
  it('prints the key documents read against the hour cells the previous design read', async () => {
    const range = scheduled[0]!;
    for (const rule of rules.filter((r) => r.firstSeen.historyMs === 30 * DAY)) {
      const res = await runRuleOnElasticsearch(ctx.es, index, rule, range, { partials });
      expect(res.partials?.raw).toEqual([]);
      // the previous design read one cell per (key, hour) with events in history and range
      const from = Math.floor((range.start - rule.firstSeen.historyMs) / H) * H;
      let cells = 0;
      for (const d of (await keyDocs()).values())
        if (d.rule === `${rule.id}@${rule.version}`)
          for (const h of Object.keys(d.hours as object))
            if (Number(h) >= from && Number(h) < range.end) cells++;
      console.log(
        `${rule.id}: scheduled run of 10 min over 30 days of history: ${res.cells} key documents read, ` +
          `${cells} hour cells the hour-cell design read`,
      );
    }
  });
});
