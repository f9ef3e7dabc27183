/**
 * The Elasticsearch side of one rule run: limits, timing (Elasticsearch vs worker), degraded
 * reasons, and the plumbing every rule kind pages through — sorted event reads, composite
 * aggregation pages, time slices sized to about one page of cells.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { searchAll } from '../../../core/store/elasticsearch.ts';
import type { PartialsSource, PartialsUse } from '../../partials/read.ts';
import type { SequenceCarry } from '../kinds/sequence.ts';
import type { Degraded, Detection, TimeRange } from '../types.ts';

export type Query = estypes.QueryDslQueryContainer;

export interface EsLimits {
  /**
   * Threshold and baseline rules read their partials here where they cover the range
   * (docs/partials.md), the raw events elsewhere. Without it every run reads raw events.
   */
  partials?: PartialsSource;
  /** (group, bucket) cells read from composite aggregations before giving up (default 1,000,000). */
  maxGroups?: number;
  /** Events fetched for sequence matching or evaluator fallback (default 2,000,000). */
  maxEvents?: number;
  /** Detections of a filter rule per run (default 10,000). */
  maxDetections?: number;
  /** Wall-clock budget for one run; pages stop after it (default none). */
  timeBudgetMs?: number;
  /** Composite page size (default 5000); time slices adapt to hold about one page of groups. */
  pageSize?: number;
  /** Below this many matching events, threshold/baseline groups are read whole, not pruned (default 20,000). */
  pruneMinEvents?: number;
  /** New first_seen keys fetched with one search each (default 500); above, one restricted composite. */
  firstSeenSearches?: number;
  /**
   * How threshold/baseline evidence is sampled: `scan` reads the firing buckets' events sorted,
   * `top_hits` asks for the earliest n per bucket; `auto` (default) scans when the buckets hold
   * few events each. Both give the same ids.
   */
  sampling?: 'auto' | 'scan' | 'top_hits';
}

export interface EsRunResult {
  detections: Detection[];
  degraded?: Degraded;
  /**
   * esMs: waiting for Elasticsearch (wall); tookMs: its own `took` summed; workerMs: the rest;
   * samplesMs: the part of the run (wall) spent reading evidence samples of firing windows.
   */
  timing: { esMs: number; workerMs: number; tookMs?: number; samplesMs?: number };
  /** (group, bucket) cells threshold and baseline rules read from aggregations: their cost. */
  cells: number;
  /** What the run read from partials, when it read any. */
  partials?: PartialsUse;
  /** What the run record should say about how it read (e.g. days read raw and why). */
  note?: string;
  /** A sequence run: the events it read and, when scheduled, the state to keep at the range end. */
  sequence?: { next?: SequenceCarry; eventsRead: number };
}

export class Run {
  esMs = 0;
  /** Sum of Elasticsearch's own `took` over the searches (server-side time, without transfer). */
  tookMs = 0;
  /** (group, bucket) cells read by bucketize. */
  cells = 0;
  /** Wall time spent reading evidence samples (es/samples.ts). */
  samplesMs = 0;
  readonly started = performance.now();
  readonly reasons: string[] = [];
  /** Set when the run read partials. */
  partials: PartialsUse | undefined;
  readonly client: Client;
  readonly index: string;
  readonly limits: Required<Omit<EsLimits, 'timeBudgetMs' | 'partials'>> & { timeBudgetMs?: number };
  constructor(client: Client, index: string, limits: EsLimits) {
    this.client = client;
    this.index = index;
    this.limits = {
      maxGroups: limits.maxGroups ?? 1_000_000,
      maxEvents: limits.maxEvents ?? 2_000_000,
      maxDetections: limits.maxDetections ?? 10_000,
      pageSize: limits.pageSize ?? 5000,
      pruneMinEvents: limits.pruneMinEvents ?? 20_000,
      firstSeenSearches: limits.firstSeenSearches ?? 500,
      sampling: limits.sampling ?? 'auto',
      ...(limits.timeBudgetMs !== undefined ? { timeBudgetMs: limits.timeBudgetMs } : {}),
    };
  }
  async es<T>(fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      const res = await fn();
      const took = (res as { took?: unknown } | undefined)?.took;
      if (typeof took === 'number') this.tookMs += took;
      return res;
    } finally {
      this.esMs += performance.now() - t;
    }
  }
  overBudget(): boolean {
    if (
      this.limits.timeBudgetMs === undefined ||
      performance.now() - this.started <= this.limits.timeBudgetMs
    )
      return false;
    this.degrade(`time budget of ${this.limits.timeBudgetMs} ms exceeded: evaluation stopped early`);
    return true;
  }
  degrade(reason: string): void {
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }
  /** Iterate hits sorted by (@timestamp, event.id), timing Elasticsearch. */
  async *hits(
    query: Query,
    limit: number,
    source: string[] | boolean = true,
    /** Only these doc-value fields under `hit.fields` and the sort values (no _source, no _id). */
    docvalueFields?: string[],
  ): AsyncGenerator<estypes.SearchHit<Record<string, unknown>>> {
    const it = searchAll<Record<string, unknown>>(this.client, {
      index: this.index,
      query,
      sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
      pageSize: docvalueFields ? 10_000 : 5000,
      ...(docvalueFields ? { source: false, docvalueFields, lean: true } : { source }),
      limit,
    });
    for (;;) {
      const t = performance.now();
      const next = await it.next();
      this.esMs += performance.now() - t;
      if (next.done) return;
      yield next.value;
    }
  }
}

