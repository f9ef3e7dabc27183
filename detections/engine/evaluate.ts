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

import { getField, lookupField } from '../../core/schema/catalogue.ts';
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
import { CORRELATION_FIELDS, mergeRequests, relaxForCorrelation } from './correlate.ts';
import { compileFilter, type EventPredicate, type SharedFilters } from './filter.ts';
import { buildDetection, sortDetections } from './render.ts';
import { compileSequence, matchPartition, type SeqEvent } from './sequence.ts';
import type { Degraded, Detection, EvaluationResult, TimeRange } from './types.ts';
import {
  accessor,
  canonicalValue,
  canonicalValues,
  compareOrder,
  fieldKind,
  groupKeyOf,
  isNestedPath,
  valuesOf,
} from './values.ts';

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

/** A bucket partial with the times of its samples (kept sorted by (@timestamp, event.id)). */
interface EvalPartial extends Partial {
  sampleTs?: number[];
}

/** A group with its most recently used bucket (events mostly come in time order). */
interface EvalGroup extends GroupBuckets {
  lastBucket?: number;
  lastPart?: EvalPartial;
}

/** Group index: one nested map level per key field, keyed by canonical value. */
type GroupIndex = Map<TermKey, GroupIndex | EvalGroup>;

/**
 * Folds events into partials per (group, bucket). Events may arrive in any order: samples are
 * kept as the earliest `sampleSize` by (@timestamp, event.id), and every other part of a partial
 * is order-independent (sums are exact for integer values; see SEMANTICS.md, Threshold).
 * Only `maxCells` (degraded runs) depends on the order.
 */
export class Bucketizer {
  readonly groups = new Map<string, GroupBuckets>();
  degraded: Degraded | undefined;
  private cells = 0;
  private readonly index: GroupIndex = new Map();
  private readonly getters: ReturnType<typeof keyGetters>;
  private readonly wheres: EventPredicate[];
  private readonly stats: ((e: unknown) => unknown)[];
  private readonly termsGet: ReturnType<typeof keyGetters>;
  private readonly plan: AggPlan;
  private readonly bucketMs: number;
  private readonly sampleSize: number;
  private readonly maxCells: number;
  private readonly tuple: (string | number | boolean)[];

  constructor(
    plan: AggPlan,
    groupBy: string[],
    bucketMs: number,
    sampleSize: number,
    maxCells: number,
    shared?: SharedFilters,
  ) {
    this.plan = plan;
    this.bucketMs = bucketMs;
    this.sampleSize = sampleSize;
    this.maxCells = maxCells;
    this.getters = keyGetters(groupBy);
    this.wheres = plan.filters.map((f) => compileFilter(f, shared));
    this.stats = plan.statsFields.map(accessor);
    this.termsGet = keyGetters(plan.termsFields);
    this.tuple = new Array(groupBy.length);
  }

  add(e: unknown, t: number, id: string): void {
    // Single-valued keys (the usual case): canonical values without intermediate arrays.
    const getters = this.getters;
    const tuple = this.tuple;
    for (let j = 0; j < getters.length; j++) {
      const g = getters[j]!;
      const raw = g.get(e);
      if (Array.isArray(raw)) {
        for (const values of keyTuples(getters, e)) this.addTo(values, e, t, id);
        return;
      }
      if (raw === undefined || raw === null) return;
      const c = canonicalValue(g.kind, raw);
      if (c === undefined) return;
      tuple[j] = c;
    }
    this.addTo(tuple, e, t, id);
  }

