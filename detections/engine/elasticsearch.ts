/**
 * The Elasticsearch backend: runs one rule over one range against the events index. Each rule
 * kind compiles to its own queries in ./kinds/ (filter, threshold, baseline, sequence,
 * first-seen) on shared plumbing in ./es/ (paging, time slices, pruning, bucketize, samples),
 * and finishes in the worker with the code the in-process evaluator uses (./aggregate.ts,
 * ./sequence.ts, ./render.ts). Needs only core Elasticsearch features (bool/term/range/
 * wildcard/regexp queries, composite/terms/stats/filter/top_hits aggregations, point-in-time):
 * no scripts, no bucket_selector.
 *
 * Rules whose filter Elasticsearch cannot express exactly (some regular expressions), correlated
 * rules and first_seen ranges longer than the history fall back to fetching the events and
 * running the evaluator on them. Every limit hit is reported as `degraded`, never silently.
 */

import type { Client } from '@elastic/elasticsearch';
import { wholeResultsOnly } from '../../core/store/whole-results.ts';
import type { RuleIR } from '../../parser/ir.ts';
import { partialRule } from '../partials/fold.ts';
import { describeUse } from '../partials/read.ts';
import { relaxForCorrelation } from './correlate.ts';
import { and, type EsLimits, type EsRunResult, hitId, hitTs, type Query, Run, timeRange } from './es/run.ts';
import { evaluateRule, ruleFields } from './evaluate.ts';
import { compileFilterQuery } from './filter-query.ts';
import { baselineFromPartials, baselineOnElasticsearch } from './kinds/baseline.ts';
import { filterOnElasticsearch } from './kinds/filter.ts';
import { firstSeenFromPartials, firstSeenOnElasticsearch } from './kinds/first-seen.ts';
import { type SequenceRunInput, type SequenceRunOutput, sequenceRun } from './kinds/sequence.ts';
import { thresholdFromPartials, thresholdOnElasticsearch } from './kinds/threshold.ts';
import { sortDetections } from './render.ts';
import type { SeqEvent } from './sequence.ts';
import type { Detection, TimeRange } from './types.ts';

export { havingMaybe, minEvents } from './es/pruning.ts';
export type { EsLimits, EsRunResult } from './es/run.ts';
export { coarsen } from './es/run.ts';
export { filterToQuery } from './filter-query.ts';

export async function runRuleOnElasticsearch(
  client: Client,
  index: string,
  rule: RuleIR,
  range: TimeRange,
  limits: EsLimits = {},
  /** A scheduled run's context (none for backtests and replays): a sequence rule's kept state. */
  scheduled?: { sequence?: SequenceRunInput },
): Promise<EsRunResult> {
  // A shard that fails (a circuit breaker, too_many_buckets, a node leaving) would otherwise
  // leave its buckets out of a 200 answer: every caller — scheduler, previews, backtests,
  // benchmarks — gets the whole answer or an error, never fewer detections in silence.
  const run = new Run(wholeResultsOnly(client), index, limits);
  let detections: Detection[];
  let sequence: SequenceRunOutput | undefined;
  const filter = compileFilterQuery(rule.filter);
  if (rule.correlate) {
    // Fields a record lacks may come from a partner record of the same request: fetch every
    // record the merged event could come from, merge and evaluate in the worker (correlate.ts).
    const candidates = compileFilterQuery(relaxForCorrelation(rule.filter));
    detections = await fetchAndEvaluate(run, rule, candidates.query, range);
  } else if (rule.kind === 'filter')
    detections = await filterOnElasticsearch(run, rule, filter.query, filter.exact, range);
  else if (rule.kind === 'sequence') {
    sequence = await sequenceRun(run, rule, range, fetchEvents, scheduled?.sequence);
    detections = sequence.detections;
  } else if (
    !filter.exact ||
    (rule.kind === 'first_seen' &&
      (range.end - range.start > rule.firstSeen.historyMs ||
        (rule.firstSeen.ignoreNewGroups && rule.firstSeen.groupBy.length === 0)))
  ) {
    detections = await fetchAndEvaluate(run, rule, filter.query, range);
  } else if (rule.kind === 'threshold')
    detections =
      (limits.partials && partialsKept(rule)
        ? await thresholdFromPartials(run, rule, filter.query, range, limits.partials)
        : undefined) ?? (await thresholdOnElasticsearch(run, rule, filter.query, range));
  else if (rule.kind === 'baseline')
    detections =
      (limits.partials && partialsKept(rule)
        ? await baselineFromPartials(run, rule, filter.query, range, limits.partials)
        : undefined) ?? (await baselineOnElasticsearch(run, rule, filter.query, range));
  else
    detections =
      (limits.partials && partialsKept(rule)
        ? await firstSeenFromPartials(run, rule, filter.query, range, limits.partials)
        : undefined) ?? (await firstSeenOnElasticsearch(run, rule, filter.query, range));
  const result = finishRun(run, detections);
  if (!sequence) return result;
  const note = [result.note, sequence.note].filter((n) => n !== undefined).join('; ');
  return {
    ...result,
    ...(note ? { note } : {}),
    sequence: { ...(sequence.next ? { next: sequence.next } : {}), eventsRead: sequence.eventsRead },
  };
}

/** The run's result: detections sorted, degraded reasons joined, timing split. */
export function finishRun(run: Run, detections: Detection[]): EsRunResult {
  for (const d of detections) if (d.degraded) run.degrade(d.degraded.reason);
  sortDetections(detections);
  const total = performance.now() - run.started;
  const note = run.partials ? describeUse(run.partials) : undefined;
  return {
    ...(run.partials ? { partials: run.partials } : {}),
    ...(note ? { note } : {}),
    detections,
    ...(run.reasons.length > 0 ? { degraded: { reason: run.reasons.join('; ') } } : {}),
    timing: {
      esMs: run.esMs,
      workerMs: Math.max(0, total - run.esMs),
      tookMs: run.tookMs,
      samplesMs: run.samplesMs,
    },
    cells: run.cells,
  };
}

/**
 * The events matching `query` in `read`, sorted, each with only the fields `rule` reads
 * (ruleFields: filters, keys, templates, entities, evidence), as the embedded replay projects them.
 */
export async function fetchEvents(
  run: Run,
  rule: RuleIR,
  query: Query,
  read: TimeRange,
): Promise<SeqEvent[]> {
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
/** Whether the rule's partials are kept (the same test the ingest fold applies). */
function partialsKept(rule: RuleIR): boolean {
  return partialRule(rule) !== undefined;
}

export async function fetchAndEvaluate(
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
