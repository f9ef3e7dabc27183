/**
 * Sequence rules: ordered steps per join key (the matcher is ../sequence.ts). In process: the
 * candidates of the range, partitioned and matched. On Elasticsearch: a backtest reads only the
 * stretches of each partition where every step's minimum falls within `within`
 * (`candidateSpans`), a scheduled run the events after its kept state; the candidates are read
 * sorted and matched by the same code.
 */
import type { FilterExpr, HavingExpr, Metric, RuleIR, SequenceRule } from '../../../parser/ir.ts';
import { buildPlan, thresholdWindows } from '../aggregate.ts';
import { bucketize } from '../es/bucketize.ts';
import { countCandidates, pruneGroups } from '../es/pruning.ts';
import { and, coarsen, type Query, type Run, stretchesOf, TERMS_CHUNK, timeRange } from '../es/run.ts';
import { compileFilter } from '../filter.ts';
import { compileFilterQuery } from '../filter-query.ts';
import { type EvaluateOptions, keyGetters, keyTuples, type PreparedEvents, scan } from '../in-process.ts';
import { buildDetection } from '../render.ts';
import { compileSequence, type EventPos, matchPartition, type SeqEvent, type SeqMatch } from '../sequence.ts';
import type { Detection, TimeRange } from '../types.ts';
import { groupKeyOf } from '../values.ts';

/** The rule's candidate events in `read`, sorted, with the fields it reads (set by the dispatcher). */
export type FetchEvents = (
  run: Run,
  rule: RuleIR,
  query: import('../es/run.ts').Query,
  read: TimeRange,
) => Promise<SeqEvent[]>;

/**
 * What a sequence rule carries from one scheduled run to the next (docs/partials.md, "Sequences
 * across runs"): at the watermark W (the run's range end), per partition the candidate events a
 * later match can still read — those after min(W, pending) − within — the end of its last
 * emitted match (`consumed`, kept while it is inside that stretch) and the end event of a match
 * whose trailing absence W could not decide yet (`pending`).
 */
export interface SequenceCarry {
  watermark: number;
  /** false: the events were over the size cap; only `consumed` and `pending` were kept. */
  eventsKept: boolean;
  partitions: Map<string, PartitionCarry>;
}

export interface PartitionCarry {
  values: (string | number | boolean)[];
  /** In event order, all before the watermark. */
  events: SeqEvent[];
  consumed?: EventPos;
  pending?: EventPos;
}

/** Partition sequence candidates by join key and match; shared by both backends. */
export function runSequence(
  rule: SequenceRule,
  candidates: Iterable<SeqEvent>,
  range: TimeRange,
  opts: EvaluateOptions,
): Detection[] {
  const consumed = opts.sequenceConsumed;
  const prior: SequenceCarry | undefined = consumed
    ? {
        // the ends to decide are all of the range's: no watermark before which they were decided
        watermark: Number.NEGATIVE_INFINITY,
        eventsKept: false,
        partitions: new Map([...consumed].map(([k, c]) => [k, { values: [], events: [], consumed: c }])),
      }
    : undefined;
  return matchSequence(rule, candidates, range.end, prior, false).detections;
}

/**
 * Match the candidates (event order) of every partition up to `watermark`. With `prior` (the
 * state kept at its watermark), its events are prepended to their partitions (when kept), its
 * `consumed` honoured, and only events at or after its watermark — or a partition's pending end
 * — may end a match: the ends before were decided by the runs before. Returns the detections
 * and, when `carry`, the state to keep at `watermark`.
 */
