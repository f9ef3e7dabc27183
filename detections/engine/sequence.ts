/**
 * The sequence matcher (docs/rule-language.md, "Sequence matching"), shared by both backends:
 * the evaluator feeds it every selected event of a partition, the Elasticsearch executor the
 * candidate events it fetched (those matching a step, an absent step or `until`; the others
 * cannot change the result).
 */
import type { SequenceRule } from '../../parser/ir.ts';
import type { EventPredicate, SharedFilters } from './filter.ts';
import { compileFilter } from './filter.ts';

export interface SeqEvent {
  ts: number;
  id: string;
  event: unknown;
}

export interface SeqMatch {
  /** Chosen events per non-absent step, each in event order. */
  chosen: SeqEvent[][];
  /** Events matching each non-absent step's filter in the step's counting interval. */
  observed: number[];
  /**
   * Those events themselves, per step in event order: what the detection reports (its events,
   * evidence and start), so that "12 failed logins" comes with the 12.
   */
  counted: SeqEvent[][];
  first: SeqEvent;
  end: SeqEvent;
}

interface Step {
  name: string;
  pred: EventPredicate;
  min: number;
  max?: number;
  /** Absent step following this one. */
  absentAfter?: EventPredicate;
}

export interface CompiledSequence {
  steps: Step[];
  until?: EventPredicate;
  maxSpanMs: number;
  /** Any step, absent step or until: the events the matcher needs to see. */
  candidate: EventPredicate;
  candidateFilter: import('../../parser/ir.ts').FilterExpr;
}

/** `shared`: see SharedFilters (only for the candidate test of a streamed rule). */
export function compileSequence(rule: SequenceRule, shared?: SharedFilters): CompiledSequence {
  const steps: Step[] = [];
  for (const s of rule.sequence.steps) {
    const pred = compileFilter(s.filter);
    if (s.absent) {
      const prev = steps[steps.length - 1];
      if (prev) prev.absentAfter = pred;
      continue;
    }
    steps.push({
      name: s.name,
      pred,
      min: Math.max(1, s.minCount),
      ...(s.maxCount !== undefined ? { max: s.maxCount } : {}),
    });
  }
  const filters = rule.sequence.steps.map((s) => s.filter);
  if (rule.sequence.until) filters.push(rule.sequence.until);
  const candidateFilter = { op: 'or' as const, args: filters };
  return {
    steps,
    ...(rule.sequence.until ? { until: compileFilter(rule.sequence.until) } : {}),
    maxSpanMs: rule.sequence.maxSpanMs,
    candidate: compileFilter(candidateFilter, shared),
    candidateFilter,
  };
}

export interface PartitionResult {
  matches: SeqMatch[];
  /** A trailing-absence candidate could not be decided before `watermark`: matching stopped there. */
  pendingFrom?: SeqEvent;
}

/** An event's place in event order: (time, id). */
export interface EventPos {
  ts: number;
  id: string;
}

/** Whether `e` comes before or at `pos` in event order. */
export function atOrBefore(e: EventPos, pos: EventPos): boolean {
  return e.ts < pos.ts || (e.ts === pos.ts && e.id <= pos.id);
}

/**
 * Match one partition. `events` in event order; `after`: the end of the last match emitted
 * before (events up to it are consumed); `watermark`: event time known complete (range end).
 * `resume`: only events at or after it may end a match — the ends before it were decided by an
 * earlier run (which kept the events a later end still needs; see ./kinds/sequence.ts).
 */
