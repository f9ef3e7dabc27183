/**
 * Partial cells: what a threshold or baseline rule aggregates per (group, bucket), kept as
 * events arrive (docs/partials.md). A cell is the engine's `Partial` (../engine/aggregate.ts):
 * counts, where-counts, numeric stats and the values of each distinct/percentile field. Values
 * are exact up to `exactValues` per cell and field; past that the cell keeps a HyperLogLog and a
 * log-bucketed quantile histogram (inventory/sketch.ts) and is inexact: readers never decide an
 * incident on it (they re-read such windows from the raw events).
 *
 * Cells are stored per rule version as JSON (`EncodedCells`) and merged at read time: counts
 * and stats add, value maps add, sketches merge. Merging is commutative and associative, so
 * batches and compactions fold in any order.
 */
import {
  DistinctSketch,
  type DistinctSketchJSON,
  histAdd,
  histMerge,
  histQuantile,
  type SizeHistogramJSON,
} from '../../inventory/sketch.ts';
import type { RuleIR } from '../../parser/ir.ts';
import {
  type AggPlan,
  emptyPartial,
  type GroupBuckets,
  type Partial,
  type TermKey,
} from '../engine/aggregate.ts';
import { DAY_MS } from '../engine/es/run.ts';
import { groupKeyOf } from '../engine/values.ts';

export function partialRuleKey(rule: RuleIR): string {
  return `${rule.id}@${rule.version}`;
}

export const chunkOf = (t: number): number => Math.floor(t / DAY_MS) * DAY_MS;

/** Values past the exact limit: sketches, merged exactly. */
export interface Overflow {
  /** Events carrying a value (the histogram's total). */
  n: number;
  hll: DistinctSketch;
  hist: SizeHistogramJSON;
}

/** A merged cell: a Partial whose overflowing value fields carry sketches. */
export interface Cell extends Partial {
  sketches?: (Overflow | undefined)[];
  /** Encoded value lists not merged yet: merging them is most of a read's work, so it waits for `finish`. */
  pending?: EncodedTerms[][];
}

/**
 * Which buckets of a group need their values (distinct counts, percentiles): the others are in
 * no window that can fire, decided from counts and numeric stats alone. Undefined: all of them.
 */
export type ValuesNeeded = (group: GroupBuckets) => Set<number> | undefined;

type EncodedStat = [n: number, sum: number, min: number | null, max: number | null];
type EncodedTerms = [TermKey, number][] | { n: number; h: DistinctSketchJSON; q: SizeHistogramJSON };
/**
 * [group index, bucket start − base, count, first ts − bucket start, last ts − bucket start,
 * where counts, stats, terms]: offsets keep the JSON short.
 */
type EncodedCell = [number, number, number, number, number, number[], EncodedStat[], EncodedTerms[]];

export interface EncodedCells {
  /** Time the bucket offsets count from. */
  b: number;
  /** Group key values, referenced by index from the cells. */
  g: (string | number | boolean)[][];
  c: EncodedCell[];
}

function overflowOf(values: Map<TermKey, number>): Overflow {
  const o: Overflow = { n: 0, hll: new DistinctSketch(0), hist: {} };
  for (const [v, c] of values) addToOverflow(o, v, c);
  return o;
}

function addToOverflow(o: Overflow, v: TermKey, c: number): void {
  o.n += c;
  o.hll.add(String(v));
  if (typeof v === 'number') histAdd(o.hist, v, c);
}

function encodeTerms(
  t: Map<TermKey, number> | null,
  sketch: Overflow | undefined,
  exactValues: number,
): EncodedTerms {
  if (t !== null && t.size <= exactValues) return [...t.entries()];
  const o = sketch ?? overflowOf(t ?? new Map());
  return { n: o.n, h: o.hll.toJSON(), q: o.hist };
}

/** Cells of one rule (per group, per bucket) → JSON; sets past `exactValues` become sketches. */
export function encodeCells(groups: Iterable<GroupBuckets>, exactValues: number): EncodedCells {
  const list = [...groups];
  let base = Number.POSITIVE_INFINITY;
  for (const g of list) for (const t of g.buckets.keys()) if (t < base) base = t;
  const out: EncodedCells = { b: Number.isFinite(base) ? base : 0, g: [], c: [] };
  for (const g of list) {
    const gi = out.g.length;
    out.g.push(g.values);
    for (const [t, p] of g.buckets) {
      const cell = p as Cell;
      out.c.push([
        gi,
        t - out.b,
        p.count,
        p.firstTs - t,
        p.lastTs - t,
        p.wheres,
        p.stats.map((s): EncodedStat => [s.n, s.sum, s.n === 0 ? null : s.min, s.n === 0 ? null : s.max]),
        p.terms.map((m, i) => encodeTerms(m, cell.sketches?.[i], exactValues)),
      ]);
    }
  }
  return out;
}

/** Every bucket of these cells, per chunk (UTC day). */
export function splitByChunk(groups: Iterable<GroupBuckets>): Map<number, GroupBuckets[]> {
  const out = new Map<number, Map<string, GroupBuckets>>();
  for (const g of groups)
    for (const [t, p] of g.buckets) {
      const chunk = chunkOf(t);
      let m = out.get(chunk);
      if (!m) {
        m = new Map();
        out.set(chunk, m);
      }
      let part = m.get(g.key);
      if (!part) {
        part = { key: g.key, values: g.values, buckets: new Map() };
        m.set(g.key, part);
      }
      part.buckets.set(t, p);
    }
  return new Map([...out].map(([k, m]) => [k, [...m.values()]]));
}