export function matchSequence(
  rule: SequenceRule,
  candidates: Iterable<SeqEvent>,
  watermark: number,
  prior: SequenceCarry | undefined,
  carry: boolean,
): { detections: Detection[]; next?: SequenceCarry } {
  const seq = compileSequence(rule);
  const getters = keyGetters(rule.sequence.by);
  const parts = new Map<string, PartitionCarry & { fresh: boolean }>();
  if (prior)
    for (const [k, p] of prior.partitions)
      parts.set(k, { ...p, events: prior.eventsKept ? [...p.events] : [], fresh: false });
  for (const c of candidates) {
    for (const tuple of keyTuples(getters, c.event)) {
      const k = groupKeyOf(tuple);
      let part = parts.get(k);
      if (!part) {
        part = { values: tuple, events: [], fresh: true };
        parts.set(k, part);
      } else if (part.values.length === 0) part.values = tuple;
      part.fresh = true;
      part.events.push(c);
    }
  }
  const out: Detection[] = [];
  const next: SequenceCarry | undefined = carry
    ? { watermark, eventsKept: true, partitions: new Map() }
    : undefined;
  const decidedBefore: EventPos | undefined = prior ? { ts: prior.watermark, id: '' } : undefined;
  const span = seq.maxSpanMs;
  for (const [key, part] of parts) {
    let consumed = part.consumed;
    let pending: EventPos | undefined;
    // A partition with no new event and no pending end has nothing left to decide.
    if (part.fresh || part.pending) {
      const res = matchPartition(seq, part.events, watermark, consumed, part.pending ?? decidedBefore);
      for (const m of res.matches) out.push(detectionOf(rule, seq, part.values, m));
      const lastMatch = res.matches[res.matches.length - 1];
      if (lastMatch) consumed = { ts: lastMatch.end.ts, id: lastMatch.end.id };
      if (res.pendingFrom) pending = { ts: res.pendingFrom.ts, id: res.pendingFrom.id };
    }
    if (!next) continue;
    // A later end e (at or after the watermark, or the pending one) reads events after e − within.
    const low = Math.min(watermark, pending?.ts ?? watermark) - span;
    const events = part.events.filter((e) => e.ts > low);
    if (consumed && consumed.ts <= low) consumed = undefined;
    if (events.length === 0 && !pending) continue;
    next.partitions.set(key, {
      values: part.values,
      events,
      ...(consumed ? { consumed } : {}),
      ...(pending ? { pending } : {}),
    });
  }
  return { detections: out, ...(next ? { next } : {}) };
}

function detectionOf(
  rule: SequenceRule,
  seq: ReturnType<typeof compileSequence>,
  values: (string | number | boolean)[],
  m: SeqMatch,
): Detection {
  // The events counted for each step (not only the minimum the match chose): "12 failed
  // logins" comes with its 12 events, from the first of them.
  const all = m.counted.flat().sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const first = all[0] ?? m.first;
  const metrics: Record<string, number | null> = {};
  const builtins: Record<string, string> = {
    'match.start': new Date(first.ts).toISOString(),
    'match.end': new Date(m.end.ts).toISOString(),
  };
  seq.steps.forEach((s, i) => {
    metrics[`${s.name}.count`] = m.observed[i]!;
    builtins[`${s.name}.count`] = String(m.observed[i]!);
  });
  return buildDetection(rule, {
    groupFields: rule.sequence.by,
    groupValues: values,
    anchor: m.end.id,
    window: { start: first.ts, end: m.end.ts + 1 },
    firstSeen: first.ts,
    lastSeen: m.end.ts,
    eventCount: all.length,
    metrics,
    sampleEventIds: all.slice(0, rule.output.evidence.sampleSize).map((x) => x.id),
    event: m.end.event,
    builtins,
    evidenceRange: { start: first.ts, end: m.end.ts + 1 },
  });
}

export function evaluateSequence(
  rule: SequenceRule,
  p: PreparedEvents,
  range: TimeRange,
  opts: EvaluateOptions,
): Detection[] {
  const seq = compileSequence(rule);
  const filter = compileFilter(rule.filter);
  const cands: SeqEvent[] = [];
  scan(
    p,
    (e) => filter(e) && seq.candidate(e),
    range.start,
    range.end,
    (i) => {
      cands.push({ ts: p.ts[i]!, id: p.ids[i]!, event: p.events[i] });
    },
  );
  return runSequence(rule, cands, range, opts);
}

/**
 * A scheduled run's sequence context (none for backtests and replays): the run's checkpoint
 * (its range's new part starts there) and the state kept at it, if any.
 */
export interface SequenceRunInput {
  /** The state kept at the checkpoint (its watermark is the checkpoint). */
  prior?: SequenceCarry;
  /** Why there is no usable state (for the run record's note). */
  missing?: string;
}

export interface SequenceRunOutput {
  detections: Detection[];
  /** The state to keep at the range's end; absent when the run could not compute it exactly. */
  next?: SequenceCarry;
  /** Candidate events read from Elasticsearch. */
  eventsRead: number;
  note?: string;
}