export function matchPartition(
  seq: CompiledSequence,
  events: SeqEvent[],
  watermark: number,
  after?: EventPos,
  resume?: EventPos,
): PartitionResult {
  const n = events.length;
  const k = seq.steps.length;
  const flags: Uint8Array[] = seq.steps.map((s) => {
    const f = new Uint8Array(n);
    for (let i = 0; i < n; i++) f[i] = s.pred(events[i]!.event) ? 1 : 0;
    return f;
  });
  const absent: (Uint8Array | undefined)[] = seq.steps.map((s) => {
    if (!s.absentAfter) return undefined;
    const f = new Uint8Array(n);
    for (let i = 0; i < n; i++) f[i] = s.absentAfter(events[i]!.event) ? 1 : 0;
    return f;
  });
  let until: Uint8Array | undefined;
  if (seq.until) {
    until = new Uint8Array(n);
    for (let i = 0; i < n; i++) until[i] = seq.until(events[i]!.event) ? 1 : 0;
  }
  let consumed = -1;
  if (after) while (consumed + 1 < n && atOrBefore(events[consumed + 1]!, after)) consumed++;
  let from = consumed + 1;
  if (resume) {
    // before `resume`, in event order: (ts, id) < resume
    while (
      from < n &&
      (events[from]!.ts < resume.ts || (events[from]!.ts === resume.ts && events[from]!.id < resume.id))
    )
      from++;
  }
  const span = seq.maxSpanMs;
  const matches: SeqMatch[] = [];
  const last = flags[k - 1]!;
  for (let p = from; p < n; p++) {
    if (!last[p]) continue;
    const e = events[p]!;
    const lowTs = e.ts - span; // chosen events need ts > lowTs
    // positions chosen per step (descending while collecting)
    const chosen: number[][] = [];
    let ok = true;
    let bound = p; // exclusive upper position for the next (earlier) step
    for (let i = k - 1; i >= 0 && ok; i--) {
      const f = flags[i]!;
      const got: number[] = [];
      let q = bound;
      if (i === k - 1) {
        got.push(p);
        q = p;
      }
      while (got.length < seq.steps[i]!.min) {
        q--;
        if (q <= consumed || events[q]!.ts <= lowTs) {
          ok = false;
          break;
        }
        if (f[q]) got.push(q);
      }
      got.reverse();
      chosen[i] = got;
      bound = got[0] ?? bound;
    }
    if (!ok) continue;
    const firstPos = chosen[0]![0]!;
    // until strictly between first and e
    if (until) {
      let bad = false;
      for (let q = firstPos + 1; q < p; q++)
        if (until[q]) {
          bad = true;
          break;
        }
      if (bad) continue;
    }
    // absent gaps between steps
    let bad = false;
    for (let i = 0; i < k - 1 && !bad; i++) {
      const a = absent[i];
      if (!a) continue;
      const from = chosen[i]![chosen[i]!.length - 1]!;
      const to = chosen[i + 1]![0]!;
      for (let q = from + 1; q < to; q++)
        if (a[q]) {
          bad = true;
          break;
        }
    }
    if (bad) continue;
    // maxima and observed counts
    const observed: number[] = [];
    const counted: number[][] = [];
    for (let i = 0; i < k; i++) {
      const f = flags[i]!;
      const hi = i === k - 1 ? p + 1 : chosen[i + 1]![0]!; // exclusive
      const got: number[] = [];
      if (i === 0) {
        for (let q = hi - 1; q >= 0 && events[q]!.ts > lowTs; q--) if (f[q]) got.push(q);
        got.reverse();
      } else {
        const lo = chosen[i - 1]![chosen[i - 1]!.length - 1]!;
        for (let q = lo + 1; q < hi; q++) if (f[q]) got.push(q);
      }
      const c = got.length;
      counted.push(got);
      observed.push(c);
      const max = seq.steps[i]!.max;
      if (max !== undefined && c > max) bad = true;
    }
    if (bad) continue;
    // trailing absence
    const trailing = absent[k - 1];
    if (trailing) {
      if (e.ts + span > watermark) return { matches, pendingFrom: e };
      for (let q = p + 1; q < n && events[q]!.ts < e.ts + span; q++)
        if (trailing[q]) {
          bad = true;
          break;
        }
      if (bad) continue;
    }
    matches.push({
      chosen: chosen.map((c) => c.map((q) => events[q]!)),
      observed,
      counted: counted.map((c) => c.map((q) => events[q]!)),
      first: events[firstPos]!,
      end: e,
    });
    consumed = p;
  }
  return { matches };
}