export const timeRange = (r: TimeRange): Query => ({
  range: { '@timestamp': { gte: r.start, lt: r.end, format: 'epoch_millis' } },
});

export const and = (...qs: Query[]): Query => ({
  bool: { filter: qs.filter((q) => q?.match_all === undefined) },
});

export function hitTs(hit: estypes.SearchHit<unknown>): number {
  return Number(hit.sort?.[0]);
}

export function hitId(hit: estypes.SearchHit<unknown>): string {
  return String(hit.sort?.[1] ?? hit._id);
}

export function numOrNull(v: unknown): number {
  return typeof v === 'number' ? v : Number.NaN;
}

/** Values per terms query (index.max_terms_count is 65,536). */
export const TERMS_CHUNK = 10_000;

/** first_seen: at most this many values of the key's first field in the range restrict the history read (one terms query). */
export const ACTIVE_VALUES = TERMS_CHUNK;

/** Buckets per candidate request (below search.max_buckets). */
export const CANDIDATES_PAGE = 10_000;

export const DAY_MS = 86_400_000;

/** Histogram buckets per sample search. */
export const SAMPLE_BUCKETS = 1000;

export type CompositeBucket = estypes.AggregationsCompositeBucket & Record<string, unknown>;

/**
 * The pages of one composite aggregation (`query`, `sources`, sub-aggregations `aggs`), in order.
 * A page with fewer buckets than asked for is the last one: a composite aggregation returns the
 * first `size` keys after `after` among all matching documents, so a short page means no keys
 * are left (and every further request would re-read all the documents to say so). A page whose
 * sub-aggregations exceed search.max_buckets or trip a circuit breaker is asked again with a
 * smaller size (composite paging is exact at any page size). `stop`, when given, is asked before each request.
 */
export async function* compositePages(
  run: Run,
  query: Query,
  sources: Record<string, estypes.AggregationsCompositeAggregationSource>[],
  options: {
    size: number;
    aggs?: Record<string, estypes.AggregationsAggregationContainer>;
    stop?: () => boolean;
  },
): AsyncGenerator<CompositeBucket[]> {
  let size = options.size;
  let after: Record<string, estypes.FieldValue> | undefined;
  for (;;) {
    if (options.stop?.()) return;
    let res: estypes.SearchResponse;
    for (;;) {
      try {
        res = await run.es(() =>
          run.client.search({
            index: run.index,
            size: 0,
            query,
            aggs: {
              c: {
                composite: { size, sources, ...(after ? { after } : {}) },
                ...(options.aggs ? { aggs: options.aggs } : {}),
              },
            },
          }),
        );
        break;
      } catch (err) {
        // too many buckets for search.max_buckets, or for the node's memory (a circuit breaker):
        // the same page in smaller pieces
        const body = JSON.stringify((err as { body?: unknown }).body ?? '');
        if (size > 1 && (body.includes('too_many_buckets') || body.includes('circuit_breaking_exception')))
          size = Math.max(1, Math.floor(size / 4));
        else throw err;
      }
    }
    const agg = res.aggregations?.c as estypes.AggregationsCompositeAggregate | undefined;
    const buckets = (agg?.buckets ?? []) as CompositeBucket[];
    if (buckets.length === 0) return;
    yield buckets;
    after = agg?.after_key as Record<string, estypes.FieldValue> | undefined;
    if (!after || buckets.length < size) return;
  }
}

