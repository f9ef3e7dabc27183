/**
 * Tokens of the Gatewatch rule language (`.gwr`).
 *
 * Keywords are "soft": each keyword token also belongs to the `Identifier` category, so a
 * field, macro, metric or step may be called `count`, `window` or `title`. Only the
 * operators of the filter language (`and`, `or`, `not`, `in`, `true`, `false`) are
 * reserved, because they decide the shape of an expression.
 */
import { createToken, Lexer, type TokenType } from 'chevrotain';

export const WhiteSpace = createToken({
  name: 'WhiteSpace',
  pattern: /[ \t\r\n\f\uFEFF]+/,
  group: Lexer.SKIPPED,
});
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n\r]*/, group: 'comments' });

/** JSON string syntax exactly, so `JSON.parse(image)` decodes it and never throws. */
export const StringLit = createToken({
  name: 'StringLit',
  pattern: /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/,
});
/** `/re2 pattern/flags`; `\/` inside stands for a slash. */
export const RegexLit = createToken({ name: 'RegexLit', pattern: /\/(?:[^/\\\r\n]|\\[^\r\n])+\/[a-z]*/ });
export const Duration = createToken({ name: 'Duration', pattern: /\d+(?:ms|s|m|h|d|w)(?![A-Za-z0-9_])/ });
export const NumberLit = createToken({
  name: 'NumberLit',
  pattern: /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![A-Za-z_])/,
});
export const Identifier = createToken({
  name: 'Identifier',
  pattern: /@?[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*(?:\.[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*)*/,
});

const hard = (name: string, word: string): TokenType =>
  createToken({ name, pattern: new RegExp(word), longer_alt: Identifier });
const soft = (name: string, word: string): TokenType =>
  createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, categories: [Identifier] });

// Reserved words of the filter language.
export const And = hard('And', 'and');
export const Or = hard('Or', 'or');
export const Not = hard('Not', 'not');
export const In = hard('In', 'in');
export const True = hard('True', 'true');
export const False = hard('False', 'false');

// Soft keywords (usable as names).
export const Include = soft('Include', 'include');
export const ListKw = soft('ListKw', 'list');
export const FileKw = soft('FileKw', 'file');
export const Macro = soft('Macro', 'macro');
export const Rule = soft('Rule', 'rule');
export const Title = soft('Title', 'title');
export const Description = soft('Description', 'description');
export const Severity = soft('Severity', 'severity');
export const Risk = soft('Risk', 'risk');
export const Tags = soft('Tags', 'tags');
export const Owner = soft('Owner', 'owner');
export const Enabled = soft('Enabled', 'enabled');
export const Schedule = soft('Schedule', 'schedule');
export const Correlate = soft('Correlate', 'correlate');
export const Requests = soft('Requests', 'requests');
export const Every = soft('Every', 'every');
export const Lookback = soft('Lookback', 'lookback');
export const Lateness = soft('Lateness', 'lateness');
export const Where = soft('Where', 'where');
export const Threshold = soft('Threshold', 'threshold');
export const Sequence = soft('Sequence', 'sequence');
export const FirstSeen = soft('FirstSeen', 'first_seen');
export const Baseline = soft('Baseline', 'baseline');
export const Group = soft('Group', 'group');
export const By = soft('By', 'by');
export const Window = soft('Window', 'window');
export const Tumbling = soft('Tumbling', 'tumbling');
export const Sliding = soft('Sliding', 'sliding');
export const Metric = soft('Metric', 'metric');
export const Having = soft('Having', 'having');
export const Within = soft('Within', 'within');
export const Step = soft('Step', 'step');
export const Absent = soft('Absent', 'absent');
export const Repeat = soft('Repeat', 'repeat');
export const Until = soft('Until', 'until');
export const Values = soft('Values', 'values');
export const History = soft('History', 'history');
export const Ignore = soft('Ignore', 'ignore');
export const New = soft('New', 'new');
export const Groups = soft('Groups', 'groups');
export const Spike = soft('Spike', 'spike');
export const Ratio = soft('Ratio', 'ratio');
export const Stddev = soft('Stddev', 'stddev');
export const MinBuckets = soft('MinBuckets', 'min_buckets');
export const Incident = soft('Incident', 'incident');
export const Summary = soft('Summary', 'summary');
export const Entities = soft('Entities', 'entities');
export const Suppress = soft('Suppress', 'suppress');
export const For = soft('For', 'for');
export const Evidence = soft('Evidence', 'evidence');
export const Fields = soft('Fields', 'fields');
export const Like = soft('Like', 'like');
export const Contains = soft('Contains', 'contains');
export const StartsWith = soft('StartsWith', 'startswith');
export const EndsWith = soft('EndsWith', 'endswith');
export const Matches = soft('Matches', 'matches');
export const Cidr = soft('Cidr', 'cidr');
export const Exists = soft('Exists', 'exists');
export const Nocase = soft('Nocase', 'nocase');

