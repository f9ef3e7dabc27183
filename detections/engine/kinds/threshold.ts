/**
 * Threshold rules: metrics per group over tumbling or sliding windows, `having` decides.
 *
 * - Plan: `buildPlan(metrics)` (../aggregate.ts); buckets are the window (tumbling) or the slide
 *   (sliding), combined `size/slide` at a time by `thresholdWindows`.
 * - In process: the Bucketizer folds the range's events into partials.
 * - Elasticsearch (raw events): candidate pruning (../es/pruning.ts), then one composite over
 *   (group-by…, bucket) for the candidates (../es/bucketize.ts), samples of the firing windows.
 * - Partials (../../partials/): the same cells maintained as events arrive, read and merged per
 *   run; the raw path above is the fallback for what they do not cover.
 */
import type { HavingExpr, ThresholdRule } from '../../../parser/ir.ts';
import { partialRuleKey, type ValuesNeeded } from '../../partials/cells.ts';
import { type PartialsSource, readCells, rereadInexact } from '../../partials/read.ts';
import {
  type AggPlan,
  buildPlan,
  type GroupBuckets,
  havingMaybe,
  knownMetrics,
  type Partial,
  thresholdWindows,
  type WindowHit,
} from '../aggregate.ts';
import { bucketize as bucketizeOnElasticsearch } from '../es/bucketize.ts';
import { minEvents, pruneGroups, windowStarts } from '../es/pruning.ts';
import type { Query, Run } from '../es/run.ts';
import { sampleIds } from '../es/samples.ts';
import { compileFilter } from '../filter.ts';
import { bucketize, type EvaluateOptions, type PreparedEvents, windowDetection } from '../in-process.ts';
import type { Detection, EvaluationResult, TimeRange } from '../types.ts';

/** What a threshold rule aggregates, and in which buckets. */
export interface ThresholdPlan {
  plan: AggPlan;
  groupBy: string[];
  /** Bucket size: the window (tumbling) or the slide (sliding). */
  bucketMs: number;
  windowMs: number;
}

export function thresholdPlan(rule: ThresholdRule): ThresholdPlan {
  const t = rule.threshold;
  const bucketMs = t.window.mode === 'sliding' ? (t.window.slideMs ?? t.window.sizeMs) : t.window.sizeMs;
  return { plan: buildPlan(t.metrics), groupBy: t.groupBy, bucketMs, windowMs: t.window.sizeMs };
}

/** Firing windows of the cells in `groups` (whichever path read them). */
export function thresholdHits(
  rule: ThresholdRule,
  tp: ThresholdPlan,
  groups: Iterable<GroupBuckets>,
  range: TimeRange,
): WindowHit[] {
  return thresholdWindows(
    tp.plan,
    groups,
    tp.windowMs,
    tp.bucketMs,
    range,
    rule.threshold.having,
    rule.output.evidence.sampleSize,
  );
}

export function evaluateThreshold(
  rule: ThresholdRule,
  p: PreparedEvents,
  range: TimeRange,
  opts: EvaluateOptions,
): EvaluationResult {
  const tp = thresholdPlan(rule);
  const { groups, degraded } = bucketize(
    tp.plan,
    p,
    compileFilter(rule.filter),
    tp.groupBy,
    tp.bucketMs,
    range,
    rule.output.evidence.sampleSize,
    opts.maxGroups ?? Number.POSITIVE_INFINITY,
  );
  const hits = thresholdHits(rule, tp, groups.values(), range);
  const detections = hits.map((h) => windowDetection(rule, tp.groupBy, h, h.partial.samples ?? []));
  return { detections, ...(degraded ? { degraded } : {}) };
}

/** The raw-event path: pruning, cells of the candidates, samples of the firing windows. */
export async function thresholdOnElasticsearch(
  run: Run,
  rule: ThresholdRule,
  query: Query,
  range: TimeRange,
): Promise<Detection[]> {
  const t = rule.threshold;
  const tp = thresholdPlan(rule);
  const restrict = await pruneGroups(
    run,
    tp.plan,
    query,
    t.groupBy,
    t.having,
    tp.bucketMs,
    tp.windowMs,
    range,
    true,
  );
  const groups = await bucketizeOnElasticsearch(run, tp.plan, query, t.groupBy, tp.bucketMs, range, restrict);
  // Every window that can fire lies inside the candidate ranges, and only those were read: a
  // window reaching past them was read in part, so its metrics say nothing.
  const within = restrict?.ranges;
  const hits = thresholdHits(rule, tp, groups, range).filter(
    (h) => !within || within.some((r) => r.start <= h.window.start && h.window.end <= r.end),
  );
  return thresholdDetections(run, rule, tp, query, hits);
}

