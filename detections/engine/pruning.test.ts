import { describe, expect, it } from 'vitest';
import type { FilterExpr, HavingExpr } from '../../parser/ir.ts';
import {
  buildPlan,
  combine,
  computeMetrics,
  emptyPartial,
  evalHaving,
  type GroupBuckets,
  type Partial,
  thresholdWindows,
} from './aggregate.ts';
import { coarsen, havingMaybe } from './elasticsearch.ts';
import { prng } from './generate.ts';

const r = (start: number, end: number) => ({ start, end });

describe('coarsen', () => {
  it('keeps ranges under the limit as they are', () => {
    const ranges = [r(0, 10), r(20, 30)];
    expect(coarsen(ranges, 2)).toEqual(ranges);
  });
  it('closes the smallest gaps first and covers every original range', () => {
    const ranges = [r(0, 10), r(12, 20), r(50, 60), r(61, 70), r(100, 110)];
    const out = coarsen(ranges, 3);
    expect(out).toEqual([r(0, 20), r(50, 70), r(100, 110)]);
    for (const x of ranges) expect(out.some((o) => o.start <= x.start && x.end <= o.end)).toBe(true);
  });
  it('ties close the earlier gap', () => {
    expect(coarsen([r(0, 1), r(2, 3), r(4, 5)], 2)).toEqual([r(0, 3), r(4, 5)]);
  });
});

describe('havingMaybe (windows pruned by their known metrics)', () => {
  const ge = (metric: string, value: number): HavingExpr => ({ op: 'cmp', metric, cmp: '>=', value });
  const spray: HavingExpr = {
    op: 'and',
    args: [ge('users', 15), ge('ratio', 0.95), { op: 'cmp', metric: 'attempts', cmp: '<', value: 300 }],
  };
  it('is false when a known conjunct is false, whatever the unknown metrics', () => {
    expect(havingMaybe(spray, { ratio: 0.5, attempts: 20 })).toBe(false);
    expect(havingMaybe(spray, { ratio: 1, attempts: 300 })).toBe(false);
  });
  it('is undefined while an unknown metric could still decide', () => {
    expect(havingMaybe(spray, { ratio: 1, attempts: 20 })).toBeUndefined();
  });
  it('is true when the known metrics decide it', () => {
    expect(havingMaybe({ op: 'or', args: [ge('n', 3), ge('users', 2)] }, { n: 5 })).toBe(true);
    expect(havingMaybe({ op: 'not', arg: ge('n', 3) }, { n: 1 })).toBe(true);
  });
  it('a null ratio (no events to divide by) compares false, as the evaluator does', () => {
    expect(havingMaybe(ge('ratio', 0.9), { ratio: null })).toBe(false);
  });
  it('a comparison with an unknown other metric is undecided', () => {
    const h: HavingExpr = { op: 'cmp_metric', metric: 'n', cmp: '>', other: 'users' };
    expect(havingMaybe(h, { n: 4 })).toBeUndefined();
  });
});

describe('thresholdWindows skips windows by their event counts only when `having` cannot hold', () => {
  it('finds exactly the windows a full evaluation of every window finds (random cells and conditions)', () => {
    const ge = (metric: string, value: number): HavingExpr => ({ op: 'cmp', metric, cmp: '>=', value });
    const rand = prng(5);
    const fail: FilterExpr = { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' };
    const plan = buildPlan([
      { name: 'n', fn: 'count' },
      { name: 'fails', fn: 'count', where: fail },
      { name: 'share', fn: 'ratio', where: fail },
      { name: 'users', fn: 'distinct_count', field: 'user.name' },
    ]);
    const conditions: HavingExpr[] = [
      { op: 'and', args: [ge('fails', 6), { op: 'cmp', metric: 'share', cmp: '>=', value: 0.5 }] },
      { op: 'or', args: [ge('n', 9), ge('users', 3)] },
      { op: 'not', arg: ge('n', 4) },
      { op: 'and', args: [ge('users', 2), { op: 'cmp', metric: 'n', cmp: '<', value: 7 }] },
      { op: 'cmp_metric', metric: 'users', cmp: '>', other: 'fails' },
    ];
    for (let round = 0; round < 40; round++) {
      const groups: GroupBuckets[] = [];
      for (let g = 0; g < 5; g++) {
        const buckets = new Map<number, Partial>();
        for (let b = 0; b < 12; b++) {
          if (rand() < 0.3) continue;
          const p = emptyPartial(plan);
          p.count = 1 + Math.floor(rand() * 5);
          p.wheres[0] = Math.floor(rand() * (p.count + 1));
          for (let u = 0; u < p.count; u++) p.terms[0]!.set(`u${Math.floor(rand() * 6)}`, 1);
          p.firstTs = b * 60_000;
          p.lastTs = b * 60_000 + 1;
          buckets.set(b * 60_000, p);
        }
        groups.push({ key: `g${g}`, values: [`g${g}`], buckets });
      }
      for (const having of conditions) {
        const range = { start: 0, end: 12 * 60_000 };
        const got = thresholdWindows(plan, groups, 3 * 60_000, 60_000, range, having, 0);
        // every window, combined and evaluated
        const want: string[] = [];
        for (const g of groups)
          for (let s = 0; s + 3 * 60_000 <= range.end; s += 60_000) {
            const parts = [0, 1, 2].flatMap((j) => g.buckets.get(s + j * 60_000) ?? []);
            if (parts.length === 0) continue;
            if (evalHaving(having, computeMetrics(plan, combine(plan, parts, 0)).values))
              want.push(`${g.key}@${s}`);
          }
        expect(got.map((h) => `${h.group.key}@${h.window.start}`)).toEqual(want);
      }
    }
  });
});
