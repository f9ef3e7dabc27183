/**
 * The in-process evaluator: a rule over an array of events. Used by rule tests, API previews
 * and the embedded (zero-server) mode, and as the reference the Elasticsearch backend is
 * tested against. Semantics: docs/rule-language.md "Semantics" and ./SEMANTICS.md.
 *
 * `range` is the evaluation range: filter and first_seen rules evaluate events in it,
 * threshold and baseline rules the windows entirely inside it, sequence rules read it (and
 * decide trailing absence up to its end). first_seen and baseline rules also read the
 * history before `range.start` from `events`.
 */
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type {
  BaselineRule,
  FilterRule,
  FirstSeenRule,
  RuleIR,
  SequenceRule,
  ThresholdRule,
} from '../../parser/ir.ts';
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
import { compileFilter, type EventPredicate } from './filter.ts';
import { buildDetection, sortDetections } from './render.ts';
import { compileSequence, matchPartition, type SeqEvent } from './sequence.ts';
import type { Degraded, Detection, EvaluationResult, TimeRange } from './types.ts';
import { accessor, canonicalValues, compareOrder, fieldKind, groupKeyOf, valuesOf } from './values.ts';

export { compileFilter } from './filter.ts';

export interface EvaluateOptions {
  /** Stop creating groups beyond this many (group, bucket) cells; recorded as degraded. */
  maxGroups?: number;
  /** Sequence rules: per partition key, the end of the last match emitted by an earlier run. */
  sequenceConsumed?: Map<string, { ts: number; id: string }>;
}

export interface PreparedEvents {
  events: readonly GatewatchEvent[];
  ts: Float64Array;
  ids: string[];
  /** Positions of events in (@timestamp, event.id) order (events without a time left out). */
  order: Int32Array;
}

const prepared = new WeakMap<readonly GatewatchEvent[], PreparedEvents>();

/** Parse times and sort once; cached per array (re-used across the rules of a pack). */
export function prepareEvents(events: readonly GatewatchEvent[]): PreparedEvents {
  const hit = prepared.get(events);
  if (hit && hit.events.length === events.length) return hit;
  const n = events.length;
  const ts = new Float64Array(n);
  const ids: string[] = new Array(n);
  let valid = 0;
  let sorted = true;
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    const t = Date.parse(e['@timestamp']);
    ts[i] = t;
    ids[i] = String((e.event as { id?: unknown } | undefined)?.id ?? '');
    if (!Number.isNaN(t)) valid++;
  }
  const order = new Int32Array(valid);
  let j = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(ts[i]!)) continue;
    if (j > 0 && sorted) {
      const prev = order[j - 1]!;
      if (compareOrder(ts[prev]!, ids[prev]!, ts[i]!, ids[i]!) > 0) sorted = false;
    }
    order[j++] = i;
  }
  if (!sorted) order.sort((a, b) => compareOrder(ts[a]!, ids[a]!, ts[b]!, ids[b]!));
  const out = { events, ts, ids, order };
  prepared.set(events, out);
  return out;
}

