import { describe, expect, it } from 'vitest';
import type { HavingExpr } from '../../parser/ir.ts';
import { coarsen, havingMaybe } from './elasticsearch.ts';

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
