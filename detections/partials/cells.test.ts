import { describe, expect, it } from 'vitest';
import type { HavingExpr, Metric } from '../../parser/ir.ts';
import {
  buildPlan,
  combine,
  emptyPartial,
  type GroupBuckets,
  thresholdWindows,
} from '../engine/aggregate.ts';
import { CellMerger, encodeCells, inexact } from './cells.ts';

const MIN = 60_000;
const metrics: Metric[] = [
  { name: 'failures', fn: 'count' },
  { name: 'ips', fn: 'distinct_count', field: 'source.ip' },
];
const plan = buildPlan(metrics);
const having: HavingExpr = {
  op: 'and',
  args: [
    { op: 'cmp', metric: 'failures', cmp: '>=', value: 5 },
    { op: 'cmp', metric: 'ips', cmp: '>=', value: 3 },
  ],
};

/** A group with one cell per minute: `counts[i]` events in minute i, each from its own address. */
function group(key: string, counts: number[]): GroupBuckets {
  const buckets = new Map();
  counts.forEach((n, i) => {
    const p = emptyPartial(plan);
    p.count = n;
    p.firstTs = i * MIN;
    p.lastTs = i * MIN + 1;
    for (let k = 0; k < n; k++) p.terms[0]!.set(`${key}-10.0.${i}.${k}`, 1);
    buckets.set(i * MIN, p);
  });
  return { key, values: [key], buckets };
}

const within = { start: 0, end: 10 * MIN };

describe('cells whose windows cannot fire keep their values unmerged', () => {
  const enc = encodeCells([group('busy', [1, 3, 4, 0, 1]), group('quiet', [1, 1, 1])], 256);
  // windows of two minutes: busy's [1m, 3m) holds 7 events and may fire; every other window holds fewer than 5
  const needed = (g: GroupBuckets) => {
    const out = new Set<number>();
    for (let s = 0; s < 5 * MIN; s += MIN) {
      const n = (g.buckets.get(s)?.count ?? 0) + (g.buckets.get(s + MIN)?.count ?? 0);
      if (n >= 5) for (const t of [s, s + MIN]) out.add(t);
    }
    return out;
  };

  it('merges the values of the needed buckets only, and counts everywhere', () => {
    const merger = new CellMerger(plan, MIN, 256, within);
    merger.add(enc);
    const groups = merger.result(needed);
    const busy = groups.get(groups.keys().next().value!)!;
    expect(busy.buckets.get(1 * MIN)!.deferred).toBeUndefined();
    expect(busy.buckets.get(1 * MIN)!.terms[0]!.size).toBe(3);
    expect(busy.buckets.get(2 * MIN)!.terms[0]!.size).toBe(4);
    expect(busy.buckets.get(0)!.deferred).toBe(true);
    expect(busy.buckets.get(0)!.count).toBe(1);
    const quiet = [...groups.values()][1]!;
    expect([...quiet.buckets.values()].every((p) => p.deferred && p.count === 1)).toBe(true);
    // a deferred cell is not inexact (its values are unknown to the reader, not sketched)
    expect(inexact(busy.buckets.get(0)!)).toBe(false);
  });

  it('combining a deferred cell is refused, not silently wrong', () => {
    const merger = new CellMerger(plan, MIN, 256, within);
    merger.add(enc);
    const busy = [...merger.result(needed).values()][0]!;
    expect(() => combine(plan, [busy.buckets.get(0)!, busy.buckets.get(MIN)!], 0)).toThrow(/cannot fire/);
    expect(() => combine(plan, [busy.buckets.get(0)!], 0)).toThrow(/cannot fire/);
  });

  it('windows over deferred cells fire exactly as over fully merged ones', () => {
    const all = new CellMerger(plan, MIN, 256, within);
    all.add(enc);
    const some = new CellMerger(plan, MIN, 256, within);
    some.add(enc);
    const full = thresholdWindows(plan, all.result().values(), 2 * MIN, MIN, within, having, 0);
    const lazy = thresholdWindows(plan, some.result(needed).values(), 2 * MIN, MIN, within, having, 0);
    expect(full.map((h) => [h.group.key, h.window.start, h.metrics.values])).toEqual(
      lazy.map((h) => [h.group.key, h.window.start, h.metrics.values]),
    );
    expect(full.map((h) => h.window.start)).toEqual([MIN]);
  });
});