/**
 * Merges encoded cells into per-group buckets. Only buckets entirely inside `within` are kept
 * (a bucket straddling a run's range is never part of a window it evaluates).
 */
export class CellMerger {
  readonly groups = new Map<string, GroupBuckets>();
  cells = 0;
  private readonly plan: AggPlan;
  private readonly bucketMs: number;
  private readonly exactValues: number;
  private readonly within: { start: number; end: number };
  constructor(plan: AggPlan, bucketMs: number, exactValues: number, within: { start: number; end: number }) {
    this.plan = plan;
    this.bucketMs = bucketMs;
    this.exactValues = exactValues;
    this.within = within;
  }

  /** `keep`, when given: only the cells it keeps (by group key and bucket start). */
  add(enc: EncodedCells, keep?: (key: string, t: number) => boolean): void {
    const keys = enc.g.map((values) => groupKeyOf(values));
    for (const [gi, dt, count, first, last, wheres, stats, terms] of enc.c) {
      const t = enc.b + dt;
      const firstTs = t + first;
      const lastTs = t + last;
      if (t < this.within.start || t + this.bucketMs > this.within.end) continue;
      const key = keys[gi]!;
      if (keep && !keep(key, t)) continue;
      let g = this.groups.get(key);
      if (!g) {
        g = { key, values: enc.g[gi]!, buckets: new Map() };
        this.groups.set(key, g);
      }
      let p = g.buckets.get(t) as Cell | undefined;
      if (!p) {
        p = emptyPartial(this.plan);
        g.buckets.set(t, p);
        this.cells++;
      }
      p.count += count;
      if (firstTs < p.firstTs) p.firstTs = firstTs;
      if (lastTs > p.lastTs) p.lastTs = lastTs;
      for (let i = 0; i < wheres.length; i++) p.wheres[i]! += wheres[i]!;
      for (let i = 0; i < stats.length; i++) {
        const [n, sum, min, max] = stats[i]!;
        const s = p.stats[i]!;
        s.n += n;
        s.sum += sum;
        if (min !== null && min < s.min) s.min = min;
        if (max !== null && max > s.max) s.max = max;
      }
      if (terms.length > 0) {
        if (p.pending) p.pending.push(terms);
        else p.pending = [terms];
        p.deferred = true;
      }
    }
  }

  /** Add cells read some other way (the raw events of days the partials do not cover). */
  addGroup(g: GroupBuckets): void {
    const into = this.groups.get(g.key);
    if (!into) this.groups.set(g.key, g);
    else for (const [t, p] of g.buckets) into.buckets.set(t, p);
  }

  private mergeTerms(p: Cell, i: number, enc: EncodedTerms): void {
    const sketch = p.sketches?.[i];
    if (Array.isArray(enc)) {
      if (sketch) {
        for (const [v, c] of enc) addToOverflow(sketch, v, c);
        return;
      }
      const m = p.terms[i]!;
      for (const [v, c] of enc) m.set(v, (m.get(v) ?? 0) + c);
      if (m.size > this.exactValues) {
        p.sketches ??= [];
        p.sketches[i] = overflowOf(m);
        p.terms[i] = null;
      }
      return;
    }
    const incoming: Overflow = { n: enc.n, hll: DistinctSketch.fromJSON(enc.h, 0), hist: { ...enc.q } };
    if (sketch) {
      sketch.n += incoming.n;
      sketch.hll.merge(incoming.hll);
      histMerge(sketch.hist, incoming.hist);
      return;
    }
    const m = p.terms[i];
    if (m) for (const [v, c] of m) addToOverflow(incoming, v, c);
    p.sketches ??= [];
    p.sketches[i] = incoming;
    p.terms[i] = null;
  }

  /**
   * The merged groups; inexact cells carry estimates (`approx`) for their metrics. With
   * `needed`, only the buckets it names get their values merged; the others stay `deferred`
   * (their counts and stats are exact, and no window that reads their values may use them).
   */
  result(needed?: ValuesNeeded): Map<string, GroupBuckets> {
    for (const g of this.groups.values()) {
      const want = needed?.(g);
      for (const [t, p] of g.buckets) {
        const cell = p as Cell;
        if (cell.pending) {
          if (want && !want.has(t)) continue;
          for (const terms of cell.pending)
            for (let i = 0; i < terms.length; i++) this.mergeTerms(cell, i, terms[i]!);
          delete cell.pending;
          delete cell.deferred;
        }
        if (!cell.sketches) continue;
        cell.approx = {};
        this.plan.metrics.forEach((m, k) => {
          const ti = this.plan.refs[k]!.terms;
          const o = ti === undefined ? undefined : cell.sketches![ti];
          if (!o) return;
          if (m.fn === 'distinct_count') cell.approx![m.name] = o.hll.estimate();
          else if (m.fn === 'percentile') cell.approx![m.name] = histQuantile(o.hist, m.p / 100) ?? null;
        });
      }
    }
    return this.groups;
  }
}

/** Whether a cell holds values only as sketches (its distinct counts and percentiles are estimates). */
export function inexact(p: Partial): boolean {
  return !p.deferred && p.terms.some((t) => t === null);
}
