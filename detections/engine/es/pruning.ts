/**
 * Candidate pruning for threshold and baseline rules (and the partition count of sequences):
 * from `having`, which groups and windows can fire at all, asked of Elasticsearch before any
 * metric is read. Every group or window left out cannot fire. See SEMANTICS.md, "Candidate
 * pruning".
 */
import type { estypes } from '@elastic/elasticsearch';
import type { FilterExpr, HavingExpr, Metric } from '../../../parser/ir.ts';
import { type AggPlan, havingMaybe } from '../aggregate.ts';

export { havingMaybe } from '../aggregate.ts';

import { compileFilterQuery } from '../filter-query.ts';
import type { TimeRange } from '../types.ts';
import { fieldKind } from '../values.ts';
import {
  and,
  CANDIDATES_PAGE,
  CANDIDATES_SLICE,
  coarsen,
  compositePages,
  MAX_RANGES,
  mergeSpans,
  type Query,
  type Run,
  stretchesOf,
  TERMS_CHUNK,
  timeRange,
  timeSlices,
} from './run.ts';

/** Candidate values of the first group-by field: only these groups can fire. */
export interface Restriction {
  values: estypes.FieldValue[];
  /** When set, only these times can hold a firing window of the candidates. */
  ranges?: TimeRange[];
}

/**
 * The fewest events a window (threshold) or bucket (baseline) must hold for `having` to be
 * true, whatever the other metrics: `count() >= 25` or `count(where) >= 25` need 25 events;
 * `distinct_count(f) >= 10` needs 10 when every event has at most one value of `f`
 * (`singleValued`). 0 when nothing is implied.
 */
export function minEvents(having: HavingExpr, metrics: Metric[], singleValued: Set<string>): number {
  switch (having.op) {
    case 'and':
      return Math.max(0, ...having.args.map((a) => minEvents(a, metrics, singleValued)));
    case 'or':
      return having.args.length === 0
        ? 0
        : Math.min(...having.args.map((a) => minEvents(a, metrics, singleValued)));
    case 'not':
    case 'cmp_metric':
      return 0;
    case 'cmp': {
      const m = metrics.find((x) => x.name === having.metric);
      if (!m || !(m.fn === 'count' || (m.fn === 'distinct_count' && singleValued.has(m.field)))) return 0;
      return leastSatisfying(having.cmp, having.value);
    }
  }
}

/** The least whole number n ≥ 0 with `n <cmp> value` for `>=`, `==` and `>`; 0 for the others. */
function leastSatisfying(cmp: string, value: number): number {
  if (!Number.isFinite(value)) return 0;
  if (cmp === '>=' || cmp === '==') return Math.max(0, Math.ceil(value));
  if (cmp === '>') return Math.max(0, Math.floor(value) + 1);
  return 0;
}

/**
 * Threshold and baseline rules whose `having` needs at least T events per window: find the
 * values of the first group-by field that reach T events in some stretch of time that holds
 * every window starting in it, with `terms` + `min_doc_count` (Elasticsearch prunes, the
 * worker receives only candidates). Every group outside the candidates has fewer than T
 * events in every window, so it cannot fire; every candidate group is then read whole, so
 * its windows are exact. Returns undefined when nothing can be pruned or the candidate lists
 * overflow (the caller then reads every group).
 *
 * Stretches: day-long slices aligned to the bucket (windows inside one slice) and, for
 * sliding windows, the boundary stretches [x − (W − slide), x + (W − slide)) around each
 * slice boundary x. `min_doc_count` applies to the reduced (exact) counts; any truncation (a
 * full page, or a doc count error: a shard held more values than shard_size) means more
 * partitions.
 */
