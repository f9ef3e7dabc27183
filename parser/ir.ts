/**
 * The rule IR: the contract between the rule language and the detection engine.
 *
 * Plain JSON-serialisable data, fully resolved: macros expanded, named lists replaced by
 * their values, durations in milliseconds, regular expressions as RE2 source strings that
 * re2js has compiled, CIDRs as strings validated by ipaddr.js. Nothing here depends on
 * Elasticsearch. The semantics of every construct (window boundaries, sequence matching,
 * missing fields, multi-valued fields) are defined in docs/rule-language.md, section
 * "Semantics"; an Elasticsearch compiler and an in-process evaluator must agree on them.
 */

export const IR_VERSION = 1;

export type Severity = 'low' | 'medium' | 'high' | 'critical';
export type Scalar = string | number | boolean;
export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

/**
 * Event predicate. A predicate on a field the event lacks is false, except `!=` and negations,
 * which are plain boolean negations (`a != 1` is `not (a == 1)`, true when `a` is missing).
 * On multi-valued fields a predicate holds when any value satisfies it.
 */
export type FilterExpr =
  | { op: 'and' | 'or'; args: FilterExpr[] }
  | { op: 'not'; arg: FilterExpr }
  | { op: 'true' }
  | { op: 'cmp'; field: string; cmp: CmpOp; value: Scalar }
  | { op: 'in'; field: string; values: Scalar[] }
  /** Whole-value glob: `*` any run of characters (including none), `?` one character, `\` escapes. */
  | { op: 'wildcard'; field: string; pattern: string; caseInsensitive: boolean }
  | { op: 'contains' | 'startswith' | 'endswith'; field: string; value: string; caseInsensitive: boolean }
  /** RE2 syntax, unanchored (matches anywhere in the value); flags folded in as `(?i)` etc. */
  | { op: 'regex'; field: string; pattern: string }
  /** IPv4/IPv6 CIDRs in canonical form (a bare address becomes /32 or /128). */
  | { op: 'cidr'; field: string; cidrs: string[] }
  | { op: 'exists'; field: string };

export type Metric =
  /** Events in the group and window; with `where`, only those matching it. */
  | { name: string; fn: 'count'; where?: FilterExpr }
  /** Exact number of distinct non-missing values. */
  | { name: string; fn: 'distinct_count'; field: string }
  | { name: string; fn: 'sum' | 'avg' | 'min' | 'max'; field: string }
  /** Linear interpolation between closest ranks (R-7 / NumPy "linear"); p in (0, 100]. */
  | { name: string; fn: 'percentile'; field: string; p: number }
  /** count(where) / count(of) (of absent: all events of the group); null when the denominator is 0. */
  | { name: string; fn: 'ratio'; where: FilterExpr; of?: FilterExpr };

/** Boolean condition over metric values; any comparison involving null is false. */
export type HavingExpr =
  | { op: 'and' | 'or'; args: HavingExpr[] }
  | { op: 'not'; arg: HavingExpr }
  | { op: 'cmp'; metric: string; cmp: CmpOp; value: number }
  | { op: 'cmp_metric'; metric: string; cmp: CmpOp; other: string };

/**
 * Half-open windows [start, start + sizeMs) on event time (`@timestamp`, epoch ms, UTC).
 * tumbling: start = k * sizeMs. sliding: start = k * slideMs (sizeMs is a multiple of slideMs).
 */
export interface WindowSpec {
  sizeMs: number;
  mode: 'tumbling' | 'sliding';
  slideMs?: number;
}

export interface Schedule {
  intervalMs: number;
  lookbackMs: number;
  latenessMs: number;
}

export type TemplatePart = { text: string } | { ref: string; kind: 'field' | 'metric' | 'builtin' };

export interface Template {
  /** The template as written, e.g. "Credential stuffing from {source.ip}". */
  source: string;
  parts: TemplatePart[];
}

export type { EntityRole } from '../core/schema/entity-roles.ts';

import type { EntityRole } from '../core/schema/entity-roles.ts';

export interface Output {
  title: Template;
  summary: Template;
  entities: { role: EntityRole; field: string }[];
  suppress?: { keyFields: string[]; periodMs: number };
  evidence: { sampleSize: number; fields?: string[] };
}

/**
 * Records of one request from several logs (a WAF's verdict and the gateway's answer, a CDN's
 * and a load balancer's line) are one event before the rule looks at them: the same
 * `http.request.id` when both carry one, else the same client address, method and path within
 * `withinMs` of each other. Each field comes from the first record that has it, request records
 * before WAF verdicts (docs/rule-language.md, "Correlating requests across logs").
 */
export interface Correlation {
  withinMs: number;
}

interface RuleBase {
  irVersion: typeof IR_VERSION;
  id: string;
  /** First 16 hex digits of SHA-256 over the canonical JSON of the rule minus `version` and `source`. */
  version: string;
  title: string;
  description: string;
  severity: Severity;
  /** 0-100; defaults from severity: low 21, medium 47, high 73, critical 99. */
  risk: number;
  tags: string[];
  owner?: string;
  enabled: boolean;
  schedule: Schedule;
  /** Merge the records of one request from several logs before the rule sees them. */
  correlate?: Correlation;
  /** Events the rule looks at (`where`); `{op:'true'}` when absent. */
  filter: FilterExpr;
  output: Output;
  source: { file: string; line: number };
}

export interface FilterRule extends RuleBase {
  kind: 'filter';
}

export interface ThresholdRule extends RuleBase {
  kind: 'threshold';
  threshold: {
    groupBy: string[];
    window: WindowSpec;
    metrics: Metric[];
    having: HavingExpr;
  };
}

export interface SequenceStep {
  name: string;
  filter: FilterExpr;
  /** Non-absent steps: at least minCount matching events (maxCount: at most, see docs). */
  minCount: number;
  maxCount?: number;
  /** No matching event may occur in the gap this step stands for. */
  absent: boolean;
}

export interface SequenceRule extends RuleBase {
  kind: 'sequence';
  sequence: {
    by: string[];
    maxSpanMs: number;
    steps: SequenceStep[];
    until?: FilterExpr;
  };
}

export interface FirstSeenRule extends RuleBase {
  kind: 'first_seen';
  firstSeen: {
    /** The tuple whose newness is tested (together with groupBy). */
    fields: string[];
    historyMs: number;
    groupBy: string[];
    /** Only alert for groups that were themselves seen in the history. */
    ignoreNewGroups: boolean;
  };
}

export interface BaselineRule extends RuleBase {
  kind: 'baseline';
  baseline: {
    groupBy: string[];
    metric: Metric;
    /** Tumbling buckets of windowMs, aligned to epoch multiples. */
    windowMs: number;
    historyMs: number;
    comparison: { kind: 'ratio'; min: number } | { kind: 'stddev'; min: number };
    minHistoryBuckets: number;
    /** Extra absolute condition on the current value (metric name = baseline metric). */
    having?: HavingExpr;
  };
}

export type RuleIR = FilterRule | ThresholdRule | SequenceRule | FirstSeenRule | BaselineRule;
export type RuleKind = RuleIR['kind'];