  /** `values` may be reused by the caller: copied when a group is created. */
  private addTo(values: (string | number | boolean)[], e: unknown, t: number, id: string): void {
    let node = this.index;
    const last = values.length - 1;
    for (let j = 0; j < last; j++) {
      let next = node.get(values[j]!) as GroupIndex | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[j]!, next);
      }
      node = next;
    }
    const leafKey = last >= 0 ? values[last]! : '';
    let g = node.get(leafKey) as EvalGroup | undefined;
    if (g === undefined) {
      const copy = values.slice();
      const key = groupKeyOf(copy);
      g = { key, values: copy, buckets: new Map() };
      node.set(leafKey, g);
      this.groups.set(key, g);
    }
    const bucketMs = this.bucketMs;
    const b = Math.floor(t / bucketMs) * bucketMs;
    let part: EvalPartial | undefined;
    if (g.lastBucket === b) part = g.lastPart;
    else {
      part = g.buckets.get(b) as EvalPartial | undefined;
      if (!part) {
        if (this.cells >= this.maxCells) {
          this.degraded = {
            reason: `more than ${this.maxCells} group windows: some groups were not evaluated`,
          };
          return;
        }
        this.cells++;
        part = emptyPartial(this.plan) as EvalPartial;
        part.samples = [];
        part.sampleTs = [];
        g.buckets.set(b, part);
      }
      g.lastBucket = b;
      g.lastPart = part;
    }
    addEvent(part!, t, id, e, this.wheres, this.stats, this.termsGet, this.sampleSize);
  }

  result(): { groups: Map<string, GroupBuckets>; degraded?: Degraded } {
    for (const g of this.groups.values()) {
      const eg = g as EvalGroup;
      delete eg.lastBucket;
      delete eg.lastPart;
      for (const part of g.buckets.values()) delete (part as EvalPartial).sampleTs;
    }
    return { groups: this.groups, ...(this.degraded ? { degraded: this.degraded } : {}) };
  }
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
  const bz = new Bucketizer(plan, groupBy, bucketMs, sampleSize, maxCells);
  scan(p, filter, read.start, read.end, (i) => bz.add(p.events[i], p.ts[i]!, p.ids[i]!));
  return bz.result();
}

function addEvent(
  part: EvalPartial,
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
    const raw = stats[s]!(e);
    if (raw === undefined || raw === null) continue;
    for (const v of Array.isArray(raw) ? valuesOf(raw) : [raw]) {
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
    const raw = g.get(e);
    if (raw === undefined || raw === null) continue;
    if (!Array.isArray(raw)) {
      const c = canonicalValue(g.kind, raw);
      if (c !== undefined) map.set(c, (map.get(c) ?? 0) + 1);
      continue;
    }
    for (const v of canonicalValues(g.kind, raw)) map.set(v as TermKey, (map.get(v as TermKey) ?? 0) + 1);
  }
  if (sampleSize > 0) addSample(part, t, id, sampleSize);
}