export async function pruneGroups(
  run: Run,
  plan: AggPlan,
  query: Query,
  groupBy: string[],
  having: HavingExpr,
  bucketMs: number,
  windowMs: number,
  range: TimeRange,
  /** Also narrow to the windows that can fire (threshold rules: no history is read). */
  fine = false,
  /**
   * What is read when nothing is pruned: `range` itself, or for baselines the history too. A
   * scheduled baseline run covers minutes but reads a week: the few events of its range say
   * nothing about what pruning saves.
   */
  read: TimeRange = range,
): Promise<Restriction | undefined> {
  if (groupBy.length === 0) return undefined;
  // a few events are read faster whole than pruned
  const { count } = await run.es(() =>
    run.client.count({ index: run.index, query: and(query, timeRange(read)) }),
  );
  if (count <= run.limits.pruneMinEvents) return undefined;
  const field = groupBy[0]!;
  const distinctFields = [
    ...new Set(plan.metrics.flatMap((m) => (m.fn === 'distinct_count' ? [m.field] : []))),
  ];
  let min = minEvents(having, plan.metrics, new Set());
  const countOnly = min;
  const optimistic = minEvents(having, plan.metrics, new Set(distinctFields));
  if (optimistic > min) {
    // distinct_count(f) ≤ events only when no event carries two values of f: check it
    // (value_count counts the distinct values per document for keywords and IPs)
    const aggs: Record<string, estypes.AggregationsAggregationContainer> = {};
    distinctFields.forEach((f, i) => {
      aggs[`e${i}`] = { filter: { exists: { field: f } } };
      aggs[`v${i}`] = { value_count: { field: f } };
    });
    const res = await run.es(() =>
      run.client.search({ index: run.index, size: 0, query: and(query, timeRange(range)), aggs }),
    );
    const a = res.aggregations as Record<string, { doc_count?: number; value?: number }>;
    const single = new Set(distinctFields.filter((_, i) => a[`e${i}`]?.doc_count === a[`v${i}`]?.value));
    min = minEvents(having, plan.metrics, single);
  }
  const distinct = distinctBound(having, plan.metrics);
  const where = whereBound(having, plan.metrics);
  if (min < 2 && !distinct && !where) return undefined;
  const stretches = stretchesOf(range, bucketMs, windowMs - bucketMs);
  let values: estypes.FieldValue[] | undefined;
  let bound: { q: Query; min: number } | undefined;
  // `count(where) >= T` needs T events matching `where`: count only those (a superset query
  // for an inexact `where` only counts more)
  if (where && where.min >= min)
    bound = { q: and(query, compileFilterQuery(where.where).query), min: where.min };
  else if (min >= 2) bound = { q: query, min };
  // a bound implied only by a distinct_count conjunct: the windows are narrowed by that
  // conjunct's own (stronger) distinct stage below, not by event counts
  const fineByCount = fine && !(bound?.q === query && countOnly < 2 && distinct);
  let ranges: TimeRange[] | undefined;
  if (bound) {
    values = await countCandidates(run, bound.q, field, bound.min, stretches);
    if (values?.length === 0) return { values };
    if (fineByCount && values) {
      const w = await windowCandidates(run, bound.q, field, bound.min, values, bucketMs, windowMs, range);
      if (w) {
        values = w.values;
        ranges = w.ranges;
        if (values.length === 0) return { values };
      }
    }
  }
  if (distinct) {
    const narrowed = await distinctCandidates(run, query, field, distinct, stretches, values);
    if (narrowed) values = narrowed;
    if (fine && values && values.length > 0 && !ranges) {
      const w = await windowCandidates(
        run,
        query,
        field,
        distinct.min,
        values,
        bucketMs,
        windowMs,
        range,
        distinct.field,
      );
      if (w) {
        values = w.values;
        ranges = w.ranges;
      }
    }
  }
  // Last, for threshold rules keyed by one field: the windows where every conjunct on event
  // counts and ratios can hold (their values are exact from counts per bucket).
  if (fine && groupBy.length === 1 && values && values.length > 0 && countsDecide(plan, having)) {
    const w = await countWindows(run, plan, query, field, having, values, ranges, bucketMs, windowMs, range);
    if (w) {
      values = w.values;
      ranges = w.ranges;
    }
  }
  return values ? { values, ...(ranges ? { ranges } : {}) } : undefined;
}

/** Metrics whose value follows from event counts alone: count(), count(where), ratio(where[, of]). */
function countMetric(m: Metric): boolean {
  return m.fn === 'count' || m.fn === 'ratio';
}

/** Whether `having` compares a count metric at all (and every where-filter is exact). */
function countsDecide(plan: AggPlan, having: HavingExpr): boolean {
  if (!plan.filters.every((f) => compileFilterQuery(f).exact)) return false;
  const uses = (h: HavingExpr): boolean => {
    switch (h.op) {
      case 'and':
      case 'or':
        return h.args.some(uses);
      case 'not':
        return uses(h.arg);
      case 'cmp':
      case 'cmp_metric': {
        const m = plan.metrics.find((x) => x.name === h.metric);
        return m !== undefined && countMetric(m);
      }
    }
  };
  return uses(having);
}

/**
 * Candidate windows by event counts: a composite over (field, bucket) with the where-filters
 * as sub-aggregations gives each window's exact count(), count(where) and ratio values; a window
 * is kept unless `having` is false whatever its other metrics are. Only the kept windows (and
 * their groups) need reading. Undefined past maxGroups cells.
 */
