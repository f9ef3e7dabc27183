/**
 * The in-process evaluator's shared machinery: events prepared once (times parsed, sorted by
 * (@timestamp, event.id)), scans over a time range, key tuples, and the `Bucketizer` that folds
 * events into partials per (group, bucket) — used by the evaluator's rule kinds, the embedded
 * replay's streams, and the ingest-time partials (detections/partials/).
 */

import { lookupField } from '../../core/schema/catalogue.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { BaselineRule, RuleIR, ThresholdRule } from '../../parser/ir.ts';
import {
  type AggPlan,
  emptyPartial,
  type GroupBuckets,
  type Partial,
  type TermKey,
  type WindowHit,
} from './aggregate.ts';
import { CORRELATION_FIELDS } from './correlate.ts';
import { compileFilter, type EventPredicate, type SharedFilters } from './filter.ts';
import { buildDetection } from './render.ts';
import type { Degraded, Detection, TimeRange } from './types.ts';
import {
  accessor,
  canonicalValue,
  canonicalValues,
  compareOrder,
  fieldKind,
  groupKeyOf,
  valuesOf,
} from './values.ts';

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
export function scan(
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
        if (this.sampleSize > 0) {
          part.samples = [];
          part.sampleTs = [];
        }
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
      // cleared, not deleted: deleting properties turns objects into slow dictionaries
      eg.lastBucket = undefined;
      eg.lastPart = undefined;
      if (this.sampleSize > 0) for (const part of g.buckets.values()) delete (part as EvalPartial).sampleTs;
    }
    return { groups: this.groups, ...(this.degraded ? { degraded: this.degraded } : {}) };
  }
}

/** Events → partials per (group, bucket). */
export function bucketize(
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