export const EqEq = createToken({ name: 'EqEq', pattern: /==/ });
export const NotEq = createToken({ name: 'NotEq', pattern: /!=/ });
export const LtEq = createToken({ name: 'LtEq', pattern: /<=/ });
export const GtEq = createToken({ name: 'GtEq', pattern: />=/ });
export const Lt = createToken({ name: 'Lt', pattern: /</ });
export const Gt = createToken({ name: 'Gt', pattern: />/ });
export const Equals = createToken({ name: 'Equals', pattern: /=/ });
export const DotDot = createToken({ name: 'DotDot', pattern: /\.\./ });
export const LCurly = createToken({ name: 'LCurly', pattern: /\{/ });
export const RCurly = createToken({ name: 'RCurly', pattern: /\}/ });
export const LParen = createToken({ name: 'LParen', pattern: /\(/ });
export const RParen = createToken({ name: 'RParen', pattern: /\)/ });
export const LBracket = createToken({ name: 'LBracket', pattern: /\[/ });
export const RBracket = createToken({ name: 'RBracket', pattern: /\]/ });
export const Comma = createToken({ name: 'Comma', pattern: /,/ });
export const Colon = createToken({ name: 'Colon', pattern: /:/ });

/** All keywords. */
const keywords: TokenType[] = [
  And,
  Or,
  Not,
  In,
  True,
  False,
  Include,
  ListKw,
  FileKw,
  Macro,
  Rule,
  Title,
  Description,
  Severity,
  Risk,
  Tags,
  Owner,
  Enabled,
  Schedule,
  Correlate,
  Requests,
  Every,
  Lookback,
  Lateness,
  Where,
  Threshold,
  Sequence,
  FirstSeen,
  Baseline,
  Groups,
  Group,
  By,
  Window,
  Tumbling,
  Sliding,
  Metric,
  Having,
  Within,
  Step,
  Absent,
  Repeat,
  Until,
  Values,
  History,
  Ignore,
  New,
  Spike,
  Ratio,
  Stddev,
  MinBuckets,
  Incident,
  Summary,
  Entities,
  Suppress,
  For,
  Evidence,
  Fields,
  Like,
  Contains,
  StartsWith,
  EndsWith,
  Matches,
  Cidr,
  Exists,
  Nocase,
];

// A keyword that is a prefix of another (`in` / `include`) must be tried after it.
const byLength = [...keywords].sort((a, b) => String(b.PATTERN).length - String(a.PATTERN).length);

export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  StringLit,
  RegexLit,
  Duration,
  NumberLit,
  ...byLength,
  Identifier,
  EqEq,
  NotEq,
  LtEq,
  GtEq,
  Lt,
  Gt,
  Equals,
  DotDot,
  LCurly,
  RCurly,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
];

/**
 * The lexer. Chevrotain's checks of the token definitions run in the tests
 * (parser/grammar-checks.test.ts builds it with them); skipped here, they would cost every
 * `gatewatch` command that parses rules ~15 ms of start-up.
 */
export const makeLexer = (validate = false) =>
  new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false, skipValidations: !validate });

export const lexer = makeLexer();

/** Words the formatter must not print as bare names where a keyword would be read instead. */
export const RESERVED_WORDS: ReadonlySet<string> = new Set(['and', 'or', 'not', 'in', 'true', 'false']);

/** Duration units in milliseconds. */
export const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export function parseDuration(image: string): number {
  const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(image);
  if (!m) return Number.NaN;
  return Number(m[1]) * (DURATION_UNITS[m[2]!] ?? Number.NaN);
}

/** Canonical text of a duration: the largest unit that divides it exactly. */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit]!;
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