async function countWindows(
  run: Run,
  plan: AggPlan,
  query: Query,
  field: string,
  having: HavingExpr,
  within: estypes.FieldValue[],
  ranges: TimeRange[] | undefined,
  bucketMs: number,
  windowMs: number,
  range: TimeRange,
): Promise<{ values: estypes.FieldValue[]; ranges: TimeRange[] } | undefined> {
  const kind = fieldKind(field);
  const sources: Record<string, estypes.AggregationsCompositeAggregationSource>[] = [
    { g: { terms: { field } } },
    { t: { date_histogram: { field: '@timestamp', fixed_interval: `${bucketMs}ms` } } },
  ];
  const aggs: Record<string, estypes.AggregationsAggregationContainer> = {};
  plan.filters.forEach((f, i) => {
    aggs[`w${i}`] = { filter: compileFilterQuery(f).query };
  });
  const times: Query[] = ranges
    ? [{ bool: { should: coarsen(ranges, MAX_RANGES).map(timeRange), minimum_should_match: 1 } }]
    : [];
  const cellsOf = new Map<string, { v: estypes.FieldValue; b: Map<number, number[]> }>();
  let cells = 0;
  for (let i = 0; i < within.length; i += TERMS_CHUNK) {
    const chunk = within.slice(i, i + TERMS_CHUNK);
    const keep = new Set(chunk.map(String));
    const q = and(query, { terms: { [field]: chunk } }, ...times);
    const { slices } = await timeSlices(run, q, range, bucketMs, CANDIDATES_SLICE);
    for (let slice = slices.current(); slice; slice = slices.current()) {
      let held = 0;
      for await (const buckets of compositePages(run, and(q, timeRange(slice)), sources, {
        size: CANDIDATES_PAGE,
        aggs,
      })) {
        held += buckets.length;
        for (const b of buckets) {
          const g = b.key.g as estypes.FieldValue;
          const k = String(g);
          if (!keep.has(k)) continue;
          if (++cells > run.limits.maxGroups) return undefined;
          let e = cellsOf.get(k);
          if (!e) {
            e = { v: kind === 'boolean' ? k : g, b: new Map() };
            cellsOf.set(k, e);
          }
          // [count, where counts…]
          e.b.set(Number(b.key.t), [
            b.doc_count,
            ...plan.filters.map((_, w) => (b[`w${w}`] as { doc_count: number }).doc_count),
          ]);
        }
      }
      slices.advance(held);
    }
  }
  const per = Math.round(windowMs / bucketMs);
  const spans: TimeRange[] = [];
  const values: estypes.FieldValue[] = [];
  for (const e of cellsOf.values()) {
    const starts = windowStarts(e.b.keys(), per, bucketMs, windowMs, range);
    let kept = false;
    for (const s of starts) {
      const sums = new Array<number>(plan.filters.length + 1).fill(0);
      for (let j = 0; j < per; j++) {
        const c = e.b.get(s + j * bucketMs);
        if (c) for (let x = 0; x < sums.length; x++) sums[x]! += c[x]!;
      }
      const known: Record<string, number | null> = {};
      plan.metrics.forEach((m, i) => {
        const ref = plan.refs[i]!;
        if (m.fn === 'count') known[m.name] = ref.where === undefined ? sums[0]! : sums[ref.where + 1]!;
        else if (m.fn === 'ratio') {
          const den = ref.of === undefined ? sums[0]! : sums[ref.of + 1]!;
          known[m.name] = den === 0 ? null : sums[ref.where! + 1]! / den;
        }
      });
      if (havingMaybe(having, known) !== false) {
        spans.push({ start: s, end: s + windowMs });
        kept = true;
      }
    }
    if (kept) values.push(e.v);
  }
  return { values, ranges: coarsen(mergeSpans(spans), MAX_RANGES) };
}

/**
 * Second stage for threshold rules: the candidates' event counts per bucket (a composite over
 * (field, bucket) without sub-aggregations) give the windows that can reach `min`; only those
 * values and the union of those windows need reading. A window outside the union has fewer than
 * `min` events, so reading less of it cannot make it fire. Undefined past maxGroups cells.
 */