/** Keep the earliest `n` sample ids by (@timestamp, event.id); in-order input just appends. */
function addSample(part: EvalPartial, t: number, id: string, n: number): void {
  const ids = part.samples!;
  const tss = part.sampleTs!;
  let k = ids.length;
  if (k >= n) {
    if (compareOrder(t, id, tss[k - 1]!, ids[k - 1]!) >= 0) return;
    ids.pop();
    tss.pop();
    k--;
  }
  let pos = k;
  while (pos > 0 && compareOrder(tss[pos - 1]!, ids[pos - 1]!, t, id) > 0) pos--;
  if (pos === k) {
    ids.push(id);
    tss.push(t);
  } else {
    ids.splice(pos, 0, id);
    tss.splice(pos, 0, t);
  }
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
      out.push(
        buildDetection(rule, {
          groupFields: rule.sequence.by,
          groupValues: part.values,
          anchor: m.end.id,
          window: { start: first.ts, end: m.end.ts + 1 },
          firstSeen: first.ts,
          lastSeen: m.end.ts,
          eventCount: all.length,
          metrics,
          sampleEventIds: all.slice(0, sampleSize).map((x) => x.id),
          event: m.end.event,
          builtins,
          evidenceRange: { start: first.ts, end: m.end.ts + 1 },
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
  // A correlated rule sees one event per request, its records from several logs merged.
  const input = rule.correlate
    ? mergeRequests('order' in events ? events.events : events, rule.correlate.withinMs)
    : events;
  const p = 'order' in input ? input : prepareEvents(input);
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

/**
 * A rule evaluated incrementally: events are fed one at a time, in any order, each once, and
 * `finish` returns what `evaluateRule` returns over all of them (the embedded replay uses it so
 * events need not be held in memory). Threshold and baseline rules fold events into their
 * bucket partials as they arrive; the other kinds keep the events their filter selects
 * (through `project`, which must keep every field the rule reads — see `ruleFields`) and
 * evaluate them at the end. With `shared`, sub-expressions common to several rules' filters
 * are evaluated once per event: feed one event to every rule before the next.
 */
export interface RuleStream {
  add(event: unknown, ts: number, id: string): void;
  /**
   * Detections over `range`. Threshold and baseline rules need `range` to read every event
   * that was added (the replay's ranges do); otherwise this throws.
   */
  finish(range: TimeRange): EvaluationResult;
}

export function ruleStream(
  rule: RuleIR,
  opts: EvaluateOptions & { project?: (event: unknown) => unknown; shared?: SharedFilters } = {},
): RuleStream {
  const project = opts.project ?? ((e: unknown) => e);
  const filter = compileFilter(rule.filter, opts.shared);
  const evalOpts: EvaluateOptions = {
    ...(opts.maxGroups !== undefined ? { maxGroups: opts.maxGroups } : {}),
    ...(opts.sequenceConsumed ? { sequenceConsumed: opts.sequenceConsumed } : {}),
  };
  if (rule.correlate) {
    // Records select nothing on their own: a partner may bring the field a filter tests. Keep
    // every record that can be matched to a request, merge and evaluate at the end.
    const relaxed = compileFilter(relaxForCorrelation(rule.filter));
    const kept: unknown[] = [];
    return {
      add(e) {
        if (relaxed(e)) kept.push(project(e));
      },
      finish(range) {
        return evaluateRule(rule, kept as GatewatchEvent[], range, evalOpts);
      },
    };
  }
  if (rule.kind === 'threshold' || rule.kind === 'baseline') {
    const t = rule.kind === 'threshold' ? rule.threshold : undefined;
    const b = rule.kind === 'baseline' ? rule.baseline : undefined;
    const plan = buildPlan(t ? t.metrics : [b!.metric]);
    const bucketMs = t
      ? t.window.mode === 'sliding'
        ? (t.window.slideMs ?? t.window.sizeMs)
        : t.window.sizeMs
      : b!.windowMs;
    const sampleSize = rule.output.evidence.sampleSize;
    const bz = new Bucketizer(
      plan,
      t ? t.groupBy : b!.groupBy,
      bucketMs,
      sampleSize,
      opts.maxGroups ?? Number.POSITIVE_INFINITY,
      opts.shared,
    );
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    return {
      add(e, time, id) {
        if (Number.isNaN(time) || !filter(e)) return;
        if (time < min) min = time;
        if (time > max) max = time;
        bz.add(e, time, id);
      },
      finish(range) {
        const read = b ? { start: range.start - b.historyMs, end: range.end } : range;
        if (min < read.start || max >= read.end)
          throw new Error(`rule ${rule.id}: the range does not read every streamed event`);
        const { groups, degraded } = bz.result();
        let detections: Detection[];
        if (t) {
          const hits = thresholdWindows(
            plan,
            groups.values(),
            t.window.sizeMs,
            bucketMs,
            range,
            t.having,
            sampleSize,
          );
          detections = hits.map((h) =>
            windowDetection(rule as ThresholdRule, t.groupBy, h, h.partial.samples ?? []),
          );
        } else {
          const hits = baselineWindows(plan, groups.values(), b!, range);
          detections = hits.map((h) =>
            windowDetection(
              rule as BaselineRule,
              b!.groupBy,
              h,
              h.partial.samples ?? [],
              baselineBuiltins(h),
            ),
          );
        }
        sortDetections(detections);
        return { detections, ...(degraded ? { degraded } : {}) };
      },
    };
  }
  // filter, first_seen, sequence: only the events the rule's filter (and, for sequences, a
  // step, an absent step or `until`) selects can matter; keep those and evaluate at the end.
  const select =
    rule.kind === 'sequence'
      ? (() => {
          const candidate = compileSequence(rule, opts.shared).candidate;
          return (e: unknown) => filter(e) && candidate(e);
        })()
      : filter;
  const kept: unknown[] = [];
  return {
    add(e) {
      if (select(e)) kept.push(project(e));
    },
    finish(range) {
      return evaluateRule(rule, kept as GatewatchEvent[], range, evalOpts);
    },
  };
}

/**
 * Every event field a rule can read: filters (rule, metrics, steps, until), group and join
 * keys, metric fields, template field references, entities, suppression keys and evidence
 * fields, plus `@timestamp` and `event.id`.
 */
export function ruleFields(rule: RuleIR): string[] {
  const out = new Set<string>(['@timestamp', 'event.id']);
  const visit = (node: unknown, key: string | undefined) => {
    if (typeof node === 'string') {
      if (key === 'field' || key === 'fields' || key === 'groupBy' || key === 'by' || key === 'keyFields')
        out.add(node);
      return;
    }
    if (Array.isArray(node)) {
      for (const v of node) visit(v, key);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    // template references: metrics and builtins are answered before the event is read
    if (typeof o.ref === 'string') {
      if (o.kind === 'field' || lookupField(o.ref) !== undefined) out.add(o.ref);
      return;
    }
    for (const [k, v] of Object.entries(o)) visit(v, k);
  };
  visit(rule, undefined);
  if (rule.correlate) for (const f of CORRELATION_FIELDS) out.add(f);
  return [...out].sort();
}

/**
 * A copy of an event with only `fields`, each holding what `accessor(field)` reads from the
 * event (values shared, not cloned), so predicates, keys and templates on those fields read
 * the same from the copy. A field that is a prefix of another keeps its whole value.
 */
export function projector(fields: readonly string[]): (event: unknown) => Record<string, unknown> {
  const sorted = [...new Set(fields)].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  const kept: string[] = [];
  for (const f of sorted) if (!kept.some((k) => f.startsWith(`${k}.`))) kept.push(f);
  // Plain catalogue fields are read by walking nested objects (as `accessor` does, shared
  // prefixes walked once, in one generated function building object literals); the others
  // (flattened sub-keys, names with '@') through `accessor`. Missing fields may be present as
  // undefined (JSON drops them; readers cannot tell the difference).
  const root: ProjNode = { key: '', children: [] };
  const special: { get: (e: unknown) => unknown; path: string[] }[] = [];
  for (const f of kept) {
    // Generated code names the path's parts literally: plain characters only.
    const plain = isNestedPath(f) && /^[A-Za-z0-9_.]+$/.test(f);
    if (!plain) {
      special.push({ get: accessor(f), path: f === '@timestamp' || f.includes('@') ? [f] : f.split('.') });
      continue;
    }
    let node = root;
    const parts = f.split('.');
    parts.forEach((part, i) => {
      let next = node.children!.find((c) => c.key === part);
      if (!next) {
        next = i === parts.length - 1 ? { key: part, field: f } : { key: part, children: [] };
        node.children!.push(next);
      }
      node = next;
    });
  }
  const lines: string[] = [];
  let vars = 0;
  // Property reads are hoisted; a missing or non-object parent reads from EMPTY and yields
  // undefined, its leaves' getField fallbacks are only evaluated under an object parent.
  const guarded = (src: string, nodes: ProjNode[]): string =>
    `{ ${nodes
      .map((n) => {
        const key = JSON.stringify(n.key);
        if (n.field !== undefined) {
          const v = `v${vars++}`;
          lines.push(`const ${v} = ${src}[${key}];`);
          return `${key}: ${v} === undefined ? getField(e, ${JSON.stringify(n.field)}) : ${v}`;
        }
        const v = `v${vars++}`;
        lines.push(`const ${v} = ${src}[${key}];`);
        lines.push(`const ${v}o = ${v} !== null && typeof ${v} === 'object' ? ${v} : EMPTY;`);
        return `${key}: ${v}o === EMPTY ? undefined : ${guarded(`${v}o`, n.children!)}`;
      })
      .join(', ')} }`;
  const body = guarded('e', root.children!);
  const build = new Function('getField', 'EMPTY', `return (e) => { ${lines.join(' ')} return ${body}; };`)(
    getField,
    EMPTY_SOURCE,
  ) as (e: unknown) => Record<string, unknown>;
  return (event) => {
    const out = build(event);
    for (const { get, path } of special) {
      const v = get(event);
      if (v === undefined) continue;
      let node = out;
      for (let j = 0; j < path.length - 1; j++) {
        const k = path[j]!;
        let next = node[k] as Record<string, unknown> | undefined;
        if (next === undefined) {
          next = {};
          node[k] = next;
        }
        node = next;
      }
      node[path[path.length - 1]!] = v;
    }
    return out;
  };
}

interface ProjNode {
  key: string;
  /** Leaf: the dotted field name. */
  field?: string;
  children?: ProjNode[];
}

/** Stands for a missing or non-object parent in generated projections (its fields read undefined). */
const EMPTY_SOURCE: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
