/**
 * Per kind: a positive scenario fires exactly the expected detections, a benign and a
 * near-threshold scenario fire nothing — on both backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { bulkWrite } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import type { FilterExpr, RuleIR } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { runRuleOnElasticsearch } from './elasticsearch.ts';
import { evaluateRule } from './evaluate.ts';
import { baselineRule, ev, filterRule, firstSeenRule, sequenceRule, thresholdRule } from './testing.ts';

const ctx = integrationContext('engine-scen');
const M = 60_000;
const H = 60 * M;
const T0 = Date.UTC(2025, 3, 1);
const range = { start: T0, end: T0 + H };

beforeAll(() => installCoreTemplates(ctx.es, { prefix: ctx.prefix }));
afterAll(() => ctx.cleanup());

let n = 0;
async function both(rule: RuleIR, events: GatewatchEvent[]) {
  const index = `${ctx.prefix}-events-s${n++}`;
  await bulkWrite(
    ctx.es,
    events.map((e) => ({ op: 'create' as const, index, id: String(e.event?.id), doc: e })),
    { refresh: 'wait_for' },
  );
  await ctx.es.indices.refresh({ index });
  const local = evaluateRule(rule, events, range).detections;
  const remote = (await runRuleOnElasticsearch(ctx.es, index, rule, range)).detections;
  expect(remote).toEqual(local);
  return local;
}

const fail: FilterExpr = { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' };
const ok: FilterExpr = { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'success' };
const from = (ip: string, o: string, user = 'bob') => ({
  'source.ip': ip,
  'event.outcome': o,
  'user.name': user,
});

describe('scenarios on both backends', () => {
  it('filter', async () => {
    const rule = filterRule('sc-filter', { op: 'cidr', field: 'source.ip', cidrs: ['203.0.113.0/24'] });
    expect(
      await both(rule, [
        ev(T0 + M, from('203.0.113.9', 'success')),
        ev(T0 + 2 * M, from('198.51.100.1', 'success')),
      ]),
    ).toHaveLength(1);
    expect(await both(rule, [ev(T0 + M, from('198.51.100.1', 'success'))])).toHaveLength(0);
    expect(await both(rule, [ev(T0 + H, from('203.0.113.9', 'success'))])).toHaveLength(0); // at range end
  });
  it('threshold', async () => {
    const rule = thresholdRule('sc-thr', {
      groupBy: ['source.ip'],
      window: { sizeMs: 10 * M, mode: 'tumbling' },
      metrics: [
        { name: 'fails', fn: 'count', where: fail },
        { name: 'users', fn: 'distinct_count', field: 'user.name' },
      ],
      having: {
        op: 'and',
        args: [
          { op: 'cmp', metric: 'fails', cmp: '>=', value: 5 },
          { op: 'cmp', metric: 'users', cmp: '>=', value: 5 },
        ],
      },
    });
    const burst = (k: number, o = 'failure') =>
      Array.from({ length: k }, (_, i) => ev(T0 + i * 1000, from('203.0.113.9', o, `u${i}`)));
    const pos = await both(rule, burst(5));
    expect(pos.map((d) => [d.groupKey, d.window.start, d.metrics])).toEqual([
      ['["203.0.113.9"]', T0, { fails: 5, users: 5 }],
    ]);
    expect(await both(rule, burst(5, 'success'))).toHaveLength(0);
    expect(await both(rule, burst(4))).toHaveLength(0);
  });
  it('sequence', async () => {
    const rule = sequenceRule('sc-seq', {
      by: ['user.name'],
      maxSpanMs: 10 * M,
      steps: [
        { name: 'failures', filter: fail, minCount: 3, absent: false },
        { name: 'success', filter: ok, minCount: 1, absent: false },
      ],
    });
    const seq = (fails: number, gap = M) => [
      ...Array.from({ length: fails }, (_, i) => ev(T0 + i * gap, from('203.0.113.9', 'failure'))),
      ev(T0 + fails * gap, from('203.0.113.9', 'success')),
    ];
    expect(await both(rule, seq(3))).toHaveLength(1);
    expect(
      await both(rule, [ev(T0, from('1.1.1.1', 'success')), ev(T0 + M, from('1.1.1.1', 'success'))]),
    ).toHaveLength(0);
    expect(await both(rule, seq(2))).toHaveLength(0);
    expect(await both(rule, seq(3, 4 * M))).toHaveLength(0); // span 12m > 10m
  });
  it('first_seen', async () => {
    const rule = firstSeenRule('sc-fs', {
      fields: ['source.as.number'],
      groupBy: ['user.name'],
      historyMs: H,
      ignoreNewGroups: true,
    });
    const asn = (t: number, a: number) => ev(t, { 'user.name': 'bob', 'source.as.number': a });
    expect(await both(rule, [asn(T0 - 30 * M, 1), asn(T0 + M, 2)])).toHaveLength(1);
    expect(await both(rule, [asn(T0 - 30 * M, 1), asn(T0 + M, 1)])).toHaveLength(0);
    expect(await both(rule, [asn(T0 - H - 1, 1), asn(T0 + M, 2)])).toHaveLength(0); // group older than history
  });
  it('first_seen: with `ignore new groups`, a group is known through its earlier values only', async () => {
    const spec = {
      fields: ['source.as.number'],
      groupBy: ['user.name'],
      historyMs: H,
      ignoreNewGroups: true,
    };
    const rule = firstSeenRule('sc-fs-groups', spec);
    const first = ev(T0 + M, { 'user.name': 'bob', 'source.as.number': 7 });
    // bob's earlier event has no ASN: no earlier (bob, ASN) key, so bob is a new group
    expect(await both(rule, [ev(T0 - 30 * M, { 'user.name': 'bob' }), first])).toHaveLength(0);
    // an earlier key of bob's makes the group known, and AS7 is new for it
    expect(
      await both(rule, [ev(T0 - 30 * M, { 'user.name': 'bob', 'source.as.number': 3 }), first]),
    ).toHaveLength(1);
    // the same instant: bob's first key event (by id) is AS3's, so AS7 meets a known group
    const tie = [
      ev(T0 + M, { 'user.name': 'bob', 'source.as.number': 3 }),
      ev(T0 + M, { 'user.name': 'bob', 'source.as.number': 7 }),
    ];
    expect(await both(rule, [ev(T0 - 30 * M, { 'user.name': 'bob' }), ...tie])).toHaveLength(1);
  });
  it('baseline', async () => {
    const rule = baselineRule('sc-base', {
      groupBy: ['url.path'],
      metric: { name: 'n', fn: 'count' },
      windowMs: 10 * M,
      historyMs: H,
      comparison: { kind: 'ratio', min: 4 },
      minHistoryBuckets: 2,
    });
    const at = (t: number, k: number) => Array.from({ length: k }, (_, i) => ev(t + i, { 'url.path': '/x' }));
    const hist = [...at(T0 - 60 * M, 3), ...at(T0 - 30 * M, 3)]; // mean over 6 buckets = 1
    expect(await both(rule, [...hist, ...at(T0, 4)])).toHaveLength(1);
    expect(await both(rule, [...hist, ...at(T0, 1)])).toHaveLength(0);
    expect(await both(rule, [...hist, ...at(T0, 3)])).toHaveLength(0);
  });
});

describe('cost follows the groups that can fire', () => {
  it('a scheduled baseline run reads the history of candidate groups only', async () => {
    // A day of quiet history on 40 routes, then a 10-minute run: only /hot reaches `having`
    // in the run's range, so only /hot's history is read (not every route's day).
    const rule = baselineRule('sc-base-prune', {
      groupBy: ['url.path'],
      metric: { name: 'n', fn: 'count' },
      windowMs: 10 * M,
      historyMs: 24 * H,
      comparison: { kind: 'ratio', min: 3 },
      minHistoryBuckets: 2,
      having: { op: 'cmp', metric: 'n', cmp: '>=', value: 5 },
    });
    const events: GatewatchEvent[] = [];
    for (let b = 1; b <= 144; b++)
      for (let r = 0; r < 40; r++) events.push(ev(T0 - b * 10 * M + r * 1000, { 'url.path': `/r${r}` }));
    for (let i = 0; i < 6; i++) events.push(ev(T0 + i * 1000, { 'url.path': '/r0' }));
    events.push(ev(T0 + 7000, { 'url.path': '/r1' }));
    const index = `${ctx.prefix}-events-prune`;
    await bulkWrite(
      ctx.es,
      events.map((e) => ({ op: 'create' as const, index, id: String(e.event?.id), doc: e })),
      { refresh: 'wait_for' },
    );
    const run = { start: T0, end: T0 + 10 * M };
    const local = evaluateRule(rule, events, run).detections;
    const remote = await runRuleOnElasticsearch(ctx.es, index, rule, run, { pruneMinEvents: 1000 });
    expect(local.map((d) => d.groupKey)).toEqual(['["/r0"]']);
    expect(remote.detections).toEqual(local);
    // /r0's 144 history buckets and its current one; reading every route would be 40 × 144 + 2
    expect(remote.cells).toBe(145);
  });
});
