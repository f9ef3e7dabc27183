/**
 * Evidence of threshold and baseline detections: the earliest sample ids of each firing window,
 * read from the raw events of the firing buckets only (cost follows detections).
 */
import type { estypes } from '@elastic/elasticsearch';
import type { RuleIR } from '../../../parser/ir.ts';
import type { Partial, WindowHit } from '../aggregate.ts';
import { keyTuples } from '../in-process.ts';
import type { TimeRange } from '../types.ts';
import { fieldKind, groupKeyOf } from '../values.ts';
import {
  and,
  coarsen,
  hitId,
  hitTs,
  MAX_RANGES,
  type Query,
  type Run,
  SAMPLE_BUCKETS,
  timeRange,
} from './run.ts';

/** `readSamples`, its time counted in the run's `samplesMs`. */
export async function sampleIds(...args: Parameters<typeof readSamples>): Promise<string[][]> {
  const started = performance.now();
  try {
    return await readSamples(...args);
  } finally {
    args[0].samplesMs += performance.now() - started;
  }
}

/**
 * The earliest sample ids of each firing window, by (@timestamp, event.id). A window's
 * earliest n events are the first n of its buckets' earliest n, so only the buckets the firing
 * windows cover are read. When those buckets hold few events each (at most about n), the events
 * are read directly, sorted, by group chunk ({@link scanSamples}); otherwise each firing group
 * gets a date histogram (the rule's buckets) with the earliest n hits per bucket.
 */
async function readSamples(
  run: Run,
  rule: RuleIR,
  query: Query,
  groupBy: string[],
  hits: WindowHit[],
  bucketMs: number,
): Promise<string[][]> {
  const size = rule.output.evidence.sampleSize;
  const out: string[][] = hits.map(() => []);
  if (size === 0 || hits.length === 0) return out;
  const needed = new Map<string, SampleGroup>();
  for (const h of hits) {
    let g = needed.get(h.group.key);
    if (!g) {
      g = { values: h.group.values, buckets: h.group.buckets, starts: new Set() };
      needed.set(h.group.key, g);
    }
    for (let t = h.window.start; t < h.window.end; t += bucketMs) if (h.group.buckets.has(t)) g.starts.add(t);
  }
  // The most events a top-n per bucket would return, and the events a sorted read gets: every
  // event of each sampled group in its own sampled buckets.
  let capped = 0;
  let scanned = 0;
  let topSearches = 0;
  for (const g of needed.values()) {
    for (const t of g.starts) {
      const n = g.buckets.get(t)?.count ?? 0;
      capped += Math.min(n, size);
      scanned += n;
    }
    topSearches += searchParts(g, size).length;
  }
  // A sorted scan pays per event read, top hits per search (msearch round trips) and per hit
  // returned; scanning wins only when it reads few events beyond the samples and the groups are
  // many (bench:detect at 1M events: api-key-impossible-travel, 100 groups and 564k samples,
  // scan 16.2 s, top hits 7.4 s; rules with hundreds of sparse groups within 10 % either way).
  const mode = run.limits.sampling;
  const scanCheaper =
    scanned <= 2 * capped &&
    scanned <= run.limits.maxEvents &&
    scanned <= SCAN_EVENTS_PER_SEARCH * topSearches;
  if (mode === 'scan' || (mode === 'auto' && scanCheaper)) {
    const perBucket = await scanSamples(run, query, groupBy, needed, bucketMs, size);
    return hits.map((h) => {
      const m = perBucket.get(h.group.key);
      const ids: string[] = [];
      for (let t = h.window.start; t < h.window.end && ids.length < size; t += bucketMs) {
        const b = m?.get(t);
        if (b) ids.push(...b.slice(0, size - ids.length));
      }
      return ids;
    });
  }
  // one search per group and run of buckets (searchParts)
  const searches: { key: string; hits: number; body: estypes.SearchSearchRequestBody }[] = [];
  for (const [key, g] of needed) {
    const terms: Query[] = groupBy.map((f, i) => ({ term: { [f]: { value: g.values[i]! } } }));
    for (const { part, hits } of searchParts(g, size)) {
      const ranges: Query[] = [];
      let a = part[0]!;
      let b = a + bucketMs;
      for (const t of part.slice(1)) {
        if (t === b) b += bucketMs;
        else {
          ranges.push(timeRange({ start: a, end: b }));
          a = t;
          b = t + bucketMs;
        }
      }
      ranges.push(timeRange({ start: a, end: b }));
      searches.push({
        key,
        hits,
        body: {
          size: 0,
          query: and(query, ...terms, { bool: { should: ranges, minimum_should_match: 1 } }),
          aggs: {
            h: {
              date_histogram: { field: '@timestamp', fixed_interval: `${bucketMs}ms`, min_doc_count: 1 },
              aggs: {
                s: {
                  top_hits: {
                    size,
                    sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
                    _source: false,
                  },
                },
              },
            },
          },
        },
      });
    }
  }
  const perBucket = new Map<string, Map<number, string[]>>();
  // requests of at most 50 searches and SAMPLE_HITS hits: an Elasticsearch node holds a whole
  // msearch answer in memory (a 512 MB heap tripped its circuit breaker at 10M events)
  const requests: (typeof searches)[] = [];
  let hitsInRequest = 0;
  for (const search of searches) {
    const last = requests[requests.length - 1];
    if (last && last.length < 50 && hitsInRequest + search.hits <= SAMPLE_HITS) {
      last.push(search);
      hitsInRequest += search.hits;
    } else {
      requests.push([search]);
      hitsInRequest = search.hits;
    }
  }
  for (const chunk of requests) {
    const res = await run.es(() =>
      run.client.msearch({ searches: chunk.flatMap((s) => [{ index: run.index }, s.body]) }),
    );
    res.responses.forEach((r, i) => {
      if ('error' in r) throw new Error(`sample search failed: ${JSON.stringify(r.error)}`);
      const key = chunk[i]!.key;
      let m = perBucket.get(key);
      if (!m) {
        m = new Map();
        perBucket.set(key, m);
      }
      const h = r.aggregations?.h as estypes.AggregationsDateHistogramAggregate | undefined;
      for (const b of (h?.buckets ?? []) as (estypes.AggregationsDateHistogramBucket &
        Record<string, unknown>)[]) {
        const top = b.s as estypes.AggregationsTopHitsAggregate;
        m.set(
          Number(b.key),
          top.hits.hits.map((hit) => String(hit.sort?.[1] ?? hit._id)),
        );
      }
    });
  }
  hits.forEach((h, i) => {
    const m = perBucket.get(h.group.key);
    const ids: string[] = [];
    for (let t = h.window.start; t < h.window.end && ids.length < size; t += bucketMs) {
      const b = m?.get(t);
      if (b) ids.push(...b.slice(0, size - ids.length));
    }
    out[i] = ids;
  });
  return out;
}

