/**
 * Raw events → partials per (group, bucket) with composite aggregations: what the raw-event
 * path of threshold and baseline rules reads (and what partials fall back to).
 */
import type { estypes } from '@elastic/elasticsearch';
import { type AggPlan, emptyPartial, type GroupBuckets, type Partial, type TermKey } from '../aggregate.ts';
import { compileFilterQuery } from '../filter-query.ts';
import type { TimeRange } from '../types.ts';
import { canonicalValue, fieldKind, groupKeyOf } from '../values.ts';
import type { Restriction } from './pruning.ts';
import {
  and,
  CANDIDATES_PAGE,
  type CompositeBucket,
  compositePages,
  numOrNull,
  type Query,
  type Run,
  TERMS_CHUNK,
  timeRange,
  timeSlices,
} from './run.ts';

/**
 * Composite aggregation pages → partials per (group, bucket).
 *
 * Counts, filters and stats come from one composite over (group-by…, bucket). The values that
 * distinct_count and percentile need are enumerated exactly by a second composite per field over
 * (group-by…, bucket, value), whose doc counts are the value counts: a composite source is far
 * cheaper in Elasticsearch than a terms sub-aggregation in every (group, bucket) cell, and it
 * never overflows a terms size.
 */
export async function bucketize(
  run: Run,
  plan: AggPlan,
  query: Query,
  groupBy: string[],
  bucketMs: number,
  read: TimeRange,
  restrict?: Restriction,
): Promise<GroupBuckets[]> {
  const sources: Record<string, estypes.AggregationsCompositeAggregationSource>[] = groupBy.map(
    (field, i) => ({
      [`k${i}`]: { terms: { field } },
    }),
  );
  sources.push({ t: { date_histogram: { field: '@timestamp', fixed_interval: `${bucketMs}ms` } } });
  const aggs: Record<string, estypes.AggregationsAggregationContainer> = {
    first: { min: { field: '@timestamp' } },
    last: { max: { field: '@timestamp' } },
  };
  plan.filters.forEach((f, i) => {
    aggs[`w${i}`] = { filter: compileFilterQuery(f).query };
  });
  plan.statsFields.forEach((field, i) => {
    aggs[`s${i}`] = { stats: { field } };
  });
  const groups = new Map<string, GroupBuckets>();
  let cells = 0;
  let valueCells = 0;
  let lastKey: string | undefined;
  const kinds = groupBy.map(fieldKind);
  let stop = false;
  const keyOf = (b: CompositeBucket) =>
    groupKeyOf(
      groupBy.map((_, i) => {
        const v = b.key[`k${i}`];
        return (canonicalValue(kinds[i]!, v) ?? v) as string | number | boolean;
      }),
    );
  // Only the candidate groups (see pruneGroups), in chunks a terms query accepts.
  const chunks: { q: Query; keep?: Set<string> }[] = [];
  if (!restrict) chunks.push({ q: query });
  else
    for (let i = 0; i < restrict.values.length; i += TERMS_CHUNK) {
      const values = restrict.values.slice(i, i + TERMS_CHUNK);
      const times: Query[] = restrict.ranges
        ? [{ bool: { should: restrict.ranges.map(timeRange), minimum_should_match: 1 } }]
        : [];
      chunks.push({
        q: and(query, { terms: { [groupBy[0]!]: values } }, ...times),
        keep: new Set(values.map(String)),
      });
    }
  // time slices holding about one page of (group, bucket) cells each (see TimeSlices)
  const target = Math.max(1, Math.floor(run.limits.pageSize * 0.8));
  for (const { q, keep } of chunks) {
    const { count, slices } = await timeSlices(run, q, read, bucketMs, target);
    if (count === 0) continue;
    for (let slice = slices.current(); slice && !stop; slice = slices.current()) {
      let sliceCells = 0;
      const sliceParts: Partial[] = [];
      const sliceQuery = and(q, timeRange(slice));
      const pages = compositePages(run, sliceQuery, sources, {
        size: run.limits.pageSize,
        aggs,
        stop: () => (stop = run.overBudget()),
      });
      for await (const buckets of pages) {
        sliceCells += buckets.length;
        for (const b of buckets) {
          // a document with several values of the first key also yields groups of other chunks:
          // those are read (whole) with their own chunk
          if (keep && !keep.has(String(b.key.k0))) continue;
          const values = groupBy.map((_, i) => {
            const v = b.key[`k${i}`];
            return (canonicalValue(kinds[i]!, v) ?? v) as string | number | boolean;
          });
          const key = groupKeyOf(values);
          if (cells >= run.limits.maxGroups && key !== lastKey) {
            run.degrade(`more than ${run.limits.maxGroups} group windows: some groups were not evaluated`);
            stop = true;
            break;
          }
          cells++;
          run.cells++;
          lastKey = key;
          let g = groups.get(key);
          if (!g) {
            g = { key, values, buckets: new Map() };
            groups.set(key, g);
          }
          const part = toPartial(plan, b);
          sliceParts.push(part);
          g.buckets.set(Number(b.key.t), part);
        }
        if (stop) break;
      }
      // The values of each distinct_count/percentile field per (group, bucket) of this slice.
      for (let i = 0; i < plan.termsFields.length && !stop; i++) {
        const valueSources = [...sources, { v: { terms: { field: plan.termsFields[i]! } } }];
        for await (const buckets of compositePages(run, sliceQuery, valueSources, {
          size: CANDIDATES_PAGE,
          stop: () => (stop = run.overBudget()),
        })) {
          for (const b of buckets) {
            if (keep && !keep.has(String(b.key.k0))) continue;
            const part = groups.get(keyOf(b))?.buckets.get(Number(b.key.t));
            // cells past maxGroups were not read (the run is already degraded)
            if (part === undefined) continue;
            if (++valueCells > run.limits.maxGroups * 10) {
              run.degrade(
                `more than ${run.limits.maxGroups * 10} (group, bucket, value) cells: some distinct values were not enumerated`,
              );
              stop = true;
              break;
            }
            const m = part.terms[i]!;
            const v = b.key.v as TermKey;
            m.set(v, (m.get(v) ?? 0) + b.doc_count);
          }
          if (stop) break;
        }
      }
      // Cells of a slice whose values were not all read carry no distinct values at all (their
      // metrics come out approximate), never a partial count.
      if (stop && plan.termsFields.length > 0) for (const part of sliceParts) part.terms.fill(null);
      slices.advance(sliceCells);
    }
    if (stop) break;
  }
  return [...groups.values()];
}

export function toPartial(plan: AggPlan, b: Record<string, unknown>): Partial {
  const p = emptyPartial(plan);
  p.count = b.doc_count as number;
  p.firstTs = numOrNull((b.first as { value: unknown }).value);
  p.lastTs = numOrNull((b.last as { value: unknown }).value);
  plan.filters.forEach((_, i) => {
    p.wheres[i] = (b[`w${i}`] as { doc_count: number }).doc_count;
  });
  plan.statsFields.forEach((_, i) => {
    const s = b[`s${i}`] as estypes.AggregationsStatsAggregate;
    p.stats[i] = {
      n: s.count,
      sum: s.count === 0 ? 0 : s.sum,
      min: s.min ?? Number.POSITIVE_INFINITY,
      max: s.max ?? Number.NEGATIVE_INFINITY,
    };
  });
  return p;
}