/** Detections of firing windows, their samples read from the raw events of those windows. */
export async function thresholdDetections(
  run: Run,
  rule: ThresholdRule,
  tp: ThresholdPlan,
  query: Query,
  hits: WindowHit[],
): Promise<Detection[]> {
  const samples = await sampleIds(run, rule, query, tp.groupBy, hits, tp.bucketMs);
  return hits.map((h, i) => windowDetection(rule, tp.groupBy, h, samples[i]!));
}

/**
 * The buckets whose values (distinct counts, percentiles) a run must merge: those of windows
 * that may fire judging by counts and numeric stats alone, the same test `thresholdWindows`
 * applies before it combines a window. On a busy rule most windows fail it, and merging their
 * value maps was most of a read's cost.
 */
export function valuesNeeded(rule: ThresholdRule, tp: ThresholdPlan, range: TimeRange): ValuesNeeded {
  const per = Math.round(tp.windowMs / tp.bucketMs);
  const sums = new Array<number>(tp.plan.filters.length + 1);
  const having = rule.threshold.having;
  return (g) => {
    const needed = new Set<number>();
    const parts: Partial[] = [];
    for (const s of windowStarts(g.buckets.keys(), per, tp.bucketMs, tp.windowMs, range)) {
      parts.length = 0;
      for (let j = 0; j < per; j++) {
        const p = g.buckets.get(s + j * tp.bucketMs);
        if (p) parts.push(p);
      }
      if (havingMaybe(having, knownMetrics(tp.plan, parts, sums)) === false) continue;
      for (let j = 0; j < per; j++) needed.add(s + j * tp.bucketMs);
    }
    return needed;
  };
}

/**
 * The least events (slot 0) and where-counts (slot i + 1 for the plan's filter i) a window must
 * hold for `having` to be true: the `count() >= T` / `count(where) >= T` conjuncts, and
 * `minEvents` for the events (which also sees through `or`). Partials fetch only the groups that
 * reach them (../../partials/read.ts).
 */
export function countFloors(having: HavingExpr, plan: AggPlan): [slot: number, least: number][] {
  const floors = new Map<number, number>();
  const raise = (slot: number, least: number) => {
    if (least >= 2 && least > (floors.get(slot) ?? 0)) floors.set(slot, least);
  };
  const visit = (h: HavingExpr) => {
    if (h.op === 'and') for (const a of h.args) visit(a);
    if (h.op !== 'cmp' || !Number.isFinite(h.value)) return;
    const i = plan.metrics.findIndex((m) => m.name === h.metric);
    if (i < 0 || plan.metrics[i]!.fn !== 'count') return;
    const least =
      h.cmp === '>=' || h.cmp === '==' ? Math.ceil(h.value) : h.cmp === '>' ? Math.floor(h.value) + 1 : 0;
    const where = plan.refs[i]!.where;
    raise(where === undefined ? 0 : where + 1, least);
    raise(0, least); // count(where) >= T needs T events
  };
  visit(having);
  raise(0, minEvents(having, plan.metrics, new Set()));
  return [...floors];
}

/**
 * The partials path: cells from partials where they cover the range (raw elsewhere), windows
 * with sketched values that may fire re-read raw. Undefined when no day of the range is covered
 * (then the raw path runs, pruning included).
 */
export async function thresholdFromPartials(
  run: Run,
  rule: ThresholdRule,
  query: Query,
  range: TimeRange,
  source: PartialsSource,
): Promise<Detection[] | undefined> {
  const tp = thresholdPlan(rule);
  const req = {
    key: partialRuleKey(rule),
    plan: tp.plan,
    groupBy: tp.groupBy,
    bucketMs: tp.bucketMs,
    query,
    read: range,
    needed: valuesNeeded(rule, tp, range),
    prune: { floors: countFloors(rule.threshold.having, tp.plan), windowMs: tp.windowMs },
  };
  const read = await readCells(run, source, req);
  if (!read) return undefined;
  const per = Math.round(tp.windowMs / tp.bucketMs);
  await rereadInexact(run, req, read, rule.threshold.having, tp.windowMs, (t) => [
    ...windowStarts([t], per, tp.bucketMs, tp.windowMs, range),
  ]);
  run.partials = read.use;
  return thresholdDetections(run, rule, tp, query, thresholdHits(rule, tp, read.groups, range));
}