/** First position in `order` with ts >= t. */
function lowerBound(p: PreparedEvents, t: number): number {
  let lo = 0;
  let hi = p.order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (p.ts[p.order[mid]!]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Visit selected events with start <= ts < end in event order. */
function scan(
  p: PreparedEvents,
  filter: EventPredicate,
  start: number,
  end: number,
  visit: (i: number) => void,
) {
  const from = lowerBound(p, start);
  for (let k = from; k < p.order.length; k++) {
    const i = p.order[k]!;
    if (p.ts[i]! >= end) break;
    if (filter(p.events[i])) visit(i);
  }
}

/** Canonical key tuples of an event (cartesian over multi-valued fields); empty if one is missing. */
export function keyTuples(
  getters: { get: (e: unknown) => unknown; kind: ReturnType<typeof fieldKind> }[],
  event: unknown,
): (string | number | boolean)[][] {
  let tuples: (string | number | boolean)[][] = [[]];
  for (const g of getters) {
    const vals = canonicalValues(g.kind, g.get(event));
    if (vals.length === 0) return [];
    if (vals.length === 1) {
      for (const t of tuples) t.push(vals[0]!);
    } else {
      const next: (string | number | boolean)[][] = [];
      for (const t of tuples) for (const v of vals) next.push([...t, v]);
      tuples = next;
    }
  }
  return tuples;
}

export function keyGetters(fields: string[]) {
  return fields.map((f) => ({ get: accessor(f), kind: fieldKind(f) }));
}

function filterRule(rule: FilterRule, p: PreparedEvents, range: TimeRange): Detection[] {
  const out: Detection[] = [];
  scan(p, compileFilter(rule.filter), range.start, range.end, (i) => {
    const t = p.ts[i]!;
    out.push(
      buildDetection(rule, {
        groupFields: [],
        groupValues: [],
        anchor: p.ids[i]!,
        window: { start: t, end: t + 1 },
        firstSeen: t,
        lastSeen: t,
        eventCount: 1,
        metrics: {},
        sampleEventIds: rule.output.evidence.sampleSize > 0 ? [p.ids[i]!] : [],
        event: p.events[i],
        evidenceRange: { start: t, end: t + 1 },
      }),
    );
  });
  return out;
}

/** Events → partials per (group, bucket). */
function bucketize(
  plan: AggPlan,
  p: PreparedEvents,
  filter: EventPredicate,
  groupBy: string[],
  bucketMs: number,
  read: TimeRange,
  sampleSize: number,
  maxCells: number,
): { groups: Map<string, GroupBuckets>; degraded?: Degraded } {
  const getters = keyGetters(groupBy);
  const wheres = plan.filters.map(compileFilter);
  const stats = plan.statsFields.map(accessor);
  const termsGet = keyGetters(plan.termsFields);
  const groups = new Map<string, GroupBuckets>();
  let cells = 0;
  let degraded: Degraded | undefined;
  scan(p, filter, read.start, read.end, (i) => {
    const e = p.events[i];
    const tuples = keyTuples(getters, e);
    if (tuples.length === 0) return;
    const t = p.ts[i]!;
    const b = Math.floor(t / bucketMs) * bucketMs;
    for (const tuple of tuples) {
      const key = groupKeyOf(tuple);
      let g = groups.get(key);
      if (!g) {
        g = { key, values: tuple, buckets: new Map() };
        groups.set(key, g);
      }
      let part = g.buckets.get(b);
      if (!part) {
        if (cells >= maxCells) {
          degraded = { reason: `more than ${maxCells} group windows: some groups were not evaluated` };
          continue;
        }
        cells++;
        part = emptyPartial(plan);
        part.samples = [];
        g.buckets.set(b, part);
      }
      addEvent(part, t, p.ids[i]!, e, wheres, stats, termsGet, sampleSize);
    }
  });
  return { groups, ...(degraded ? { degraded } : {}) };
}

function addEvent(
  part: Partial,
  t: number,
  id: string,
  e: unknown,
  wheres: EventPredicate[],
  stats: ((e: unknown) => unknown)[],
  termsGet: ReturnType<typeof keyGetters>,
  sampleSize: number,
): void {
  part.count++;
  if (t < part.firstTs) part.firstTs = t;
  if (t > part.lastTs) part.lastTs = t;
  for (let w = 0; w < wheres.length; w++) if (wheres[w]!(e)) part.wheres[w]!++;
  for (let s = 0; s < stats.length; s++) {
    const st = part.stats[s]!;
    for (const v of valuesOf(stats[s]!(e))) {
      const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
      if (!Number.isFinite(x)) continue;
      st.n++;
      st.sum += x;
      if (x < st.min) st.min = x;
      if (x > st.max) st.max = x;
    }
  }
  for (let j = 0; j < termsGet.length; j++) {
    const g = termsGet[j]!;
    const map = part.terms[j]!;
    for (const v of canonicalValues(g.kind, g.get(e)))
      map.set(v as TermKey, (map.get(v as TermKey) ?? 0) + 1);
  }
  if (part.samples && part.samples.length < sampleSize) part.samples.push(id);
}

export function windowDetection(
  rule: ThresholdRule | BaselineRule,
  groupBy: string[],
  hit: WindowHit,
  sampleEventIds: string[],
  builtins?: Record<string, string>,
): Detection {
  const d = buildDetection(rule, {
    groupFields: groupBy,
    groupValues: hit.group.values,
    anchor: hit.window.start,
    window: hit.window,
    firstSeen: hit.partial.firstTs,
    lastSeen: hit.partial.lastTs,
    eventCount: hit.partial.count,
    metrics: hit.metrics.values,
    sampleEventIds,
    evidenceRange: hit.window,
    ...(builtins ? { builtins } : {}),
  });
  if (hit.metrics.approximate.length > 0) {
    d.degraded = {
      reason: `approximate ${hit.metrics.approximate.join(', ')} (too many distinct values to enumerate)`,
    };
  }
  return d;
}

function thresholdRule(
  rule: ThresholdRule,
  p: PreparedEvents,
  range: TimeRange,
  opts: EvaluateOptions,
): EvaluationResult {
  const t = rule.threshold;
  const plan = buildPlan(t.metrics);
  const slide = t.window.mode === 'sliding' ? (t.window.slideMs ?? t.window.sizeMs) : t.window.sizeMs;
  const sampleSize = rule.output.evidence.sampleSize;
  const { groups, degraded } = bucketize(
    plan,
    p,
    compileFilter(rule.filter),
    t.groupBy,
    slide,
    range,
    sampleSize,
    opts.maxGroups ?? Number.POSITIVE_INFINITY,
  );
  const hits = thresholdWindows(plan, groups.values(), t.window.sizeMs, slide, range, t.having, sampleSize);
  const detections = hits.map((h) => windowDetection(rule, t.groupBy, h, h.partial.samples ?? []));
  return { detections, ...(degraded ? { degraded } : {}) };
}

function baselineRule(
  rule: BaselineRule,
  p: PreparedEvents,
  range: TimeRange,
  opts: EvaluateOptions,
): EvaluationResult {
  const b = rule.baseline;
  const plan = buildPlan([b.metric]);
  const sampleSize = rule.output.evidence.sampleSize;
  const read = { start: range.start - b.historyMs, end: range.end };
  const { groups, degraded } = bucketize(
    plan,
    p,
    compileFilter(rule.filter),
    b.groupBy,
    b.windowMs,
    read,
    sampleSize,
    opts.maxGroups ?? Number.POSITIVE_INFINITY,
  );
  const hits = baselineWindows(plan, groups.values(), b, range);
  const detections = hits.map((h) =>
    windowDetection(rule, b.groupBy, h, h.partial.samples ?? [], baselineBuiltins(h)),
  );
  return { detections, ...(degraded ? { degraded } : {}) };
}

export function baselineBuiltins(h: {
  mean: number;
  stddev: number;
  buckets: number;
}): Record<string, string> {
  const f = (n: number) => String(Number(n.toFixed(3)));
  return {
    'baseline.mean': f(h.mean),
    'baseline.stddev': f(h.stddev),
    'baseline.buckets': String(h.buckets),
  };
}

function firstSeenRule(rule: FirstSeenRule, p: PreparedEvents, range: TimeRange): Detection[] {
  const fs = rule.firstSeen;
  const keyFields = [...fs.groupBy, ...fs.fields];
  const keyGet = keyGetters(keyFields);
  const lastKey = new Map<string, number>();
  const lastGroup = new Map<string, number>();
  const out: Detection[] = [];
  const nBy = fs.groupBy.length;
  scan(p, compileFilter(rule.filter), range.start - fs.historyMs, range.end, (i) => {
    const t = p.ts[i]!;
    const e = p.events[i];
    const tuples = keyTuples(keyGet, e);
    // decide every tuple of the event before recording it (multi-valued keys)
    if (t >= range.start) {
      for (const tuple of tuples) {
        const lk = lastKey.get(groupKeyOf(tuple));
        const isNew = lk === undefined || lk < t - fs.historyMs;
        const lg = lastGroup.get(groupKeyOf(tuple.slice(0, nBy)));
        const groupKnown = lg !== undefined && lg >= t - fs.historyMs;
        if (isNew && (!fs.ignoreNewGroups || groupKnown))
          out.push(firstSeenDetection(rule, keyFields, tuple, t, p.ids[i]!, e));
      }
    }
    for (const tuple of tuples) {
      lastKey.set(groupKeyOf(tuple), t);
      lastGroup.set(groupKeyOf(tuple.slice(0, nBy)), t);
    }
  });
  return out;
}

export function firstSeenDetection(
  rule: FirstSeenRule,
  keyFields: string[],
  tuple: (string | number | boolean)[],
  t: number,
  id: string,
  event: unknown,
): Detection {
  return buildDetection(rule, {
    groupFields: keyFields,
    groupValues: tuple,
    anchor: id,
    window: { start: t, end: t + 1 },
    firstSeen: t,
    lastSeen: t,
    eventCount: 1,
    metrics: {},
    sampleEventIds: rule.output.evidence.sampleSize > 0 ? [id] : [],
    event,
    evidenceRange: { start: t, end: t + 1 },
  });
}

/** Partition sequence candidates by join key and match; shared by both backends. */
export function runSequence(
  rule: SequenceRule,
  candidates: Iterable<SeqEvent>,
  range: TimeRange,
  opts: EvaluateOptions,
): Detection[] {
  const seq = compileSequence(rule);
  const getters = keyGetters(rule.sequence.by);
  const parts = new Map<string, { values: (string | number | boolean)[]; events: SeqEvent[] }>();
  for (const c of candidates) {
    for (const tuple of keyTuples(getters, c.event)) {
      const k = groupKeyOf(tuple);
      let part = parts.get(k);
      if (!part) {
        part = { values: tuple, events: [] };
        parts.set(k, part);
      }
      part.events.push(c);
    }
  }
  const out: Detection[] = [];
  const sampleSize = rule.output.evidence.sampleSize;
  for (const [key, part] of parts) {
    const res = matchPartition(seq, part.events, range.end, opts.sequenceConsumed?.get(key));
    for (const m of res.matches) {
      const all = m.chosen.flat();
      const metrics: Record<string, number | null> = {};
      const builtins: Record<string, string> = {
        'match.start': new Date(m.first.ts).toISOString(),
        'match.end': new Date(m.end.ts).toISOString(),
      };
      seq.steps.forEach((s, i) => {
        metrics[`${s.name}.count`] = m.observed[i]!;
        builtins[`${s.name}.count`] = String(m.observed[i]!);
      });
      out.push(
        buildDetection(rule, {
          groupFields: rule.sequence.by,
          groupValues: part.values,
          anchor: m.end.id,
          window: { start: m.first.ts, end: m.end.ts + 1 },
          firstSeen: m.first.ts,
          lastSeen: m.end.ts,
          eventCount: all.length,
          metrics,
          sampleEventIds: all.slice(0, sampleSize).map((x) => x.id),
          event: m.end.event,
          builtins,
          evidenceRange: { start: m.first.ts, end: m.end.ts + 1 },
        }),
      );
    }
  }
  return out;
}

function sequenceRule(
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

export function evaluateRule(
  rule: RuleIR,
  events: readonly GatewatchEvent[] | PreparedEvents,
  range: TimeRange,
  opts: EvaluateOptions = {},
): EvaluationResult {
  const p = 'order' in events ? events : prepareEvents(events);
  let result: EvaluationResult;
  switch (rule.kind) {
    case 'filter':
      result = { detections: filterRule(rule, p, range) };
      break;
    case 'threshold':
      result = thresholdRule(rule, p, range, opts);
      break;
    case 'baseline':
      result = baselineRule(rule, p, range, opts);
      break;
    case 'first_seen':
      result = { detections: firstSeenRule(rule, p, range) };
      break;
    case 'sequence':
      result = { detections: sequenceRule(rule, p, range, opts) };
      break;
  }
  sortDetections(result.detections);
  return result;
}
