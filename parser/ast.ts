/**
 * AST of the rule language: what the source says, with positions, before name resolution.
 * Macros and lists are still references here; ./lower.ts resolves them into the IR.
 * Every node has `pos`; `stripPositions` removes them (and comments) for structural
 * comparison, e.g. in the `parse(format(x)) == parse(x)` round-trip tests.
 */

/** 1-based line and column of the first character, and of the last character. */
export interface Pos {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export interface Str {
  value: string;
  pos: Pos;
}
export interface Num {
  value: number;
  pos: Pos;
}
export interface Name {
  name: string;
  pos: Pos;
}
export interface Dur {
  ms: number;
  pos: Pos;
}

export type LiteralValue = string | number | boolean;
export interface Literal {
  value: LiteralValue;
  pos: Pos;
}

export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

/** Values for `in`, `like`, `contains`...: inline literals or a named list. */
export type ValueSource =
  | { kind: 'values'; values: Literal[]; pos: Pos }
  | { kind: 'list'; name: Name; pos: Pos };

export type StrOp = 'like' | 'contains' | 'startswith' | 'endswith';

export type Filter =
  | { type: 'and' | 'or'; args: Filter[]; pos: Pos }
  | { type: 'not'; arg: Filter; pos: Pos }
  | { type: 'true'; pos: Pos }
  | { type: 'ref'; name: Name; pos: Pos }
  | { type: 'cmp'; field: Name; op: CmpOp; value: Literal; pos: Pos }
  | { type: 'in'; field: Name; negated: boolean; source: ValueSource; pos: Pos }
  | { type: StrOp; field: Name; source: ValueSource; nocase: boolean; pos: Pos }
  | { type: 'matches'; field: Name; pattern: string; flags: string; pos: Pos }
  | { type: 'cidr'; field: Name; source: ValueSource; pos: Pos }
  | { type: 'exists'; field: Name; pos: Pos };

/** Argument of an aggregate call: a number or a filter (a bare name may be a field or a macro). */
export type MetricArg =
  | { kind: 'number'; value: number; pos: Pos }
  | { kind: 'filter'; filter: Filter; pos: Pos };

export interface MetricDecl {
  name: Name;
  fn: Name;
  args: MetricArg[];
  pos: Pos;
}

export type Having =
  | { type: 'and' | 'or'; args: Having[]; pos: Pos }
  | { type: 'not'; arg: Having; pos: Pos }
  | { type: 'cmp'; metric: Name; op: CmpOp; value: Num; pos: Pos }
  | { type: 'cmp_metric'; metric: Name; op: CmpOp; other: Name; pos: Pos };

export interface WindowDecl {
  size: Dur;
  /** Absent: tumbling by default; `tumbling` written explicitly is kept for printing. */
  mode: 'default' | 'tumbling' | 'sliding';
  slide?: Dur;
  pos: Pos;
}

/** Items of a block keep source order and their leading comments (for the formatter). */
interface ItemBase {
  pos: Pos;
  comments: string[];
}

export type ThresholdItem = ItemBase &
  (
    | { kind: 'group_by'; fields: Name[] }
    | { kind: 'window'; window: WindowDecl }
    | { kind: 'metric'; metric: MetricDecl }
    | { kind: 'having'; having: Having }
  );

export interface StepDecl {
  name: Name;
  absent: boolean;
  filter: Filter;
  /** `repeat >= n` (max undefined, atLeast true), `repeat n` (max = min), `repeat n..m`. */
  repeat?: { min: Num; max?: Num; atLeast: boolean };
}

export type SequenceItem = ItemBase &
  (
    | { kind: 'by'; fields: Name[] }
    | { kind: 'within'; span: Dur }
    | { kind: 'step'; step: StepDecl }
    | { kind: 'until'; filter: Filter }
  );

export type FirstSeenItem = ItemBase &
  (
    | { kind: 'values'; fields: Name[] }
    | { kind: 'by'; fields: Name[] }
    | { kind: 'history'; history: Dur }
    | { kind: 'ignore_new_groups' }
  );

export type BaselineItem = ItemBase &
  (
    | { kind: 'group_by'; fields: Name[] }
    | { kind: 'window'; window: WindowDecl }
    | { kind: 'metric'; metric: MetricDecl }
    | { kind: 'history'; history: Dur }
    | { kind: 'spike'; spike: 'ratio' | 'stddev'; min: Num }
    | { kind: 'min_buckets'; count: Num }
    | { kind: 'having'; having: Having }
  );

export interface EntityDecl {
  role: Name;
  field: Name;
}

export type IncidentItem = ItemBase &
  (
    | { kind: 'title' | 'summary'; text: Str }
    | { kind: 'entities'; entities: EntityDecl[] }
    | { kind: 'suppress'; by?: Name[]; period: Dur }
    | { kind: 'evidence'; sample: Num; fields?: Name[] }
    | { kind: 'invalid'; key: string }
  );

export type Clause = ItemBase &
  (
    | { kind: 'title' | 'description' | 'owner'; text: Str }
    | { kind: 'severity'; severity: Name }
    | { kind: 'risk'; risk: Num }
    | { kind: 'tags'; tags: Str[] }
    | { kind: 'enabled'; enabled: boolean }
    | { kind: 'schedule'; entries: { key: 'every' | 'lookback' | 'lateness'; value: Dur }[] }
    | { kind: 'correlate'; within: Dur }
    | { kind: 'where'; filter: Filter }
    | { kind: 'threshold'; items: ThresholdItem[]; trailing: string[] }
    | { kind: 'sequence'; items: SequenceItem[]; trailing: string[] }
    | { kind: 'first_seen'; items: FirstSeenItem[]; trailing: string[] }
    | { kind: 'baseline'; items: BaselineItem[]; trailing: string[] }
    | { kind: 'incident'; items: IncidentItem[]; trailing: string[] }
    | { kind: 'invalid'; key: string }
  );

export interface RuleDecl {
  kind: 'rule';
  id: Name;
  clauses: Clause[];
  /** Comments before the closing brace. */
  trailing: string[];
  pos: Pos;
  comments: string[];
}

export interface IncludeDecl {
  kind: 'include';
  path: Str;
  pos: Pos;
  comments: string[];
}

export interface ListDecl {
  kind: 'list';
  name: Name;
  source: { kind: 'file'; path: Str } | { kind: 'inline'; values: Literal[] };
  pos: Pos;
  comments: string[];
}

export interface MacroDecl {
  kind: 'macro';
  name: Name;
  filter: Filter;
  pos: Pos;
  comments: string[];
}

export type Decl = IncludeDecl | ListDecl | MacroDecl | RuleDecl;

export interface FileAst {
  decls: Decl[];
  /** Comments after the last declaration. */
  trailing: string[];
}

/** A deep copy without `pos` and `comments`/`trailing` keys: the structure only. */
export function stripPositions<T>(node: T): unknown {
  if (Array.isArray(node)) return node.map((n) => stripPositions(n));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if (k === 'pos' || k === 'comments' || k === 'trailing') continue;
    if (v === undefined) continue;
    out[k] = stripPositions(v);
  }
  return out;
}