const minutes = (ms: number) => `${Math.round(ms / 60_000)}m`;

/**
 * One sequence run. Without `input` (backtests, replays): the range read raw, pruned by
 * partition. With a state at the checkpoint: only [checkpoint, end) is read, the state's events
 * prepended. With a state that kept only `consumed` (its events were over the size cap): the
 * look-back read raw, unpruned, honouring it. Otherwise the look-back read raw; either way the
 * state at the range's end is computed (every partition is needed for it: no pruning).
 */
export async function sequenceRun(
  run: Run,
  rule: SequenceRule,
  range: TimeRange,
  fetchEvents: FetchEvents,
  input?: SequenceRunInput,
): Promise<SequenceRunOutput> {
  const seq = compileSequence(rule);
  const q = compileFilterQuery({
    op: 'and',
    args: [
      rule.filter,
      seq.candidateFilter,
      ...rule.sequence.by.map((f): FilterExpr => ({ op: 'exists', field: f })),
    ],
  });
  const { by, steps, maxSpanMs } = rule.sequence;
  let query = q.query;
  let queries: Query[] | undefined;
  let read = range;
  let note: string | undefined;
  const prior = input?.prior;
  if (input && prior?.eventsKept) {
    read = { start: prior.watermark, end: range.end };
    let kept = 0;
    for (const p of prior.partitions.values()) kept += p.events.length;
    note = `sequence state at the checkpoint: read ${minutes(range.end - prior.watermark)} of new events and ${kept} kept events of ${prior.partitions.size} partitions instead of the ${minutes(range.end - range.start)} look-back`;
  } else if (input && prior) {
    // A pending end needs the events within `within` before it, which may precede the look-back.
    let low = prior.watermark - maxSpanMs;
    for (const p of prior.partitions.values()) if (p.pending) low = Math.min(low, p.pending.ts - maxSpanMs);
    read = { start: Math.min(range.start, low + 1), end: range.end };
    note = `sequence state at the checkpoint kept no events (over its size cap): read the look-back raw, honouring the ends of earlier matches`;
  } else if (input) {
    note = `no sequence state at the checkpoint (${input.missing ?? 'none kept'}): read the look-back raw`;
  } else {
    // A match holds Σ mᵢ events of its partition matching some step, all within `within`: the
    // partitions (by their first key) that never reach that count in a stretch cannot match.
    const needed = steps.reduce((a, s) => a + (s.absent ? 0 : s.minCount), 0);
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
      const spans = await candidateSpans(run, rule, counted.query, needed, range);
      if (spans) {
        if (spans.length === 0) return { detections: [], eventsRead: 0 };
        queries = spanQueries(query, by[0]!, spans);
      } else {
        const values = await countCandidates(
          run,
          counted.query,
          by[0]!,
          needed,
          stretchesOf(range, 1, maxSpanMs),
        );
        if (values?.length === 0) return { detections: [], eventsRead: 0 };
        if (values && values.length <= TERMS_CHUNK) query = and(query, { terms: { [by[0]!]: values } });
      }
    }
  }
  // Chunks hold disjoint partitions (by the first key), each read in event order.
  let events: SeqEvent[] = [];
  for (const chunk of queries ?? [query]) {
    events = events.concat(await fetchEvents(run, rule, chunk, read));
    if (events.length > run.limits.maxEvents) {
      run.degrade(`more than ${run.limits.maxEvents} events to fetch: only some partitions were evaluated`);
      break;
    }
  }
  const eventsRead = events.length;
  if (!q.exact) {
    const pred = compileFilter(rule.filter);
    events = events.filter((e) => pred(e.event) && seq.candidate(e.event));
  }
  const { detections, next } = matchSequence(rule, events, range.end, prior, input !== undefined);
  // A truncated read (too many events) cannot seed the next run: it reads its look-back raw.
  const exact = run.reasons.length === 0;
  return {
    detections,
    ...(next && exact ? { next } : {}),
    eventsRead,
    ...(note ? { note } : {}),
  };
}

/** Span clauses (time ranges over all partitions of a chunk) per read. */
const SPAN_CLAUSES = 1000;

