import { describe, expect, it } from 'vitest';
import { buildPlan, emptyPartial } from '../aggregate.ts';
import { type SampleGroup, searchParts } from './samples.ts';

describe('evidence searches', () => {
  const plan = buildPlan([{ name: 'n', fn: 'count' }]);
  const group = (counts: number[]): SampleGroup => {
    const buckets = new Map(
      counts.map((count, i) => [i * 60_000, { ...emptyPartial(plan), count }] as const),
    );
    return { values: ['u'], buckets, starts: new Set(buckets.keys()) };
  };

  it('cut a group into searches of at most 1,000 buckets and 10,000 hits, in order', () => {
    // 3,000 busy buckets of 40 events (50 sampled at most: 40 each), then 2,500 of 1 event
    const g = group([...Array(3000).fill(40), ...Array(2500).fill(1)]);
    const parts = searchParts(g, 50);
    expect(parts.flatMap((p) => p.part)).toEqual([...g.starts].sort((a, b) => a - b));
    for (const p of parts) {
      expect(p.part.length).toBeLessThanOrEqual(1000);
      expect(p.hits).toBeLessThanOrEqual(10_000);
    }
    // the busy stretch is cut by hits (250 buckets of 40), the quiet one by buckets
    expect(parts.slice(0, 12).map((p) => p.part.length)).toEqual(Array(12).fill(250));
    expect(parts.slice(12).map((p) => p.part.length)).toEqual([1000, 1000, 500]);
  });

  it('a bucket larger than the cap is still one search of its own', () => {
    const parts = searchParts(group([5, 20_000, 5]), 20_000);
    expect(parts.map((p) => p.hits)).toEqual([5, 20_000, 5]);
  });
});
