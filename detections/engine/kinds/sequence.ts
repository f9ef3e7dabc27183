/**
 * Sequence rules: ordered steps per join key (the matcher is ../sequence.ts). In process: the
 * candidates of the range, partitioned and matched. On Elasticsearch: partitions that cannot hold
 * Σ mᵢ events in a stretch are pruned, the candidates read sorted and matched by the same code.
 */
import type { FilterExpr, RuleIR, SequenceRule } from '../../../parser/ir.ts';
import { countCandidates } from '../es/pruning.ts';
import { and, type Run, stretchesOf, TERMS_CHUNK } from '../es/run.ts';
import { compileFilter } from '../filter.ts';
import { compileFilterQuery } from '../filter-query.ts';
import { type EvaluateOptions, keyGetters, keyTuples, type PreparedEvents, scan } from '../in-process.ts';
import { buildDetection } from '../render.ts';
import { compileSequence, matchPartition, type SeqEvent } from '../sequence.ts';
import type { Detection, TimeRange } from '../types.ts';
import { groupKeyOf } from '../values.ts';

/** The rule's candidate events in `read`, sorted, with the fields it reads (set by the dispatcher). */
export type FetchEvents = (
  run: Run,
  rule: RuleIR,
  query: import('../es/run.ts').Query,
  read: TimeRange,
) => Promise<SeqEvent[]>;

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

export async function sequenceOnElasticsearch(
  run: Run,
  rule: SequenceRule,
  range: TimeRange,
  fetchEvents: FetchEvents,
): Promise<Detection[]> {
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
