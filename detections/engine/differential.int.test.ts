/**
 * Three paths over the same seeded events must produce identical detections: same ids, group
 * keys, windows, counts, metric values, samples and rendered text. The in-process evaluator,
 * the Elasticsearch executor over the raw events, and (threshold and baseline rules) the
 * executor over partials kept as the events were delivered — in batches out of time order, one
 * delivered twice, records resent in other batches, workers killed between the events and the
 * partials (docs/partials.md). Every rule kind, variants of each construct, and the built-in pack.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { loadRuleFiles } from '../../parser/index.ts';
import type { Metric, RuleIR } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { PartialFolder, partialRule } from '../partials/fold.ts';
import { deliverWithFaults } from '../partials/testing.ts';
import { runRuleOnElasticsearch } from './elasticsearch.ts';
import { evaluateRule } from './evaluate.ts';
import { generateEvents } from './generate.ts';
import {
  baselineRule,
  ev,
  failedOutcome,
  filterRule,
  firstSeenCases,
  indexTestEvents,
  loginRoute,
  sequenceCases,
  statusIs,
  thresholdRule,
} from './testing.ts';
import type { Detection, TimeRange } from './types.ts';

const ctx = integrationContext('engine-diff');
const H = 3600_000;
const M = 60_000;
const START = Date.UTC(2025, 2, 1);
const SPAN = 48 * H;
const index = indexNames(ctx.prefix).eventsAlias;

async function indexEvents(events: GatewatchEvent[], into = ctx): Promise<void> {
  expect(await indexTestEvents(into.es, into.prefix, events)).toBe(0);
}

function comparable(d: Detection) {
  const metrics: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(d.metrics)) metrics[k] = v === null ? null : Number(v.toPrecision(12));
  return { ...d, metrics };
}

const events: GatewatchEvent[] = [
  ...generateEvents(20_000, { seed: 7, start: START, spanMs: SPAN, attackShare: 0.15 }),
];
const range: TimeRange = { start: START + 24 * H, end: START + 36 * H };

const packRules = (await loadRuleFiles(['detections/rules'])).rules;
const partials = { index: indexNames(ctx.prefix).partials };

beforeAll(async () => {
  await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
  const delivery = await deliverWithFaults(
    ctx.es,
    ctx.prefix,
    events,
    new PartialFolder([...custom, ...packRules]),
  );
  expect(delivery.redelivered * delivery.resent * delivery.crashed).toBeGreaterThan(0);
  // every event once, whatever the faults
  expect(await ctx.countEvents()).toBe(events.length);
});
afterAll(() => ctx.cleanup());

const login = loginRoute;
const fail = failedOutcome;
const status = statusIs;
const allMetrics: Metric[] = [
  { name: 'n', fn: 'count' },
  { name: 'fails', fn: 'count', where: fail },
  { name: 'users', fn: 'distinct_count', field: 'user.name' },
  { name: 'ips', fn: 'distinct_count', field: 'source.ip' },
  { name: 'bytes', fn: 'sum', field: 'http.response.bytes' },
  { name: 'avg_lat', fn: 'avg', field: 'gatewatch.upstream_latency_ms' },
  { name: 'min_b', fn: 'min', field: 'http.response.bytes' },
  { name: 'max_b', fn: 'max', field: 'http.response.bytes' },
  { name: 'p90', fn: 'percentile', field: 'gatewatch.upstream_latency_ms', p: 90 },
  { name: 'p50b', fn: 'percentile', field: 'http.response.bytes', p: 50 },
  { name: 'share', fn: 'ratio', where: fail },
  { name: 'share2', fn: 'ratio', where: status('>=', 400), of: { op: 'exists', field: 'user.name' } },
];

const custom: RuleIR[] = [
  filterRule('f-query-key', {
    op: 'or',
    args: [
      { op: 'cmp', field: 'gatewatch.api_key.location', cmp: '==', value: 'query' },
      { op: 'regex', field: 'url.query', pattern: '(?i)(^|&)(api[_-]?key|token)=' },
    ],
  }),
  filterRule('f-regex-fallback', { op: 'regex', field: 'url.query', pattern: '\\btoken=1\\d' }),
  filterRule('f-forms', {
    op: 'and',
    args: [
      { op: 'not', arg: { op: 'cidr', field: 'source.ip', cidrs: ['10.0.0.0/8', '2001:db8::/112'] } },
      { op: 'cmp', field: 'user.name', cmp: '!=', value: 'user3' },
      { op: 'contains', field: 'user_agent.original', value: 'SQLMAP', caseInsensitive: true },
      { op: 'in', field: 'tags', values: ['b'] },
    ],
  }),
  thresholdRule('t-all-metrics', {
    groupBy: ['source.ip'],
    window: { sizeMs: 10 * M, mode: 'tumbling' },
    metrics: allMetrics,
    having: { op: 'cmp', metric: 'n', cmp: '>=', value: 3 },
  }),
  thresholdRule(
    't-sliding',
    {
      groupBy: ['source.ip', 'user_agent.original'],
      window: { sizeMs: 15 * M, mode: 'sliding', slideMs: 5 * M },
      metrics: allMetrics,
      having: {
        op: 'or',
        args: [
          { op: 'cmp', metric: 'fails', cmp: '>=', value: 8 },
          { op: 'cmp_metric', metric: 'ips', cmp: '>', other: 'users' },
        ],
      },
    },
    { op: 'and', args: [login, { op: 'cmp', field: 'http.request.method', cmp: '==', value: 'POST' }] },
  ),
  thresholdRule('t-global', {
    groupBy: [],
    window: { sizeMs: H, mode: 'sliding', slideMs: 15 * M },
    metrics: allMetrics,
    having: { op: 'not', arg: { op: 'cmp', metric: 'share', cmp: '>', value: 0.5 } },
  }),
  thresholdRule('t-multivalued-key', {
    groupBy: ['tags'],
    window: { sizeMs: H, mode: 'tumbling' },
    metrics: [{ name: 'n', fn: 'count' }],
    having: { op: 'cmp', metric: 'n', cmp: '>', value: 1 },
  }),
  thresholdRule('t-terms-overflow', {
    groupBy: [],
    window: { sizeMs: 2 * H, mode: 'tumbling' },
    metrics: allMetrics,
    having: { op: 'cmp', metric: 'n', cmp: '>', value: 1 },
  }),
  ...sequenceCases(),
  ...firstSeenCases(),
  baselineRule('b-errors', {
    groupBy: ['gatewatch.route'],
    metric: { name: 'errors', fn: 'count', where: status('>=', 400) },
    windowMs: 10 * M,
    historyMs: 6 * H,
    comparison: { kind: 'stddev', min: 2 },
    minHistoryBuckets: 3,
  }),
  baselineRule('b-ratio', {
    groupBy: ['source.ip'],
    metric: { name: 'requests', fn: 'count' },
    windowMs: 10 * M,
    historyMs: 2 * H,
    comparison: { kind: 'ratio', min: 3 },
    minHistoryBuckets: 1,
    having: { op: 'cmp_metric', metric: 'requests', cmp: '>', other: 'baseline.mean' },
  }),
  baselineRule('b-avg', {
    groupBy: ['gatewatch.route'],
    metric: { name: 'lat', fn: 'avg', field: 'gatewatch.upstream_latency_ms' },
    windowMs: 30 * M,
    historyMs: 3 * H,
    comparison: { kind: 'stddev', min: 1 },
    minHistoryBuckets: 2,
  }),
];

describe('differential: in-process evaluator, Elasticsearch over raw events, over partials', async () => {
  const pack = await loadRuleFiles(['detections/rules']);
  const rules = [...custom, ...pack.rules];
  it('loads the built-in pack', () => {
    expect(pack.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
  const fired = new Map<string, number>();
  it.each(rules.map((r) => [r.id, r] as const))('%s', async (_id, rule) => {
    const local = evaluateRule(rule, events, range);
    const limits =
      rule.id === 't-terms-overflow'
        ? { pageSize: 7, pruneMinEvents: 0 }
        : { pageSize: 250, pruneMinEvents: 0, firstSeenSearches: 0 };
    const remote = await runRuleOnElasticsearch(ctx.es, index, rule, range, limits);
    expect(remote.degraded).toEqual(local.degraded);
    expect(remote.detections.map(comparable)).toEqual(local.detections.map(comparable));
    expect(remote.partials).toBeUndefined();
    fired.set(rule.id, local.detections.length);
    // first_seen ranges longer than the history are fetched and evaluated, partials or not
    if (
      partialRule(rule) &&
      (rule.kind !== 'first_seen' || range.end - range.start <= rule.firstSeen.historyMs)
    ) {
      const viaPartials = await runRuleOnElasticsearch(ctx.es, index, rule, range, { ...limits, partials });
      // read from partials, every day of them
      expect(viaPartials.partials?.chunks).toBeGreaterThan(0);
      expect(viaPartials.partials?.raw).toEqual([]);
      expect(viaPartials.degraded).toEqual(local.degraded);
      expect(viaPartials.detections.map(comparable)).toEqual(local.detections.map(comparable));
    }
  });
  it('the custom rules of every kind fire', () => {
    for (const kind of ['filter', 'threshold', 'sequence', 'first_seen', 'baseline']) {
      const n = custom.filter((r) => r.kind === kind).reduce((a, r) => a + (fired.get(r.id) ?? 0), 0);
      expect(n, kind).toBeGreaterThan(0);
    }
  });
});

describe('differential across a day boundary (candidate pruning per day and boundary stretch)', async () => {
  const pack = await loadRuleFiles(['detections/rules']);
  const crossing: TimeRange = { start: START + 12 * H, end: START + 36 * H };
  const rules = [...custom, ...pack.rules].filter((r) => r.kind === 'threshold' || r.kind === 'baseline');
  it.each(rules.map((r) => [r.id, r] as const))('%s', async (_id, rule) => {
    const local = evaluateRule(rule, events, crossing);
    const remote = await runRuleOnElasticsearch(ctx.es, index, rule, crossing, {
      pageSize: 250,
      pruneMinEvents: 0,
    });
    expect(remote.degraded).toEqual(local.degraded);
    expect(remote.detections.map(comparable)).toEqual(local.detections.map(comparable));
  });
});

// Users may configure several primary shards. Then a group's events are spread over shards by
// document id, and candidate pruning must use the per-shard minimum ⌈T/k⌉ (and widen when a
// request searched more shards than it assumed); terms and cardinality results are merged
// across shards. The same events in 3-shard indices must still give exactly the evaluator's
// detections.
describe('differential on indices with 3 primary shards', async () => {
  const sharded = integrationContext('engine-diff-3-shards');
  const pack = await loadRuleFiles(['detections/rules']);
  const crossing: TimeRange = { start: START + 12 * H, end: START + 36 * H };
  const rules = [...custom, ...pack.rules];
  beforeAll(async () => {
    await installCoreTemplates(sharded.es, { prefix: sharded.prefix, shards: 3 });
    await indexEvents(events, sharded);
    const settings = await sharded.es.indices.getSettings({
      index: indexNames(sharded.prefix).eventsPattern,
    });
    for (const s of Object.values(settings)) expect(s.settings?.index?.number_of_shards).toBe('3');
  });
  afterAll(() => sharded.cleanup());
  it.each(rules.map((r) => [r.id, r] as const))('%s', async (_id, rule) => {
    const local = evaluateRule(rule, events, crossing);
    const remote = await runRuleOnElasticsearch(
      sharded.es,
      indexNames(sharded.prefix).eventsAlias,
      rule,
      crossing,
      rule.id === 't-terms-overflow'
        ? { pageSize: 7, pruneMinEvents: 0 }
        : { pageSize: 250, pruneMinEvents: 0, firstSeenSearches: 0 },
    );
    expect(remote.degraded).toEqual(local.degraded);
    expect(remote.detections.map(comparable)).toEqual(local.detections.map(comparable));
  });
});

describe('evidence sampling: scanning the firing buckets and top hits per bucket give the same ids', async () => {
  const windowed = custom.filter((r) => r.kind === 'threshold' || r.kind === 'baseline');
  it.each(windowed.flatMap((r) => (['scan', 'top_hits'] as const).map((m) => [r.id, m, r] as const)))(
    '%s (%s)',
    async (_id, sampling, rule) => {
      const local = evaluateRule(rule, events, range);
      const remote = await runRuleOnElasticsearch(ctx.es, index, rule, range, {
        pageSize: 250,
        pruneMinEvents: 0,
        sampling,
      });
      expect(remote.detections.map(comparable)).toEqual(local.detections.map(comparable));
    },
  );
});

describe('degraded limits', () => {
  it('too many groups is reported, not silent', async () => {
    const rule = custom.find((r) => r.id === 't-all-metrics')!;
    const res = await runRuleOnElasticsearch(ctx.es, index, rule, range, { maxGroups: 10, pageSize: 5 });
    expect(res.degraded?.reason).toMatch(/more than 10 group windows/);
    const local = evaluateRule(rule, events, range, { maxGroups: 10 });
    expect(local.degraded?.reason).toMatch(/more than 10 group windows/);
  });
  it('too many distinct values is reported, and no distinct count is partial', async () => {
    const rule = custom.find((r) => r.id === 't-global')!;
    const res = await runRuleOnElasticsearch(ctx.es, index, rule, range, { maxGroups: 1000, pageSize: 40 });
    expect(res.degraded?.reason).toMatch(/more than 10000 \(group, bucket, value\) cells/);
    const local = evaluateRule(rule, events, range);
    const exact = new Map(local.detections.map((d) => [d.window.start, d.metrics]));
    const users = res.detections.map((d) => [d.metrics.users, exact.get(d.window.start)?.users]);
    // windows read before the limit are exact, the others have no value at all
    expect(users.some(([got]) => got === null)).toBe(true);
    expect(users.some(([got]) => got !== null)).toBe(true);
    for (const [got, want] of users) if (got !== null) expect(got).toBe(want);
  });
  it('too many sequence candidates is reported', async () => {
    // (s-trailing: one step, so every login success is a candidate; s-ato's candidates are
    // pruned to the stretches where 5 failures and a success fall within 15 minutes: none here)
    const rule = custom.find((r) => r.id === 's-trailing')!;
    const res = await runRuleOnElasticsearch(ctx.es, index, rule, range, { maxEvents: 10 });
    expect(res.degraded?.reason).toMatch(/more than 10 events/);
  });
});

void ev;
