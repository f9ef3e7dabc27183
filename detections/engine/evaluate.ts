/**
 * The in-process evaluator: a rule over an array of events. Used by rule tests, API previews
 * and the embedded (zero-server) mode, and as the reference the Elasticsearch backend is
 * tested against. Semantics: docs/rule-language.md "Semantics" and ./SEMANTICS.md.
 *
 * `range` is the evaluation range: filter and first_seen rules evaluate events in it,
 * threshold and baseline rules the windows entirely inside it, sequence rules read it (and
 * decide trailing absence up to its end). first_seen and baseline rules also read the
 * history before `range.start` from `events`.
 *
 * Each rule kind's evaluator entry lives with the rest of that kind in ./kinds/; the shared
 * machinery (prepared events, the Bucketizer) in ./in-process.ts.
 */

import { getField } from '../../core/schema/catalogue.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { BaselineRule, RuleIR, ThresholdRule } from '../../parser/ir.ts';
import { baselineWindows, buildPlan, thresholdWindows } from './aggregate.ts';
import { mergeRequests, relaxForCorrelation } from './correlate.ts';
import { compileFilter, type SharedFilters } from './filter.ts';
import {
  Bucketizer,
  type EvaluateOptions,
  type PreparedEvents,
  prepareEvents,
  windowDetection,
} from './in-process.ts';
import { baselineBuiltins, evaluateBaseline } from './kinds/baseline.ts';
import { evaluateFilter } from './kinds/filter.ts';
import { evaluateFirstSeen } from './kinds/first-seen.ts';
import { evaluateSequence } from './kinds/sequence.ts';
import { evaluateThreshold } from './kinds/threshold.ts';
import { sortDetections } from './render.ts';
import { compileSequence } from './sequence.ts';
import type { Detection, EvaluationResult, TimeRange } from './types.ts';
import { accessor, isNestedPath } from './values.ts';

export { compileFilter } from './filter.ts';
export {
  type EvaluateOptions,
  keyGetters,
  keyTuples,
  type PreparedEvents,
  prepareEvents,
  ruleFields,
  windowDetection,
} from './in-process.ts';
export { baselineBuiltins } from './kinds/baseline.ts';
export { firstSeenDetection } from './kinds/first-seen.ts';
export { runSequence } from './kinds/sequence.ts';

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
      result = { detections: evaluateFilter(rule, p, range) };
      break;
    case 'threshold':
      result = evaluateThreshold(rule, p, range, opts);
      break;
    case 'baseline':
      result = evaluateBaseline(rule, p, range, opts);
      break;
    case 'first_seen':
      result = { detections: evaluateFirstSeen(rule, p, range) };
      break;
    case 'sequence':
      result = { detections: evaluateSequence(rule, p, range, opts) };
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
