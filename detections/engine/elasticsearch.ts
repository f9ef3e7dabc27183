/**
 * The Elasticsearch backend: compiles a rule to queries and aggregations, pages through them
 * and finishes in the worker with the code the in-process evaluator uses (./aggregate.ts,
 * ./sequence.ts, ./render.ts). Needs only core Elasticsearch features (bool/term/range/
 * wildcard/regexp queries, composite/terms/stats/cardinality/percentiles/filter/top_hits
 * aggregations, point-in-time): no scripts, no bucket_selector.
 *
 * - filter: sorted search_after over the matching events.
 * - threshold: one composite aggregation over (group-by…, date_histogram) with the bucket
 *   size = window (tumbling) or slide (sliding; the worker sums size/slide consecutive buckets).
 * - baseline: the same composite over [range.start − history, range.end) in window buckets.
 * - first_seen: a composite over the key tuple (and one over the group) with the latest
 *   history time and the earliest in-range event per key.
 * - sequence: sorted retrieval of the candidate events, matched in the worker.
 * Rules whose filter Elasticsearch cannot express exactly (some regular expressions) and
 * first_seen ranges longer than the history fall back to fetching the events and running the
 * evaluator on them. Every limit hit is reported as `degraded`, never silently.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { searchAll } from '../../core/store/elasticsearch.ts';
import type { FilterExpr, FirstSeenRule, RuleIR, SequenceRule } from '../../parser/ir.ts';
import {
  type AggPlan,
  baselineWindows,
  buildPlan,
  emptyPartial,
  type GroupBuckets,
  type Partial,
  type TermKey,
  thresholdWindows,
  type WindowHit,
} from './aggregate.ts';
import {
  baselineBuiltins,
  evaluateRule,
  firstSeenDetection,
  runSequence,
  windowDetection,
} from './evaluate.ts';
import { compileFilter } from './filter.ts';
import { compileFilterQuery } from './filter-query.ts';
import { buildDetection, sortDetections } from './render.ts';
import { compileSequence, type SeqEvent } from './sequence.ts';
import type { Degraded, Detection, TimeRange } from './types.ts';
import { canonicalValue, fieldKind, groupKeyOf } from './values.ts';

export { filterToQuery } from './filter-query.ts';

type Query = estypes.QueryDslQueryContainer;

export interface EsLimits {
  /** (group, bucket) cells read from composite aggregations before giving up (default 1,000,000). */
  maxGroups?: number;
  /** Events fetched for sequence matching or evaluator fallback (default 2,000,000). */
  maxEvents?: number;
  /** Detections of a filter rule per run (default 10,000). */
  maxDetections?: number;
  /** Wall-clock budget for one run; pages stop after it (default none). */
  timeBudgetMs?: number;
  /** Composite page size (default 2000). */
  pageSize?: number;
  /** Documents per time slice of a composite aggregation (default 100,000). */
  sliceDocs?: number;
  /** Distinct values enumerated per bucket for exact distinct_count/percentile (default 1000). */
  termsSize?: number;
}

export interface EsRunResult {
  detections: Detection[];
  degraded?: Degraded;
  timing: { esMs: number; workerMs: number };
}