async function windowCandidates(
  run: Run,
  query: Query,
  field: string,
  min: number,
  within: estypes.FieldValue[],
  bucketMs: number,
  windowMs: number,
  range: TimeRange,
  /** Count distinct values of this field instead of events. */
  distinctField?: string,
): Promise<{ values: estypes.FieldValue[]; ranges?: TimeRange[] } | undefined> {
  const kind = fieldKind(field);
  const counts = new Map<
    string,
    { v: estypes.FieldValue; b: Map<number, number>; d: Map<number, Set<string>> }
  >();
  let cells = 0;
  const sources: Record<string, estypes.AggregationsCompositeAggregationSource>[] = [
    { g: { terms: { field } } },
    { t: { date_histogram: { field: '@timestamp', fixed_interval: `${bucketMs}ms` } } },
    ...(distinctField ? [{ f: { terms: { field: distinctField } } }] : []),
  ];
  for (let i = 0; i < within.length; i += TERMS_CHUNK) {
    const chunk = within.slice(i, i + TERMS_CHUNK);
    const keep = new Set(chunk.map(String));
    const q = and(query, { terms: { [field]: chunk } });
    const { slices } = await timeSlices(run, q, range, bucketMs, CANDIDATES_SLICE);
    for (let slice = slices.current(); slice; slice = slices.current()) {
      let held = 0;
      for await (const buckets of compositePages(run, and(q, timeRange(slice)), sources, {
        size: CANDIDATES_PAGE,
      })) {
        held += buckets.length;
        for (const b of buckets) {
          const g = b.key.g as estypes.FieldValue;
          const k = String(g);
          if (!keep.has(k)) continue;
          if (++cells > run.limits.maxGroups) return undefined;
          let e = counts.get(k);
          if (!e) {
            e = { v: kind === 'boolean' ? k : g, b: new Map(), d: new Map() };
            counts.set(k, e);
          }
          const t = Number(b.key.t);
          if (distinctField) {
            let set = e.d.get(t);
            if (!set) {
              set = new Set();
              e.d.set(t, set);
            }
            set.add(String(b.key.f));
            e.b.set(t, 1);
          } else e.b.set(t, b.doc_count);
        }
      }
      slices.advance(held);
    }
  }
  const per = Math.round(windowMs / bucketMs);
  const spans: TimeRange[] = [];
  const values: estypes.FieldValue[] = [];
  for (const e of counts.values()) {
    const starts = windowStarts(e.b.keys(), per, bucketMs, windowMs, range);
    let fires = false;
    for (const s of starts) {
      let sum = 0;
      if (distinctField) {
        const seen = new Set<string>();
        for (let j = 0; j < per; j++) for (const x of e.d.get(s + j * bucketMs) ?? []) seen.add(x);
        sum = seen.size;
      } else for (let j = 0; j < per; j++) sum += e.b.get(s + j * bucketMs) ?? 0;
      if (sum >= min) {
        spans.push({ start: s, end: s + windowMs });
        fires = true;
      }
    }
    if (fires) values.push(e.v);
  }
  return { values, ranges: coarsen(mergeSpans(spans), MAX_RANGES) };
}

/** Starts of the windows inside `range` that hold one of the buckets at `bucketTimes`. */
export function windowStarts(
  bucketTimes: Iterable<number>,
  per: number,
  bucketMs: number,
  windowMs: number,
  range: TimeRange,
): Set<number> {
  const starts = new Set<number>();
  for (const t of bucketTimes)
    for (let j = 0; j < per; j++) {
      const s = t - j * bucketMs;
      if (s >= range.start && s + windowMs <= range.end) starts.add(s);
    }
  return starts;
}

/** The conjunct `metric <cmp> T` of `having` on a metric `accept` takes with the highest T (T ≥ 2). */
function strongestBound<M extends Metric>(
  having: HavingExpr,
  metrics: Metric[],
  accept: (m: Metric) => m is M,
): { metric: M; min: number } | undefined {
  const conjuncts = having.op === 'and' ? having.args : [having];
  let best: { metric: M; min: number } | undefined;
  for (const c of conjuncts) {
    if (c.op !== 'cmp') continue;
    const m = metrics.find((x) => x.name === c.metric);
    if (!m || !accept(m)) continue;
    const min = leastSatisfying(c.cmp, c.value);
    if (min >= 2 && (!best || min > best.min)) best = { metric: m, min };
  }
  return best;
}

/** The `count(where) >= T` conjunct of `having` with the highest T (T ≥ 2). */
function whereBound(having: HavingExpr, metrics: Metric[]): { where: FilterExpr; min: number } | undefined {
  const b = strongestBound(
    having,
    metrics,
    (m): m is Extract<Metric, { fn: 'count' }> & { where: FilterExpr } => m.fn === 'count' && !!m.where,
  );
  return b && { where: b.metric.where, min: b.min };
}

/**
 * The `distinct_count(f) >= T` conjunct of `having` with the highest T (T ≥ 2): a group can
 * fire only where its window holds T distinct values of f.
 */
