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
import type { FilterExpr, FirstSeenRule, HavingExpr, Metric, RuleIR, SequenceRule } from '../../parser/ir.ts';
import {
  type AggPlan,
  baselineWindows,
  buildPlan,
  emptyPartial,
  evalHaving,
  type GroupBuckets,
  type Partial,
  type TermKey,
  thresholdWindows,
  type WindowHit,
} from './aggregate.ts';
import { relaxForCorrelation } from './correlate.ts';
import {
  baselineBuiltins,
  evaluateRule,
  firstSeenDetection,
  keyTuples,
  ruleFields,
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
  /** esMs: waiting for Elasticsearch (wall); tookMs: its own `took` summed; workerMs: the rest. */
  timing: { esMs: number; workerMs: number; tookMs?: number };
  /** (group, bucket) cells threshold and baseline rules read from aggregations: their cost. */
  cells: number;
}

class Run {
  esMs = 0;
  /** Sum of Elasticsearch's own `took` over the searches (server-side time, without transfer). */
  tookMs = 0;
  /** (group, bucket) cells read by bucketize. */
  cells = 0;
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
  if (rule.correlate) {
    // Fields a record lacks may come from a partner record of the same request: fetch every
    // record the merged event could come from, merge and evaluate in the worker (correlate.ts).
    const candidates = compileFilterQuery(relaxForCorrelation(rule.filter));
    detections = await fetchAndEvaluate(run, rule, candidates.query, range);
  } else if (rule.kind === 'filter')
    detections = await filterRule(run, rule, filter.query, filter.exact, range);
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
    const restrict = await pruneGroups(
      run,
      plan,
      filter.query,
      t.groupBy,
      t.having,
      slide,
      t.window.sizeMs,
      range,
      true,
    );
    const groups = await bucketize(run, plan, filter.query, t.groupBy, slide, range, restrict);
    // Every window that can fire lies inside the candidate ranges, and only those were read: a
    // window reaching past them was read in part, so its metrics say nothing.
    const within = restrict?.ranges;
    const hits = thresholdWindows(
      plan,
      groups,
      t.window.sizeMs,
      slide,
      range,
      t.having,
      rule.output.evidence.sampleSize,
    ).filter((h) => !within || within.some((r) => r.start <= h.window.start && h.window.end <= r.end));
    const samples = await sampleIds(run, rule, filter.query, t.groupBy, hits, slide);
    detections = hits.map((h, i) => windowDetection(rule, t.groupBy, h, samples[i]!));
  } else if (rule.kind === 'baseline') {
    const b = rule.baseline;
    const plan = buildPlan([b.metric]);
    const read = { start: range.start - b.historyMs, end: range.end };
    const restrict = b.having
      ? await pruneGroups(
          run,
          plan,
          filter.query,
          b.groupBy,
          b.having,
          b.windowMs,
          b.windowMs,
          range,
          false,
          read,
        )
      : undefined;
    const groups = await bucketize(run, plan, filter.query, b.groupBy, b.windowMs, read, restrict);
    const hits = baselineWindows(plan, groups, b, range);
    const samples = await sampleIds(run, rule, filter.query, b.groupBy, hits, b.windowMs);
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
    timing: { esMs: run.esMs, workerMs: Math.max(0, total - run.esMs), tookMs: run.tookMs },
    cells: run.cells,
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
  const fields = ruleFields(rule);
  for await (const hit of run.hits(
    and(query, timeRange(range)),
    exact ? max + 1 : run.limits.maxEvents,
    fields,
  )) {
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

/**
 * The events matching `query` in `read`, sorted, each with only the fields `rule` reads
 * (ruleFields: filters, keys, templates, entities, evidence), as the embedded replay projects them.
 */
async function fetchEvents(run: Run, rule: RuleIR, query: Query, read: TimeRange): Promise<SeqEvent[]> {
  const out: SeqEvent[] = [];
  const max = run.limits.maxEvents;
  for await (const hit of run.hits(and(query, timeRange(read)), max + 1, ruleFields(rule))) {
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
  const events = await fetchEvents(run, rule, query, read);
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
  // A match holds Σ mᵢ events of its partition matching some step, all within `within`: the
  // partitions (by their first key) that never reach that count in a stretch cannot match.
  const { by, steps, maxSpanMs } = rule.sequence;
  const needed = steps.reduce((a, s) => a + (s.absent ? 0 : s.minCount), 0);
  let query = q.query;
  if (by.length > 0 && needed >= 2) {
    const counted = compileFilterQuery({
      op: 'and',
      args: [
        rule.filter,
        { op: 'or', args: steps.filter((s) => !s.absent).map((s) => s.filter) },
        ...by.map((f): FilterExpr => ({ op: 'exists', field: f })),
      ],
    });
    // an inexact (superset) query only counts more: still a superset of the candidates
    const values = await countCandidates(
      run,
      counted.query,
      by[0]!,
      needed,
      stretchesOf(range, 1, maxSpanMs),
    );
    if (values?.length === 0) return runSequence(rule, [], range, {});
    if (values && values.length <= TERMS_CHUNK) query = and(query, { terms: { [by[0]!]: values } });
  }
  let events = await fetchEvents(run, rule, query, range);
  if (!q.exact) {
    const pred = compileFilter(rule.filter);
    events = events.filter((e) => pred(e.event) && seq.candidate(e.event));
  }
  return runSequence(rule, events, range, {});
}

function numOrNull(v: unknown): number {
  return typeof v === 'number' ? v : Number.NaN;
}

/** Candidate values of the first group-by field: only these groups can fire. */
interface Restriction {
  values: estypes.FieldValue[];
  /** When set, only these times can hold a firing window of the candidates. */
  ranges?: TimeRange[];
}

/** Values per terms query (index.max_terms_count is 65,536). */
const TERMS_CHUNK = 10_000;
/** first_seen: at most this many values of the key's first field in the range restrict the history read (one terms query). */
const ACTIVE_VALUES = TERMS_CHUNK;
/** Buckets per candidate request (below search.max_buckets). */
const CANDIDATES_PAGE = 10_000;
const DAY_MS = 86_400_000;
/** Histogram buckets per sample search. */
const SAMPLE_BUCKETS = 1000;

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
 * slice boundary x. A group with T events over k shards has T/k on one of them, so the
 * per-shard minimum is ⌈T/k⌉ with k the shards the request actually searched (the others
 * are skipped by can_match on @timestamp); any truncation (a full page, or a doc count error)
 * means more partitions.
 */
async function pruneGroups(
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
 * `having` with only some metric values known: false when it is false whatever the unknown
 * metrics are, true when it is true whatever they are, undefined otherwise.
 */
export function havingMaybe(h: HavingExpr, known: Record<string, number | null>): boolean | undefined {
  switch (h.op) {
    case 'and': {
      let all = true;
      for (const a of h.args) {
        const v = havingMaybe(a, known);
        if (v === false) return false;
        if (v === undefined) all = false;
      }
      return all ? true : undefined;
    }
    case 'or': {
      let none = true;
      for (const a of h.args) {
        const v = havingMaybe(a, known);
        if (v === true) return true;
        if (v === undefined) none = false;
      }
      return none ? false : undefined;
    }
    case 'not': {
      const v = havingMaybe(h.arg, known);
      return v === undefined ? undefined : !v;
    }
    case 'cmp':
    case 'cmp_metric': {
      if (!(h.metric in known) || (h.op === 'cmp_metric' && !(h.other in known))) return undefined;
      return evalHaving(h, known);
    }
  }
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

type CompositeBucket = estypes.AggregationsCompositeBucket & Record<string, unknown>;

/**
 * The pages of one composite aggregation (`query`, `sources`, sub-aggregations `aggs`), in order.
 * A page with fewer buckets than asked for is the last one: a composite aggregation returns the
 * first `size` keys after `after` among all matching documents, so a short page means no keys
 * are left (and every further request would re-read all the documents to say so). A page whose
 * sub-aggregations exceed search.max_buckets or trip a circuit breaker is asked again with a
 * smaller size (composite paging is exact at any page size). `stop`, when given, is asked before each request.
 */
async function* compositePages(
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
class TimeSlices {
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

async function timeSlices(run: Run, query: Query, range: TimeRange, alignMs: number, target: number) {
  const { count } = await run.es(() =>
    run.client.count({ index: run.index, query: and(query, timeRange(range)) }),
  );
  return { count, slices: new TimeSlices(range, alignMs, target, count) };
}

/** Buckets a candidate composite is sliced for (about one page of CANDIDATES_PAGE). */
const CANDIDATES_SLICE = Math.floor(CANDIDATES_PAGE * 0.8);

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
function windowStarts(
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

/** Overlapping or touching spans merged, in time order. */
function mergeSpans(spans: TimeRange[]): TimeRange[] {
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
const MAX_RANGES = 1000;

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
function stretchesOf(range: TimeRange, bucketMs: number, extend: number): TimeRange[] {
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
async function countCandidates(
  run: Run,
  query: Query,
  field: string,
  min: number,
  stretches: TimeRange[],
): Promise<estypes.FieldValue[] | undefined> {
  const kind = fieldKind(field);
  const out = new Map<string, estypes.FieldValue>();
  for (const stretch of stretches) {
    let shards = 1;
    let partitions = 1;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 8 || partitions > 256) return undefined;
      const perShard = Math.ceil(min / shards);
      let widen = false;
      let overflow = false;
      const found: [string, estypes.FieldValue][] = [];
      for (let p = 0; p < partitions && !widen && !overflow; p++) {
        const res = await run.es(() =>
          run.client.search({
            index: run.index,
            size: 0,
            pre_filter_shard_size: 1,
            query: and(query, timeRange(stretch)),
            aggs: {
              c: {
                terms: {
                  field,
                  size: CANDIDATES_PAGE,
                  shard_size: CANDIDATES_PAGE,
                  min_doc_count: perShard,
                  shard_min_doc_count: perShard,
                  ...(partitions > 1 ? { include: { partition: p, num_partitions: partitions } } : {}),
                },
              },
            },
          }),
        );
        const searched = res._shards.total - (res._shards.skipped ?? 0);
        if (searched > shards) {
          shards = searched;
          widen = true;
          break;
        }
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
      if (widen) continue;
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

/**
 * Composite aggregation pages → partials per (group, bucket).
 *
 * Counts, filters and stats come from one composite over (group-by…, bucket). The values that
 * distinct_count and percentile need are enumerated exactly by a second composite per field over
 * (group-by…, bucket, value), whose doc counts are the value counts: a composite source is far
 * cheaper in Elasticsearch than a terms sub-aggregation in every (group, bucket) cell, and it
 * never overflows a terms size.
 */
async function bucketize(
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
  return p;
}

/**
 * The earliest sample ids of each firing window, by (@timestamp, event.id). A window's
 * earliest n events are the first n of its buckets' earliest n, so only the buckets the firing
 * windows cover are read. When those buckets hold few events each (at most about n), the events
 * are read directly, sorted, by group chunk ({@link scanSamples}); otherwise each firing group
 * gets a date histogram (the rule's buckets) with the earliest n hits per bucket.
 */
async function sampleIds(
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
  // event of the sampled groups in the union of their buckets (a group's other buckets in that
  // union are read too, then dropped).
  let capped = 0;
  let scanned = 0;
  const union = new Set<number>();
  for (const g of needed.values()) for (const t of g.starts) union.add(t);
  for (const g of needed.values()) {
    for (const t of g.starts) capped += Math.min(g.buckets.get(t)?.count ?? 0, size);
    for (const [t, part] of g.buckets) if (union.has(t)) scanned += part.count;
  }
  const mode = run.limits.sampling;
  if (mode === 'scan' || (mode === 'auto' && scanned <= 2 * capped && scanned <= run.limits.maxEvents)) {
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
  // one search per group and run of at most SAMPLE_BUCKETS buckets
  const searches: { key: string; body: estypes.SearchSearchRequestBody }[] = [];
  for (const [key, g] of needed) {
    const starts = [...g.starts].sort((a, b) => a - b);
    const terms: Query[] = groupBy.map((f, i) => ({ term: { [f]: { value: g.values[i]! } } }));
    for (let i = 0; i < starts.length; i += SAMPLE_BUCKETS) {
      const part = starts.slice(i, i + SAMPLE_BUCKETS);
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
  for (let from = 0; from < searches.length; from += 50) {
    const chunk = searches.slice(from, from + 50);
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

interface SampleGroup {
  values: (string | number | boolean)[];
  buckets: Map<number, Partial>;
  /** Buckets (start times) covered by the group's firing windows. */
  starts: Set<number>;
}

/**
 * Sample ids by reading the events of the firing buckets directly, sorted by (@timestamp,
 * event.id): per chunk of groups, one sorted search over the first group-by field's values and
 * the union of their buckets (a superset), kept in the worker only for a (group, bucket) to
 * sample and only up to `size` per bucket. Group keys are read as the evaluator reads them.
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
  const entries = [...needed.entries()];
  for (let i = 0; i < entries.length; i += TERMS_CHUNK) {
    const chunk = entries.slice(i, i + TERMS_CHUNK);
    const byFirst: Query[] =
      groupBy.length === 0
        ? []
        : [{ terms: { [groupBy[0]!]: [...new Set(chunk.map(([, g]) => g.values[0]!))] } }];
    const starts = [...new Set(chunk.flatMap(([, g]) => [...g.starts]))].sort((a, b) => a - b);
    const ranges: TimeRange[] = [];
    for (const t of starts) {
      const last = ranges[ranges.length - 1];
      if (last && last.end === t) last.end = t + bucketMs;
      else ranges.push({ start: t, end: t + bucketMs });
    }
    const time: Query = {
      bool: { should: coarsen(ranges, MAX_RANGES).map(timeRange), minimum_should_match: 1 },
    };
    const q = and(query, ...byFirst, time);
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
  /** 'lite': the earliest in-range time only (cur.id and cur.source left empty). */
  mode: 'source' | 'lite',
  keep?: Set<string>,
): Promise<Map<string, FsBucket>> {
  const kinds = fields.map(fieldKind);
  const sources = fields.map((field, i) => ({ [`k${i}`]: { terms: { field } } }));
  const out = new Map<string, FsBucket>();
  let cells = 0;
  // a top hit per bucket holds a document each: smaller pages keep the node's memory bounded
  const size = mode === 'lite' ? CANDIDATES_PAGE : Math.min(run.limits.pageSize, 2000);
  const aggs: Record<string, estypes.AggregationsAggregationContainer> = {
    pre: {
      filter: timeRange({ start: read.start, end: split }),
      aggs: { m: { max: { field: '@timestamp' } } },
    },
    cur: {
      filter: timeRange({ start: split, end: read.end }),
      aggs:
        mode === 'lite'
          ? { x: { min: { field: '@timestamp' } } }
          : {
              x: {
                top_hits: {
                  size: 1,
                  sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
                  _source: true,
                },
              },
            },
    },
  };
  const pages = compositePages(run, and(query, timeRange(read)), sources, {
    size,
    aggs,
    stop: () => run.overBudget(),
  });
  for await (const buckets of pages) {
    for (const b of buckets) {
      const key = fields.map(
        (_, i) => (canonicalValue(kinds[i]!, b.key[`k${i}`]) ?? b.key[`k${i}`]) as string | number | boolean,
      );
      // a document with several values of the first field also yields keys of other chunks
      if (keep && !keep.has(String(key[0]))) continue;
      if (++cells > run.limits.maxGroups) {
        run.degrade(`more than ${run.limits.maxGroups} first_seen keys: the rest were not evaluated`);
        return out;
      }
      const pre = b.pre as { doc_count: number; m: { value: number | null } };
      const cur = b.cur as {
        doc_count: number;
        x: { hits?: { hits: estypes.SearchHit<unknown>[] }; value?: number | null };
      };
      const fb: FsBucket = { key };
      if (pre.doc_count > 0 && pre.m.value !== null) fb.preMax = pre.m.value;
      if (mode === 'lite') {
        if (cur.doc_count > 0 && typeof cur.x.value === 'number')
          fb.cur = { ts: cur.x.value, id: '', source: undefined };
      } else {
        const top = cur.x.hits?.hits[0];
        if (cur.doc_count > 0 && top) fb.cur = { ts: hitTs(top), id: hitId(top), source: top._source };
      }
      out.set(groupKeyOf(key), fb);
    }
  }
  return out;
}

/** The earliest event (by @timestamp, event.id) of each query, batched in multi-searches. */
async function earliestHits(
  run: Run,
  queries: Query[],
  withSource: boolean,
): Promise<(estypes.SearchHit<unknown> | undefined)[]> {
  const out: (estypes.SearchHit<unknown> | undefined)[] = [];
  for (let from = 0; from < queries.length; from += 200) {
    const chunk = queries.slice(from, from + 200);
    const res = await run.es(() =>
      run.client.msearch({
        searches: chunk.flatMap((query) => [
          { index: run.index },
          {
            size: 1,
            query,
            sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
            _source: withSource,
            track_total_hits: false,
          },
        ]),
      }),
    );
    for (const r of res.responses) {
      if ('error' in r) throw new Error(`first_seen search failed: ${JSON.stringify(r.error)}`);
      out.push(r.hits.hits[0]);
    }
  }
  return out;
}

/**
 * The values `field` takes in `range` (matching `query`), when at most ACTIVE_VALUES; else
 * undefined. One terms aggregation: no paging, and a doc count error means more values.
 */
async function activeValues(
  run: Run,
  field: string,
  query: Query,
  range: TimeRange,
): Promise<estypes.FieldValue[] | undefined> {
  const res = await run.es(() =>
    run.client.search({
      index: run.index,
      size: 0,
      query: and(query, timeRange(range)),
      aggs: { v: { terms: { field, size: ACTIVE_VALUES + 1 } } },
    }),
  );
  const agg = res.aggregations?.v as estypes.AggregationsStringTermsAggregate | undefined;
  const buckets = (agg?.buckets ?? []) as { key: estypes.FieldValue; key_as_string?: string }[];
  if (buckets.length > ACTIVE_VALUES || (agg?.sum_other_doc_count ?? 0) > 0) return undefined;
  // booleans and dates as their strings, which a terms query reads back
  return buckets.map((b) => b.key_as_string ?? b.key);
}

/**
 * The groups (`by`) as `ignore new groups` reads them, from their keys: a group is known through
 * its earlier keys, i.e. its events that carry the values (SEMANTICS.md, as the evaluator
 * records groups). Latest history time = the keys' largest, earliest in-range event = the
 * keys' first by (time, id). No second composite over the history.
 */
function groupsOfKeys(keys: Map<string, FsBucket>, groupFields: number): Map<string, FsBucket> {
  const groups = new Map<string, FsBucket>();
  for (const k of keys.values()) {
    const key = k.key.slice(0, groupFields);
    const id = groupKeyOf(key);
    let g = groups.get(id);
    if (!g) {
      g = { key };
      groups.set(id, g);
    }
    if (k.preMax !== undefined && (g.preMax === undefined || k.preMax > g.preMax)) g.preMax = k.preMax;
    const c = k.cur;
    if (c && (!g.cur || c.ts < g.cur.ts || (c.ts === g.cur.ts && c.id < g.cur.id)))
      g.cur = { ts: c.ts, id: c.id, source: undefined };
  }
  return groups;
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
  // Pass 1 (aggregations, no hits): the latest history time and the earliest in-range time of
  // every key and group. Pass 2: the earliest in-range event (id, source) of the new keys
  // only, and the group's earliest event id where both earliest times are equal.
  // Only keys with events in the range can be new: when their first field takes few values
  // there (a scheduled run covers minutes), the history is read for those values only.
  const active = await activeValues(run, keyFields[0]!, query, range);
  // (A key of another value that this restriction also reads, from a document with several
  // values, has no event in the range: it cannot be new either way.)
  const pass1 = (fields: string[]) =>
    compositeFs(
      run,
      fields,
      active ? and(query, { terms: { [fields[0]!]: active } }) : query,
      read,
      range.start,
      'lite',
    );
  const keys = await pass1(keyFields);
  const groups = fs.ignoreNewGroups ? groupsOfKeys(keys, fs.groupBy.length) : undefined;
  const chosen: { k: FsBucket; tie?: FsBucket }[] = [];
  for (const k of keys.values()) {
    const x = k.cur;
    if (!x) continue;
    if (k.preMax !== undefined && k.preMax >= x.ts - fs.historyMs) continue;
    if (groups) {
      const g = groups.get(groupKeyOf(k.key.slice(0, fs.groupBy.length)));
      const preKnown = g?.preMax !== undefined && g.preMax >= x.ts - fs.historyMs;
      if (!preKnown) {
        if (!g?.cur || g.cur.ts > x.ts) continue;
        if (g.cur.ts === x.ts) {
          chosen.push({ k, tie: g });
          continue;
        }
      }
    }
    chosen.push({ k });
  }
  // Many new keys: one search each costs more than one composite with the first event per key
  // over the keys sharing their first field (the one-pass reading, on fewer documents).
  if (chosen.length > run.limits.firstSeenSearches) {
    const firstValues = new Map<string, estypes.FieldValue>();
    for (const c of chosen) firstValues.set(String(c.k.key[0]), c.k.key[0]!);
    const all = [...firstValues.values()];
    const full = new Map<string, FsBucket>();
    for (let i = 0; i < all.length; i += TERMS_CHUNK) {
      const chunk = all.slice(i, i + TERMS_CHUNK);
      const part = await compositeFs(
        run,
        keyFields,
        and(query, { terms: { [keyFields[0]!]: chunk } }),
        read,
        range.start,
        'source',
        new Set(chunk.map(String)),
      );
      for (const [k, v] of part) full.set(k, v);
    }
    const fullGroups = fs.ignoreNewGroups ? groupsOfKeys(full, fs.groupBy.length) : undefined;
    const res: Detection[] = [];
    for (const k of full.values()) {
      const x = k.cur;
      if (!x) continue;
      if (k.preMax !== undefined && k.preMax >= x.ts - fs.historyMs) continue;
      if (fullGroups) {
        const g = fullGroups.get(groupKeyOf(k.key.slice(0, fs.groupBy.length)));
        const preKnown = g?.preMax !== undefined && g.preMax >= x.ts - fs.historyMs;
        const curBefore = g?.cur !== undefined && (g.cur.ts < x.ts || (g.cur.ts === x.ts && g.cur.id < x.id));
        if (!preKnown && !curBefore) continue;
      }
      res.push(firstSeenDetection(rule, keyFields, k.key, x.ts, x.id, x.source));
    }
    return res;
  }
  const inRange = timeRange({ start: range.start, end: range.end });
  const byKey = (fields: string[], key: (string | number | boolean)[]): Query[] =>
    fields.map((f, i) => ({ term: { [f]: { value: key[i]! } } }));
  const firsts = await earliestHits(
    run,
    chosen.map((c) => and(query, inRange, ...byKey(keyFields, c.k.key))),
    true,
  );
  const ties = chosen.filter((c) => c.tie);
  // the group's first event among those that carry the values (its keys' events)
  const withValues: Query[] = fs.fields.map((field) => ({ exists: { field } }));
  const tieFirsts = await earliestHits(
    run,
    ties.map((c) => and(query, inRange, ...withValues, ...byKey(fs.groupBy, c.tie!.key))),
    false,
  );
  const groupFirst = new Map<FsBucket, estypes.SearchHit<unknown> | undefined>();
  ties.forEach((c, i) => {
    groupFirst.set(c.k, tieFirsts[i]);
  });
  const out: Detection[] = [];
  chosen.forEach((c, i) => {
    const hit = firsts[i];
    if (!hit) return;
    const ts = hitTs(hit);
    const id = hitId(hit);
    if (c.tie) {
      const g = groupFirst.get(c.k);
      if (!g) return;
      const gts = hitTs(g);
      if (!(gts < ts || (gts === ts && hitId(g) < id))) return;
    }
    out.push(firstSeenDetection(rule, keyFields, c.k.key, ts, id, hit._source));
  });
  return out;
}