class Run {
  esMs = 0;
  readonly started = performance.now();
  readonly reasons: string[] = [];
  readonly client: Client;
  readonly index: string;
  readonly limits: Required<Omit<EsLimits, 'timeBudgetMs'>> & { timeBudgetMs?: number };
  constructor(client: Client, index: string, limits: EsLimits) {
    this.client = client;
    this.index = index;
    this.limits = {
      maxGroups: limits.maxGroups ?? 1_000_000,
      maxEvents: limits.maxEvents ?? 2_000_000,
      maxDetections: limits.maxDetections ?? 10_000,
      pageSize: limits.pageSize ?? 2000,
      sliceDocs: limits.sliceDocs ?? 100_000,
      termsSize: limits.termsSize ?? 1000,
      ...(limits.timeBudgetMs !== undefined ? { timeBudgetMs: limits.timeBudgetMs } : {}),
    };
  }
  async es<T>(fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await fn();
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
  ): AsyncGenerator<estypes.SearchHit<Record<string, unknown>>> {
    const it = searchAll<Record<string, unknown>>(this.client, {
      index: this.index,
      query,
      sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
      pageSize: 5000,
      source,
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

const timeRange = (r: TimeRange): Query => ({
  range: { '@timestamp': { gte: r.start, lt: r.end, format: 'epoch_millis' } },
});

const and = (...qs: Query[]): Query => ({ bool: { filter: qs.filter((q) => q?.match_all === undefined) } });

function hitTs(hit: estypes.SearchHit<unknown>): number {
  return Number(hit.sort?.[0]);
}
function hitId(hit: estypes.SearchHit<unknown>): string {
  return String(hit.sort?.[1] ?? hit._id);
}

export async function runRuleOnElasticsearch(
  client: Client,
  index: string,
  rule: RuleIR,
  range: TimeRange,
  limits: EsLimits = {},
): Promise<EsRunResult> {
  const run = new Run(client, index, limits);
  let detections: Detection[];
  const filter = compileFilterQuery(rule.filter);
  if (rule.kind === 'filter') detections = await filterRule(run, rule, filter.query, filter.exact, range);
  else if (rule.kind === 'sequence') detections = await sequenceRule(run, rule, range);
  else if (
    !filter.exact ||
    (rule.kind === 'first_seen' &&
      (range.end - range.start > rule.firstSeen.historyMs ||
        (rule.firstSeen.ignoreNewGroups && rule.firstSeen.groupBy.length === 0)))
  ) {
    detections = await fetchAndEvaluate(run, rule, filter.query, range);
  } else if (rule.kind === 'threshold') {
    const t = rule.threshold;
    const slide = t.window.mode === 'sliding' ? (t.window.slideMs ?? t.window.sizeMs) : t.window.sizeMs;
    const plan = buildPlan(t.metrics);
    const groups = await bucketize(run, plan, filter.query, t.groupBy, slide, range);
    const hits = thresholdWindows(
      plan,
      groups,
      t.window.sizeMs,
      slide,
      range,
      t.having,
      rule.output.evidence.sampleSize,
    );
    const samples = await sampleIds(run, rule, filter.query, t.groupBy, hits);
    detections = hits.map((h, i) => windowDetection(rule, t.groupBy, h, samples[i]!));
  } else if (rule.kind === 'baseline') {
    const b = rule.baseline;
    const plan = buildPlan([b.metric]);
    const read = { start: range.start - b.historyMs, end: range.end };
    const groups = await bucketize(run, plan, filter.query, b.groupBy, b.windowMs, read);
    const hits = baselineWindows(plan, groups, b, range);
    const samples = await sampleIds(run, rule, filter.query, b.groupBy, hits);
    detections = hits.map((h, i) => windowDetection(rule, b.groupBy, h, samples[i]!, baselineBuiltins(h)));
  } else {
    detections = await firstSeenRule(run, rule, filter.query, range);
  }
  for (const d of detections) if (d.degraded) run.degrade(d.degraded.reason);
  sortDetections(detections);
  const total = performance.now() - run.started;
  return {
    detections,
    ...(run.reasons.length > 0 ? { degraded: { reason: run.reasons.join('; ') } } : {}),
    timing: { esMs: run.esMs, workerMs: Math.max(0, total - run.esMs) },
  };
}

async function filterRule(
  run: Run,
  rule: RuleIR,
  query: Query,
  exact: boolean,
  range: TimeRange,
): Promise<Detection[]> {
  const out: Detection[] = [];
  const pred = exact ? undefined : compileFilter(rule.filter);
  const max = run.limits.maxDetections;
  for await (const hit of run.hits(and(query, timeRange(range)), exact ? max + 1 : run.limits.maxEvents)) {
    const event = hit._source;
    if (pred && !pred(event)) continue;
    if (out.length >= max) {
      run.degrade(`more than ${max} matching events: only the first ${max} became detections`);
      break;
    }
    const t = hitTs(hit);
    const id = hitId(hit);
    out.push(
      buildDetection(rule, {
        groupFields: [],
        groupValues: [],
        anchor: id,
        window: { start: t, end: t + 1 },
        firstSeen: t,
        lastSeen: t,
        eventCount: 1,
        metrics: {},
        sampleEventIds: rule.output.evidence.sampleSize > 0 ? [id] : [],
        event,
        evidenceRange: { start: t, end: t + 1 },
      }),
    );
    if (run.overBudget()) break;
  }
  return out;
}

async function fetchEvents(run: Run, query: Query, read: TimeRange): Promise<SeqEvent[]> {
  const out: SeqEvent[] = [];
  const max = run.limits.maxEvents;
  for await (const hit of run.hits(and(query, timeRange(read)), max + 1)) {
    if (out.length >= max) {
      run.degrade(`more than ${max} events to fetch: only the earliest ${max} were evaluated`);
      break;
    }
    out.push({ ts: hitTs(hit), id: hitId(hit), event: hit._source });
  }
  return out;
}

/** Superset query → events → the in-process evaluator (exact, slower). */
async function fetchAndEvaluate(
  run: Run,
  rule: RuleIR,
  query: Query,
  range: TimeRange,
): Promise<Detection[]> {
  let read = range;
  if (rule.kind === 'first_seen') read = { start: range.start - rule.firstSeen.historyMs, end: range.end };
  if (rule.kind === 'baseline') read = { start: range.start - rule.baseline.historyMs, end: range.end };
  const events = await fetchEvents(run, query, read);
  const result = evaluateRule(
    rule,
    events.map((e) => e.event as never),
    range,
  );
  if (result.degraded) run.degrade(result.degraded.reason);
  return result.detections;
}

async function sequenceRule(run: Run, rule: SequenceRule, range: TimeRange): Promise<Detection[]> {
  const seq = compileSequence(rule);
  const q = compileFilterQuery({
    op: 'and',
    args: [
      rule.filter,
      seq.candidateFilter,
      ...rule.sequence.by.map((f): FilterExpr => ({ op: 'exists', field: f })),
    ],
  });
  let events = await fetchEvents(run, q.query, range);
  if (!q.exact) {
    const pred = compileFilter(rule.filter);
    events = events.filter((e) => pred(e.event) && seq.candidate(e.event));
  }
  return runSequence(rule, events, range, {});
}

function numOrNull(v: unknown): number {
  return typeof v === 'number' ? v : Number.NaN;
}

/** Composite aggregation pages → partials per (group, bucket). */
async function bucketize(
  run: Run,
  plan: AggPlan,
  query: Query,
  groupBy: string[],
  bucketMs: number,
  read: TimeRange,
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
  plan.termsFields.forEach((field, i) => {
    aggs[`v${i}`] = { terms: { field, size: run.limits.termsSize } };
  });
  const groups = new Map<string, GroupBuckets>();
  let after: Record<string, estypes.FieldValue> | undefined;
  let cells = 0;
  let lastKey: string | undefined;
  const kinds = groupBy.map(fieldKind);
  const overflow: { values: (string | number | boolean)[]; t: number; part: Partial; i: number }[] = [];
  // A composite aggregation re-reads every matching document for each page, so its cost grows
  // with documents × pages. Time slices aligned to the bucket size (no bucket straddles two)
  // keep both small: the cost stays linear in the number of documents.
  const total = await run.es(() =>
    run.client.count({ index: run.index, query: and(query, timeRange(read)) }),
  );
  const nSlices = Math.max(1, Math.ceil(total.count / run.limits.sliceDocs));
  const aligned = Math.floor(read.start / bucketMs) * bucketMs;
  const sliceLen = Math.max(1, Math.ceil((read.end - aligned) / nSlices / bucketMs)) * bucketMs;
  let stop = false;
  for (let from = aligned; from < read.end && !stop; from += sliceLen) {
    const slice = { start: Math.max(read.start, from), end: Math.min(read.end, from + sliceLen) };
    after = undefined;
    for (;;) {
      if (run.overBudget()) {
        stop = true;
        break;
      }
      const res = await run.es(() =>
        run.client.search({
          index: run.index,
          size: 0,
          query: and(query, timeRange(slice)),
          aggs: {
            g: { composite: { size: run.limits.pageSize, sources, ...(after ? { after } : {}) }, aggs },
          },
        }),
      );
      const agg = res.aggregations?.g as estypes.AggregationsCompositeAggregate | undefined;
      const buckets = (agg?.buckets ?? []) as (estypes.AggregationsCompositeBucket &
        Record<string, unknown>)[];
      for (const b of buckets) {
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
        lastKey = key;
        let g = groups.get(key);
        if (!g) {
          g = { key, values, buckets: new Map() };
          groups.set(key, g);
        }
        const part = toPartial(plan, b);
        const t = Number(b.key.t);
        g.buckets.set(t, part);
        part.terms.forEach((m, i) => {
          if (m === null) overflow.push({ values, t, part, i });
        });
      }
      after = agg?.after_key as Record<string, estypes.FieldValue> | undefined;
      // only an empty page ends it: Elasticsearch may return short pages before the end
      if (stop || buckets.length === 0 || !after) break;
    }
  }
  // Buckets with more distinct values than one terms page: enumerate them exactly.
  if (overflow.length > run.limits.maxGroups / 10) {
    run.degrade(
      `${overflow.length} buckets with more than ${run.limits.termsSize} distinct values: not enumerated`,
    );
  } else {
    for (const o of overflow) {
      if (run.overBudget()) break;
      const terms: Query[] = groupBy.map((f, i) => ({ term: { [f]: { value: o.values[i]! } } }));
      const window = { start: Math.max(read.start, o.t), end: Math.min(read.end, o.t + bucketMs) };
      o.part.terms[o.i] = await enumerateValues(
        run,
        plan.termsFields[o.i]!,
        and(query, timeRange(window), ...terms),
      );
    }
  }
  return [...groups.values()];
}

/** Every distinct value of a field with its document count (paged composite). */
async function enumerateValues(run: Run, field: string, query: Query): Promise<Map<TermKey, number>> {
  const out = new Map<TermKey, number>();
  let after: Record<string, estypes.FieldValue> | undefined;
  for (;;) {
    const res = await run.es(() =>
      run.client.search({
        index: run.index,
        size: 0,
        query,
        aggs: {
          v: {
            composite: { size: 10_000, sources: [{ v: { terms: { field } } }], ...(after ? { after } : {}) },
          },
        },
      }),
    );
    const agg = res.aggregations?.v as estypes.AggregationsCompositeAggregate | undefined;
    const buckets = (agg?.buckets ?? []) as estypes.AggregationsCompositeBucket[];
    for (const b of buckets) out.set(b.key.v as TermKey, b.doc_count);
    after = agg?.after_key as Record<string, estypes.FieldValue> | undefined;
    if (buckets.length === 0 || !after) break;
  }
  return out;
}

function toPartial(plan: AggPlan, b: Record<string, unknown>): Partial {
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
  plan.termsFields.forEach((_, i) => {
    const t = b[`v${i}`] as { buckets: { key: TermKey; doc_count: number }[]; sum_other_doc_count?: number };
    if ((t.sum_other_doc_count ?? 0) > 0) {
      p.terms[i] = null;
      return;
    }
    const map = new Map<TermKey, number>();
    for (const x of t.buckets) map.set(x.key, x.doc_count);
    p.terms[i] = map;
  });
  return p;
}

/** The earliest sample ids of each firing window, by (@timestamp, event.id). */
async function sampleIds(
  run: Run,
  rule: RuleIR,
  query: Query,
  groupBy: string[],
  hits: WindowHit[],
): Promise<string[][]> {
  const size = rule.output.evidence.sampleSize;
  const out: string[][] = hits.map(() => []);
  if (size === 0 || hits.length === 0) return out;
  for (let from = 0; from < hits.length; from += 100) {
    const chunk = hits.slice(from, from + 100);
    const searches: estypes.MsearchRequestItem[] = [];
    for (const h of chunk) {
      const terms: Query[] = groupBy.map((f, i) => ({ term: { [f]: { value: h.group.values[i]! } } }));
      searches.push({ index: run.index });
      searches.push({
        size,
        query: and(query, timeRange(h.window), ...terms),
        sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
        _source: false,
        track_total_hits: false,
      });
    }
    const res = await run.es(() => run.client.msearch({ searches }));
    res.responses.forEach((r, i) => {
      if ('error' in r) throw new Error(`sample search failed: ${JSON.stringify(r.error)}`);
      out[from + i] = r.hits.hits.map((hit) => String(hit.sort?.[1] ?? hit._id));
    });
  }
  return out;
}

interface FsBucket {
  key: (string | number | boolean)[];
  preMax?: number;
  cur?: { ts: number; id: string; source: unknown };
}

async function compositeFs(
  run: Run,
  fields: string[],
  query: Query,
  read: TimeRange,
  split: number,
  withSource: boolean,
): Promise<Map<string, FsBucket>> {
  const kinds = fields.map(fieldKind);
  const sources = fields.map((field, i) => ({ [`k${i}`]: { terms: { field } } }));
  const out = new Map<string, FsBucket>();
  let after: Record<string, estypes.FieldValue> | undefined;
  let cells = 0;
  for (;;) {
    if (run.overBudget()) break;
    const res = await run.es(() =>
      run.client.search({
        index: run.index,
        size: 0,
        query: and(query, timeRange(read)),
        aggs: {
          g: {
            composite: { size: run.limits.pageSize, sources, ...(after ? { after } : {}) },
            aggs: {
              pre: {
                filter: timeRange({ start: read.start, end: split }),
                aggs: { m: { max: { field: '@timestamp' } } },
              },
              cur: {
                filter: timeRange({ start: split, end: read.end }),
                aggs: {
                  x: {
                    top_hits: {
                      size: 1,
                      sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
                      _source: withSource,
                    },
                  },
                },
              },
            },
          },
        },
      }),
    );
    const agg = res.aggregations?.g as estypes.AggregationsCompositeAggregate | undefined;
    const buckets = (agg?.buckets ?? []) as (estypes.AggregationsCompositeBucket & Record<string, unknown>)[];
    for (const b of buckets) {
      if (++cells > run.limits.maxGroups) {
        run.degrade(`more than ${run.limits.maxGroups} first_seen keys: the rest were not evaluated`);
        return out;
      }
      const key = fields.map(
        (_, i) => (canonicalValue(kinds[i]!, b.key[`k${i}`]) ?? b.key[`k${i}`]) as string | number | boolean,
      );
      const pre = b.pre as { doc_count: number; m: { value: number | null } };
      const cur = b.cur as { doc_count: number; x: { hits: { hits: estypes.SearchHit<unknown>[] } } };
      const fb: FsBucket = { key };
      if (pre.doc_count > 0 && pre.m.value !== null) fb.preMax = pre.m.value;
      const top = cur.x.hits.hits[0];
      if (cur.doc_count > 0 && top) fb.cur = { ts: hitTs(top), id: hitId(top), source: top._source };
      out.set(groupKeyOf(key), fb);
    }
    after = agg?.after_key as Record<string, estypes.FieldValue> | undefined;
    if (buckets.length === 0 || !after) break;
  }
  return out;
}

/** Exact when range.end − range.start ≤ history (checked by the caller). */
async function firstSeenRule(
  run: Run,
  rule: FirstSeenRule,
  query: Query,
  range: TimeRange,
): Promise<Detection[]> {
  const fs = rule.firstSeen;
  const keyFields = [...fs.groupBy, ...fs.fields];
  const read = { start: range.start - fs.historyMs, end: range.end };
  const keys = await compositeFs(run, keyFields, query, read, range.start, true);
  const groups = fs.ignoreNewGroups
    ? await compositeFs(run, fs.groupBy, query, read, range.start, false)
    : undefined;
  const out: Detection[] = [];
  for (const k of keys.values()) {
    const x = k.cur;
    if (!x) continue;
    if (k.preMax !== undefined && k.preMax >= x.ts - fs.historyMs) continue;
    if (groups) {
      const g = groups.get(groupKeyOf(k.key.slice(0, fs.groupBy.length)));
      const preKnown = g?.preMax !== undefined && g.preMax >= x.ts - fs.historyMs;
      const curBefore = g?.cur !== undefined && (g.cur.ts < x.ts || (g.cur.ts === x.ts && g.cur.id < x.id));
      if (!preKnown && !curBefore) continue;
    }
    out.push(firstSeenDetection(rule, keyFields, k.key, x.ts, x.id, x.source));
  }
  return out;
}
