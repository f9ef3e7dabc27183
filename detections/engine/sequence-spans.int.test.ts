/**
 * A sequence backtest on Elasticsearch reads only the stretches where a match can lie (per
 * partition, the pairs of `within`-buckets holding every step's minimum; ./kinds/sequence.ts).
 * Seeded bursts of failures are placed at random against those stretches' edges — an `until`
 * or an absent step's event just outside a burst, a trailing absence decided by an event just
 * after it, bursts straddling the range's ends and buckets — and the Elasticsearch run must
 * find what the evaluator finds over every event, while reading far fewer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import type { FilterExpr } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { runRuleOnElasticsearch } from './elasticsearch.ts';
import { evaluateRule } from './evaluate.ts';
import { prng } from './generate.ts';
import { compileSequence } from './sequence.ts';
import { ev, indexTestEvents, sequenceRule } from './testing.ts';
import type { TimeRange } from './types.ts';

const ctx = integrationContext('sequence-spans');
const index = indexNames(ctx.prefix).eventsAlias;
const M = 60_000;
const H = 60 * M;
const START = Date.UTC(2025, 4, 1);

const login: FilterExpr = { op: 'cmp', field: 'url.path', cmp: '==', value: '/login' };
const status = (cmp: '<' | '>=', value: number): FilterExpr => ({
  op: 'cmp',
  field: 'http.response.status_code',
  cmp,
  value,
});
const failure: FilterExpr = { op: 'and', args: [login, status('>=', 400)] };
const success: FilterExpr = { op: 'and', args: [login, status('<', 300)] };
const reset: FilterExpr = { op: 'cmp', field: 'url.path', cmp: '==', value: '/password/reset' };
const other: FilterExpr = { op: 'cmp', field: 'url.path', cmp: '==', value: '/api/orders' };

const rules = [
  sequenceRule('span-until', {
    by: ['user.name'],
    maxSpanMs: 15 * M,
    steps: [
      { name: 'failures', filter: failure, minCount: 5, absent: false },
      { name: 'success', filter: success, minCount: 1, absent: false },
    ],
    until: reset,
  }),
  sequenceRule('span-absent-max', {
    by: ['user.name', 'source.ip'],
    maxSpanMs: 10 * M,
    steps: [
      { name: 'failures', filter: failure, minCount: 3, maxCount: 8, absent: false },
      { name: 'no_reset', filter: reset, minCount: 1, absent: true },
      { name: 'success', filter: success, minCount: 1, absent: false },
    ],
  }),
  sequenceRule('span-trailing', {
    by: ['user.name'],
    maxSpanMs: 20 * M,
    steps: [
      { name: 'failures', filter: failure, minCount: 4, absent: false },
      { name: 'success', filter: success, minCount: 1, absent: false },
      { name: 'quiet', filter: other, minCount: 1, absent: true },
    ],
  }),
];

/** Sparse traffic of 60 users over 30 hours, and bursts of failures placed at random. */
function world(seed: number): GatewatchEvent[] {
  const r = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const out: GatewatchEvent[] = [];
  const request = (ts: number, user: string, ip: string, path: string, code: number) =>
    out.push(
      ev(
        Math.round(ts),
        {
          'user.name': user,
          'source.ip': ip,
          'url.path': path,
          'http.response.status_code': code,
        },
        `s${seed}-${String(out.length).padStart(6, '0')}`,
      ),
    );
  for (let u = 0; u < 60; u++) {
    const user = `user${u}`;
    const ips = [`10.0.${u}.1`, `10.0.${u}.2`];
    // background: a request every 5–60 minutes, mostly API calls, some logins and resets
    for (let t = START + r() * H; t < START + 30 * H; t += (5 + r() * 55) * M) {
      const x = r();
      if (x < 0.6) request(t, user, pick(ips), '/api/orders', 200);
      else if (x < 0.8) request(t, user, pick(ips), '/login', 200);
      else if (x < 0.95) request(t, user, pick(ips), '/login', 401);
      else request(t, user, pick(ips), '/password/reset', 200);
    }
    // bursts: 2–8 failures (some below every rule's minimum) over up to 25 minutes
    for (let b = 0; b < 1 + Math.floor(r() * 4); b++) {
      const at = START + r() * 30 * H;
      const n = 2 + Math.floor(r() * 7);
      const d = r() * 25 * M;
      const ip = pick(ips);
      for (let i = 0; i < n; i++) request(at + (d * i) / Math.max(1, n - 1), user, ip, '/login', 401);
      const end = at + d;
      if (r() < 0.8) request(end + r() * 6 * M, user, ip, '/login', 200);
      // an until / absent event near the burst: inside, just before or just after it
      if (r() < 0.4) request(at + (r() * 1.6 - 0.3) * d, user, ip, '/password/reset', 200);
      // the trailing absence decided by an API call shortly after (or not)
      if (r() < 0.5) request(end + r() * 30 * M, user, ip, '/api/orders', 200);
    }
  }
  return out;
}

const SEEDS = [1, 2, 3, 4, 5, 6];
const events = SEEDS.flatMap((s) =>
  // each seed its own users, so seeds do not interfere with each other's matches
  world(s).map((e) => {
    const name = (e as { user: { name: string } }).user.name;
    (e as { user: { name: string } }).user.name = `s${s}-${name}`;
    return e;
  }),
);
// range ends inside the data, not on bucket boundaries
const ranges: TimeRange[] = [
  { start: START + 2 * H + 7 * M + 13_000, end: START + 27 * H + 41 * M },
  { start: START, end: START + 31 * H },
];

beforeAll(async () => {
  await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
  expect(await indexTestEvents(ctx.es, ctx.prefix, events)).toBe(0);
}, 120_000);

afterAll(() => ctx.cleanup());

describe('sequence backtests read only the stretches where a match can lie', () => {
  it.each(rules.flatMap((rule) => ranges.map((range, i) => [rule.id, i, rule, range] as const)))(
    '%s, range %i: the same detections as the evaluator over every event',
    async (_id, _i, rule, range) => {
      const local = evaluateRule(rule, events, range);
      const candidates = events.filter((e) => {
        const ts = Date.parse(e['@timestamp']);
        return ts >= range.start && ts < range.end && compileSequence(rule).candidate(e);
      }).length;
      for (const limits of [{ pruneMinEvents: 0, pageSize: 300 }, {}]) {
        const remote = await runRuleOnElasticsearch(ctx.es, index, rule, range, limits);
        expect(remote.degraded).toBeUndefined();
        expect(remote.detections).toEqual(local.detections);
        // the stretches are a small part of the candidates (the background is most of them)
        expect(remote.sequence?.eventsRead).toBeLessThan(candidates / 3);
      }
      expect(local.detections.length).toBeGreaterThanOrEqual(5);
    },
  );
});