function distinctBound(having: HavingExpr, metrics: Metric[]): { field: string; min: number } | undefined {
  const b = strongestBound(
    having,
    metrics,
    (m): m is Extract<Metric, { fn: 'distinct_count' }> => m.fn === 'distinct_count',
  );
  return b && { field: b.metric.field, min: b.min };
}

/** Values of `field` with at least `min` events in some stretch (terms + min_doc_count). */
export async function countCandidates(
  run: Run,
  query: Query,
  field: string,
  min: number,
  stretches: TimeRange[],
): Promise<estypes.FieldValue[] | undefined> {
  const kind = fieldKind(field);
  const out = new Map<string, estypes.FieldValue>();
  for (const stretch of stretches) {
    let partitions = 1;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 8 || partitions > 256) return undefined;
      let overflow = false;
      const found: [string, estypes.FieldValue][] = [];
      for (let p = 0; p < partitions && !overflow; p++) {
        const res = await run.es(() =>
          run.client.search({
            index: run.index,
            size: 0,
            query: and(query, timeRange(stretch)),
            aggs: {
              c: {
                terms: {
                  field,
                  size: CANDIDATES_PAGE,
                  shard_size: CANDIDATES_PAGE,
                  // Not shard_min_doc_count: Elasticsearch 9 drops values that reach it on the
                  // shard (user48, 41 failures against a floor of 30, on one single-shard day
                  // index written by concurrent bulk requests), so the floor applies to the
                  // reduced counts only; every shard sends all its values (up to shard_size).
                  min_doc_count: min,
                  ...(partitions > 1 ? { include: { partition: p, num_partitions: partitions } } : {}),
                },
              },
            },
          }),
        );
        const c = res.aggregations?.c as estypes.AggregationsStringTermsAggregate | undefined;
        const buckets = (c?.buckets ?? []) as estypes.AggregationsStringTermsBucket[];
        if (buckets.length >= CANDIDATES_PAGE || (c?.doc_count_error_upper_bound ?? 0) > 0) {
          overflow = true;
          break;
        }
        for (const b of buckets) {
          const v = (kind === 'boolean' ? (b.key_as_string ?? b.key) : b.key) as estypes.FieldValue;
          found.push([String(v), v]);
        }
      }
      if (overflow) {
        partitions *= 4;
        continue;
      }
      for (const [k, v] of found) out.set(k, v);
      break;
    }
  }
  return [...out.values()];
}

/**
 * Values of `field` (among `within`, when given) with at least `bound.min` distinct values of
 * `bound.field` in some stretch: a composite over (field, bound.field), exact on any number of
 * shards. Undefined when it would read more than maxGroups pairs (no narrowing then).
 */
async function distinctCandidates(
  run: Run,
  query: Query,
  field: string,
  bound: { field: string; min: number },
  stretches: TimeRange[],
  within: estypes.FieldValue[] | undefined,
): Promise<estypes.FieldValue[] | undefined> {
  const chunks: Query[] = [];
  if (!within) chunks.push(query);
  else
    for (let i = 0; i < within.length; i += TERMS_CHUNK)
      chunks.push(and(query, { terms: { [field]: within.slice(i, i + TERMS_CHUNK) } }));
  const kind = fieldKind(field);
  const out = new Map<string, estypes.FieldValue>();
  let pairs = 0;
  const sources = [{ g: { terms: { field } } }, { f: { terms: { field: bound.field } } }];
  for (const stretch of stretches) {
    for (const q of chunks) {
      // the distinct values of each group in this stretch, over its time slices
      const seen = new Map<string, Set<string>>();
      const { slices } = await timeSlices(run, q, stretch, 1000, CANDIDATES_SLICE);
      for (let slice = slices.current(); slice; slice = slices.current()) {
        let held = 0;
        for await (const buckets of compositePages(run, and(q, timeRange(slice)), sources, {
          size: CANDIDATES_PAGE,
        })) {
          held += buckets.length;
          for (const b of buckets) {
            const g = b.key.g as estypes.FieldValue;
            const k = String(g);
            if (out.has(k)) continue;
            let set = seen.get(k);
            if (!set) {
              set = new Set();
              seen.set(k, set);
            }
            // a pair met again in a later slice of the stretch is not counted twice
            const before = set.size;
            set.add(String(b.key.f));
            if (set.size > before && ++pairs > run.limits.maxGroups) return undefined;
            if (set.size >= bound.min) {
              out.set(k, kind === 'boolean' ? String(g) : g);
              seen.delete(k);
            }
          }
        }
        slices.advance(held);
      }
    }
  }
  return [...out.values()];
}