/**
 * Time slices of `range` for composite aggregations, aligned to `alignMs` (so no bucket of that
 * size straddles two), each sized to hold about `target` composite buckets. A composite
 * aggregation re-reads every matching document for each page, so paging one request over many
 * buckets costs documents × pages; with about one page per slice each document is read about
 * once. The first slice is sized from the document count (buckets ≤ documents, so it holds at
 * most a page); each next one is scaled by the buckets the previous one held (at most ×4).
 */
export class TimeSlices {
  private from: number;
  private len: number;
  private readonly range: TimeRange;
  private readonly alignMs: number;
  private readonly target: number;
  constructor(range: TimeRange, alignMs: number, target: number, documents: number) {
    this.range = range;
    this.alignMs = alignMs;
    this.target = target;
    this.from = Math.floor(range.start / alignMs) * alignMs;
    const span = range.end - this.from;
    this.len = Math.max(1, Math.floor((span * target) / Math.max(1, documents) / alignMs)) * alignMs;
  }
  /** The current slice, or undefined at the end of the range. */
  current(): TimeRange | undefined {
    if (this.from >= this.range.end) return undefined;
    return {
      start: Math.max(this.range.start, this.from),
      end: Math.min(this.range.end, this.from + this.len),
    };
  }
  /** Move on, given the composite buckets the current slice held. */
  advance(buckets: number): void {
    this.from += this.len;
    const scale = buckets === 0 ? 4 : Math.min(4, this.target / buckets);
    this.len = Math.max(1, Math.round((this.len * scale) / this.alignMs)) * this.alignMs;
  }
}

export async function timeSlices(run: Run, query: Query, range: TimeRange, alignMs: number, target: number) {
  const { count } = await run.es(() =>
    run.client.count({ index: run.index, query: and(query, timeRange(range)) }),
  );
  return { count, slices: new TimeSlices(range, alignMs, target, count) };
}

/** Buckets a candidate composite is sliced for (about one page of CANDIDATES_PAGE). */
export const CANDIDATES_SLICE = Math.floor(CANDIDATES_PAGE * 0.8);

/** Overlapping or touching spans merged, in time order. */
export function mergeSpans(spans: TimeRange[]): TimeRange[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const merged: TimeRange[] = [];
  for (const sp of sorted) {
    const last = merged[merged.length - 1];
    if (last && sp.start <= last.end) last.end = Math.max(last.end, sp.end);
    else merged.push({ ...sp });
  }
  return merged;
}

/** Time ranges per query (a bool `should` of range clauses). */
export const MAX_RANGES = 1000;

/**
 * At most `max` ranges covering sorted, disjoint `ranges`: the smallest gaps between them are
 * closed first (a superset that stays close to the original).
 */
export function coarsen(ranges: TimeRange[], max: number): TimeRange[] {
  if (ranges.length <= max) return ranges;
  const gaps = ranges.slice(1).map((r, i) => ({ i, gap: r.start - ranges[i]!.end }));
  gaps.sort((a, b) => a.gap - b.gap || a.i - b.i);
  const close = new Set(gaps.slice(0, ranges.length - max).map((g) => g.i));
  const out: TimeRange[] = [{ ...ranges[0]! }];
  for (let i = 1; i < ranges.length; i++) {
    if (close.has(i - 1)) out[out.length - 1]!.end = ranges[i]!.end;
    else out.push({ ...ranges[i]! });
  }
  return out;
}

/**
 * Day-long slices of `range` aligned to `bucketMs` and, when `extend` > 0, the stretches
 * [x − extend, x + extend) around each slice boundary x: every span of length ≤ extend + bucketMs
 * starting on a bucket lies inside one of them.
 */
export function stretchesOf(range: TimeRange, bucketMs: number, extend: number): TimeRange[] {
  const sliceLen = Math.max(1, Math.floor(DAY_MS / bucketMs)) * bucketMs;
  const out: TimeRange[] = [];
  for (let x = Math.floor(range.start / sliceLen) * sliceLen; x < range.end; x += sliceLen) {
    out.push({ start: Math.max(range.start, x), end: Math.min(range.end, x + sliceLen) });
    const next = x + sliceLen;
    if (extend > 0 && next > range.start && next < range.end)
      out.push({ start: Math.max(range.start, next - extend), end: Math.min(range.end, next + extend) });
  }
  return out;
}