/**
 * Where a backtest's matches can lie, per partition (by its first key). A match holds, within
 * `within` (w), at least mᵢ events matching each step i (Σ mᵢ in all), so it lies in two
 * consecutive w-buckets holding that many (a w-long stretch starting in bucket k ends before
 * bucket k + 2). Those cells are counted like a threshold rule's (window 2w sliding every w,
 * `count(stepᵢ) >= mᵢ` for every step, pruned the same way), and per such pair [kw − w,
 * kw + 3w) is read: everything the matcher looks at for an end in the pair (back to end − w for
 * its events and counts, forward to end + w for a trailing absence), with a bucket to spare. An
 * end outside every span cannot complete a match, and an end inside one sees the same
 * neighbourhood as in a full read, so the matches are the same. Undefined when the counting
 * would read more cells than the run allows (then partitions are pruned by day).
 */
async function candidateSpans(
  run: Run,
  rule: SequenceRule,
  countedQuery: Query,
  needed: number,
  range: TimeRange,
): Promise<{ value: string | number | boolean; spans: TimeRange[] }[] | undefined> {
  const w = rule.sequence.maxSpanMs;
  const field = rule.sequence.by[0]!;
  const steps = rule.sequence.steps.filter((st) => !st.absent);
  const metrics: Metric[] = [
    { name: 'n', fn: 'count' },
    ...steps.map((st, i): Metric => ({ name: `s${i}`, fn: 'count', where: st.filter })),
  ];
  const having: HavingExpr = {
    op: 'and',
    args: [
      { op: 'cmp', metric: 'n', cmp: '>=', value: needed },
      ...steps.map((st, i): HavingExpr => ({ op: 'cmp', metric: `s${i}`, cmp: '>=', value: st.minCount })),
    ],
  };
  const plan = buildPlan(metrics);
  // Pairs are counted over whole buckets around the range (a pair reaching past its ends holds
  // matches too): events outside it only count more, which reads more, never less.
  const pairs = { start: Math.floor(range.start / w) * w - w, end: (Math.floor(range.end / w) + 2) * w };
  const restrict = await pruneGroups(run, plan, countedQuery, [field], having, w, 2 * w, pairs, true);
  if (restrict?.values.length === 0) return [];
  const reasons = run.reasons.length;
  const groups = await bucketize(run, plan, countedQuery, [field], w, pairs, restrict);
  // a truncated count (over maxGroups) says nothing about the spans: prune by day instead
  if (run.reasons.length > reasons) {
    run.reasons.length = reasons;
    return undefined;
  }
  const byGroup = new Map<string, { value: string | number | boolean; spans: TimeRange[] }>();
  for (const h of thresholdWindows(plan, groups, 2 * w, w, pairs, having, 0)) {
    let g = byGroup.get(h.group.key);
    if (!g) {
      g = { value: h.group.values[0]!, spans: [] };
      byGroup.set(h.group.key, g);
    }
    const span = {
      start: Math.max(range.start, h.window.start - w),
      end: Math.min(range.end, h.window.start + 3 * w),
    };
    const last = g.spans[g.spans.length - 1];
    if (last && last.end >= span.start) last.end = Math.max(last.end, span.end);
    else g.spans.push(span);
  }
  return [...byGroup.values()];
}

/** The read of `query` restricted to each partition's spans, in chunks of about SPAN_CLAUSES ranges. */
function spanQueries(
  query: Query,
  field: string,
  partitions: { value: string | number | boolean; spans: TimeRange[] }[],
): Query[] {
  const out: Query[] = [];
  let chunk: Query[] = [];
  let clauses = 0;
  const flush = () => {
    if (chunk.length === 0) return;
    out.push(and(query, { bool: { should: chunk, minimum_should_match: 1 } }));
    chunk = [];
    clauses = 0;
  };
  for (const p of partitions) {
    // a superset of the spans is still safe: nearest spans merged when one partition has many
    const spans = coarsen(p.spans, SPAN_CLAUSES);
    if (clauses + spans.length > SPAN_CLAUSES) flush();
    chunk.push(
      and(
        { term: { [field]: { value: p.value } } },
        { bool: { should: spans.map(timeRange), minimum_should_match: 1 } },
      ),
    );
    clauses += spans.length + 1;
  }
  flush();
  return out;
}
