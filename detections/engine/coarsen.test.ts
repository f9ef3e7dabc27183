import { describe, expect, it } from 'vitest';
import { coarsen } from './elasticsearch.ts';

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
