/**
 * Baseline rules: one metric per group and bucket, compared with the same metric over the
 * group's history buckets (spike ratio or stddev), plus an optional `having`.
 *
 * - Plan: `buildPlan([metric])`, buckets of the window, read over history + range.
 * - In process: the Bucketizer over [range.start − history, range.end).
 * - Elasticsearch (raw events): pruning on what `having` implies per bucket, then the same
 *   composite as threshold rules over history + range, samples of the firing buckets.
 * - Partials (../../partials/): the same cells maintained as events arrive.
 */
import type { BaselineRule } from '../../../parser/ir.ts';
import { partialRuleKey } from '../../partials/cells.ts';
import { type PartialsSource, readCells, rereadInexact } from '../../partials/read.ts';
import {
  type AggPlan,
  type BaselineHit,
  baselineWindows,
  buildPlan,
  type GroupBuckets,
} from '../aggregate.ts';
import { bucketize as bucketizeOnElasticsearch } from '../es/bucketize.ts';
import { pruneGroups } from '../es/pruning.ts';
import type { Query, Run } from '../es/run.ts';
import { sampleIds } from '../es/samples.ts';
import { compileFilter } from '../filter.ts';
import { bucketize, type EvaluateOptions, type PreparedEvents, windowDetection } from '../in-process.ts';
import type { Detection, EvaluationResult, TimeRange } from '../types.ts';

export interface BaselinePlan {
  plan: AggPlan;
  groupBy: string[];
  bucketMs: number;
}

export function baselinePlan(rule: BaselineRule): BaselinePlan {
  const b = rule.baseline;
  return { plan: buildPlan([b.metric]), groupBy: b.groupBy, bucketMs: b.windowMs };
}

/** What a run over `range` reads: the history before it too. */
export function baselineRead(rule: BaselineRule, range: TimeRange): TimeRange {
  return { start: range.start - rule.baseline.historyMs, end: range.end };
}

export function baselineHits(
  rule: BaselineRule,
  bp: BaselinePlan,
  groups: Iterable<GroupBuckets>,
  range: TimeRange,
): BaselineHit[] {
  return baselineWindows(bp.plan, groups, rule.baseline, range);
}

export function evaluateBaseline(
  rule: BaselineRule,
  p: PreparedEvents,
  range: TimeRange,
  opts: EvaluateOptions,
): EvaluationResult {
  const bp = baselinePlan(rule);
  const { groups, degraded } = bucketize(
    bp.plan,
    p,
    compileFilter(rule.filter),
    bp.groupBy,
    bp.bucketMs,
    baselineRead(rule, range),
    rule.output.evidence.sampleSize,
    opts.maxGroups ?? Number.POSITIVE_INFINITY,
  );
  const hits = baselineHits(rule, bp, groups.values(), range);
  const detections = hits.map((h) =>
    windowDetection(rule, bp.groupBy, h, h.partial.samples ?? [], baselineBuiltins(h)),
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

/** The raw-event path. */
export async function baselineOnElasticsearch(
  run: Run,
  rule: BaselineRule,
  query: Query,
  range: TimeRange,
): Promise<Detection[]> {
  const b = rule.baseline;
  const bp = baselinePlan(rule);
  const read = baselineRead(rule, range);
  const restrict = b.having
    ? await pruneGroups(run, bp.plan, query, b.groupBy, b.having, b.windowMs, b.windowMs, range, false, read)
    : undefined;
  const groups = await bucketizeOnElasticsearch(run, bp.plan, query, b.groupBy, b.windowMs, read, restrict);
  return baselineDetections(run, rule, bp, query, baselineHits(rule, bp, groups, range));
}

export async function baselineDetections(
  run: Run,
  rule: BaselineRule,
  bp: BaselinePlan,
  query: Query,
  hits: BaselineHit[],
): Promise<Detection[]> {
  const samples = await sampleIds(run, rule, query, bp.groupBy, hits, bp.bucketMs);
  return hits.map((h, i) => windowDetection(rule, bp.groupBy, h, samples[i]!, baselineBuiltins(h)));
}

/**
 * The partials path (see thresholdFromPartials). A group with a sketched cell anywhere in what
 * the run reads is re-read raw whole: its history statistics use every bucket.
 */
export async function baselineFromPartials(
  run: Run,
  rule: BaselineRule,
  query: Query,
  range: TimeRange,
  source: PartialsSource,
): Promise<Detection[] | undefined> {
  const bp = baselinePlan(rule);
  const read = baselineRead(rule, range);
  const req = {
    key: partialRuleKey(rule),
    plan: bp.plan,
    groupBy: bp.groupBy,
    bucketMs: bp.bucketMs,
    query,
    read,
  };
  const cells = await readCells(run, source, req);
  if (!cells) return undefined;
  const from = Math.floor(read.start / bp.bucketMs) * bp.bucketMs;
  await rereadInexact(run, req, cells, undefined, read.end - from, () => [from]);
  run.partials = cells.use;
  return baselineDetections(run, rule, bp, query, baselineHits(rule, bp, cells.groups, range));
}