/** Hits (samples) one top-hits request may return at most, and so one search. */
const SAMPLE_HITS = 10_000;

/**
 * A group's sampled buckets in runs for one search each: at most SAMPLE_BUCKETS buckets
 * (histogram buckets per search) and SAMPLE_HITS hits (each bucket returns up to `size`).
 */
export function searchParts(g: SampleGroup, size: number): { part: number[]; hits: number }[] {
  const out: { part: number[]; hits: number }[] = [];
  let part: number[] = [];
  let hits = 0;
  for (const t of [...g.starts].sort((a, b) => a - b)) {
    const n = Math.min(g.buckets.get(t)?.count ?? size, size);
    if (part.length > 0 && (part.length >= SAMPLE_BUCKETS || hits + n > SAMPLE_HITS)) {
      out.push({ part, hits });
      part = [];
      hits = 0;
    }
    part.push(t);
    hits += n;
  }
  if (part.length > 0) out.push({ part, hits });
  return out;
}

/** About as many events as a sorted scan reads in the time one top-hits search takes (measured). */
const SCAN_EVENTS_PER_SEARCH = 400;

export interface SampleGroup {
  values: (string | number | boolean)[];
  buckets: Map<number, Partial>;
  /** Buckets (start times) covered by the group's firing windows. */
  starts: Set<number>;
}

/** Time-range clauses per sorted scan request (with the groups' own term clauses). */
const SCAN_CLAUSES = 1000;

/**
 * Sample ids by reading the events of the firing buckets directly, sorted by (@timestamp,
 * event.id): per chunk of groups, one sorted search over each group's own sampled buckets
 * (its group-by terms and its runs of buckets), kept in the worker only for a (group, bucket) to
 * sample and only up to `size` per bucket. Group keys are read as the evaluator reads them (a
 * multi-valued key field matches the terms of several groups).
 */
async function scanSamples(
  run: Run,
  query: Query,
  groupBy: string[],
  needed: Map<string, SampleGroup>,
  bucketMs: number,
  size: number,
): Promise<Map<string, Map<number, string[]>>> {
  const out = new Map<string, Map<number, string[]>>();
  // group values from doc values (`hit.fields`: field → values), canonicalised as the evaluator does
  const getters = groupBy.map((field) => ({
    get: (fields: unknown) => (fields as Record<string, unknown> | undefined)?.[field],
    kind: fieldKind(field),
  }));
  const chunks: Query[][] = [];
  let chunk: Query[] = [];
  let clauses = 0;
  for (const g of needed.values()) {
    const ranges: TimeRange[] = [];
    for (const t of [...g.starts].sort((a, b) => a - b)) {
      const last = ranges[ranges.length - 1];
      if (last && last.end === t) last.end = t + bucketMs;
      else ranges.push({ start: t, end: t + bucketMs });
    }
    // a superset of a group's buckets is still exact (the worker keeps the sampled ones only)
    const spans = coarsen(ranges, MAX_RANGES);
    if (chunk.length > 0 && clauses + spans.length > SCAN_CLAUSES) {
      chunks.push(chunk);
      chunk = [];
      clauses = 0;
    }
    chunk.push(
      and(...groupBy.map((f, i): Query => ({ term: { [f]: { value: g.values[i]! } } })), {
        bool: { should: spans.map(timeRange), minimum_should_match: 1 },
      }),
    );
    clauses += spans.length + groupBy.length;
  }
  if (chunk.length > 0) chunks.push(chunk);
  for (const groups of chunks) {
    const q = and(query, { bool: { should: groups, minimum_should_match: 1 } });
    for await (const hit of run.hits(q, run.limits.maxEvents, false, groupBy)) {
      const ts = hitTs(hit);
      const t = Math.floor(ts / bucketMs) * bucketMs;
      for (const values of keyTuples(getters, hit.fields)) {
        const key = groupKeyOf(values);
        if (!needed.get(key)?.starts.has(t)) continue;
        let m = out.get(key);
        if (!m) {
          m = new Map();
          out.set(key, m);
        }
        let ids = m.get(t);
        if (!ids) {
          ids = [];
          m.set(t, ids);
        }
        if (ids.length < size) ids.push(hitId(hit));
      }
    }
  }
  return out;
}
