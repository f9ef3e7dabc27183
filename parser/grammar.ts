/**
 * Chevrotain grammar of the rule language. Produces a CST with error recovery; the visitor
 * in ./visitor.ts turns it into the AST of ./ast.ts. One parser instance is reused (the
 * self-analysis is costly), so `parseCst` is not re-entrant: do not call it from within a
 * grammar action.
 */
import {
  type CstNode,
  CstParser,
  EOF,
  type IParserErrorMessageProvider,
  type IRecognitionException,
  type IToken,
  type TokenType,
} from 'chevrotain';
import * as T from './lexer.ts';

const LABELS: Record<string, string> = {
  StringLit: 'a string',
  NumberLit: 'a number',
  Duration: 'a duration such as `5m`',
  RegexLit: 'a regular expression such as `/^abc/`',
  Identifier: 'a name',
  EqEq: '`==`',
  NotEq: '`!=`',
  LtEq: '`<=`',
  GtEq: '`>=`',
  Lt: '`<`',
  Gt: '`>`',
  Equals: '`=`',
  DotDot: '`..`',
  LCurly: '`{`',
  RCurly: '`}`',
  LParen: '`(`',
  RParen: '`)`',
  LBracket: '`[`',
  RBracket: '`]`',
  Comma: '`,`',
  Colon: '`:`',
};

export function tokenLabel(t: TokenType): string {
  if (t === EOF) return 'end of input';
  const l = LABELS[t.name];
  if (l) return l;
  return `\`${String(t.PATTERN).replace(/^\/|\/$/g, '')}\``;
}

const CONTEXT: Record<string, string> = {
  file: 'a declaration (`rule`, `macro`, `list` or `include`)',
  ruleClause: 'a rule clause',
  textClause: 'a clause',
  thresholdItem: 'a threshold clause (`group by`, `window`, `metric`, `having`)',
  sequenceItem: 'a sequence clause (`by`, `within`, `step`, `until`)',
  firstSeenItem: 'a first_seen clause (`values`, `by`, `history`, `ignore new groups`)',
  baselineItem:
    'a baseline clause (`group by`, `window`, `metric`, `history`, `spike`, `min_buckets`, `having`)',
  incidentItem: 'an incident clause (`title`, `summary`, `entities`, `suppress`, `evidence`)',
  predicate: 'a condition (`==`, `!=`, `<`, `in`, `like`, `contains`, `matches`, `cidr`, `exists`...)',
  primary: 'a filter (a field condition, a macro name, `not`, `(` or `true`)',
  notExpr: 'a filter (a field condition, a macro name, `not`, `(` or `true`)',
  literal: 'a value (string, number, true or false)',
  valueSource: 'a value, `(values...)` or `list name`',
  havingUnary: 'a metric comparison',
  cmpOp: 'a comparison operator',
};

/** What may come before the closing brace of each block. */
const BLOCK_CLOSE: Record<string, string> = {
  ruleDecl: 'a rule clause',
  thresholdBlock: 'a threshold clause',
  sequenceBlock: 'a sequence clause',
  firstSeenBlock: 'a first_seen clause',
  baselineBlock: 'a baseline clause',
  incidentBlock: 'an incident clause',
};

/** Keywords that start a clause in each block, for "did you mean" on misspellings. */
export const CLAUSE_KEYWORDS: Record<string, string[]> = {
  'a rule clause': [
    'title',
    'description',
    'severity',
    'risk',
    'tags',
    'owner',
    'enabled',
    'schedule',
    'correlate',
    'where',
    'threshold',
    'sequence',
    'first_seen',
    'baseline',
    'incident',
  ],
  'a threshold clause': ['group', 'window', 'metric', 'having'],
  'a sequence clause': ['by', 'within', 'step', 'until'],
  'a first_seen clause': ['values', 'by', 'history', 'ignore'],
  'a baseline clause': ['group', 'window', 'metric', 'history', 'spike', 'min_buckets', 'having'],
  'an incident clause': ['title', 'summary', 'entities', 'suppress', 'evidence'],
};

function found(actual: IToken | undefined): string {
  if (!actual || actual.tokenType === EOF) return 'end of input';
  return `\`${actual.image}\``;
}

function firstTokens(paths: TokenType[][]): string[] {
  const seen = new Set<string>();
  for (const p of paths) if (p[0]) seen.add(tokenLabel(p[0]));
  return [...seen];
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual, ruleName }) {
    const block = BLOCK_CLOSE[ruleName];
    if (expected === T.RCurly && block) return `expected ${block} or \`}\` but found ${found(actual)}`;
    return `expected ${tokenLabel(expected)} but found ${found(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `unexpected ${found(firstRedundant)}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const ctx = CONTEXT[ruleName];
    if (ctx) return `expected ${ctx} but found ${found(actual[0])}`;
    const options = firstTokens(expectedPathsPerAlt.flat());
    return `expected ${options.slice(0, 8).join(', ')}${options.length > 8 ? ', ...' : ''} but found ${found(actual[0])}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, ruleName }) {
    const ctx = CONTEXT[ruleName];
    if (ctx) return `expected ${ctx} but found ${found(actual[0])}`;
    return `expected ${firstTokens(expectedIterationPaths).join(', ')} but found ${found(actual[0])}`;
  },
};

export class RuleGrammar extends CstParser {
  /**
   * `validate`: run Chevrotain's grammar checks (ambiguities, left recursion …) in the
   * self-analysis; the tests do (parser/grammar-checks.test.ts), the shared instance skips them
   * to start ~15 ms sooner.
   */
  constructor(validate = false) {
    super(T.allTokens, {
      skipValidations: !validate,
      recoveryEnabled: true,
      maxLookahead: 3,
      nodeLocationTracking: 'full',
      errorMessageProvider: messages,
    });
    this.performSelfAnalysis();
  }

  file = this.RULE('file', () => {
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.includeDecl) },
        { ALT: () => this.SUBRULE(this.listDecl) },
        { ALT: () => this.SUBRULE(this.macroDecl) },
        { ALT: () => this.SUBRULE(this.ruleDecl) },
      ]),
    );
  });

  includeDecl = this.RULE('includeDecl', () => {
    this.CONSUME(T.Include);
    this.CONSUME(T.StringLit);
  });

  listDecl = this.RULE('listDecl', () => {
    this.CONSUME(T.ListKw);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.FileKw);
          this.CONSUME(T.LParen);
          this.CONSUME(T.StringLit, { LABEL: 'path' });
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LBracket);
          this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.literal) });
          this.CONSUME(T.RBracket);
        },
      },
    ]);
  });

  macroDecl = this.RULE('macroDecl', () => {
    this.CONSUME(T.Macro);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.orExpr);
  });

  ruleDecl = this.RULE('ruleDecl', () => {
    this.CONSUME(T.Rule);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.ruleClause));
    this.CONSUME(T.RCurly);
  });

  ruleClause = this.RULE('ruleClause', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.textClause) },
      {
        ALT: () => {
          this.CONSUME(T.Severity);
          this.CONSUME(T.Identifier, { LABEL: 'severity' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Risk);
          this.CONSUME(T.NumberLit, { LABEL: 'risk' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Tags);
          this.CONSUME(T.LBracket);
          this.MANY_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.StringLit, { LABEL: 'tag' }) });
          this.CONSUME(T.RBracket);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Enabled);
          this.SUBRULE(this.boolLit);
        },
      },
      { ALT: () => this.SUBRULE(this.scheduleClause) },
      {
        ALT: () => {
          this.CONSUME(T.Correlate);
          this.CONSUME(T.Requests);
          this.CONSUME(T.Within);
          this.CONSUME(T.Duration, { LABEL: 'tolerance' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Where);
          this.SUBRULE(this.orExpr);
        },
      },
      { ALT: () => this.SUBRULE(this.thresholdBlock) },
      { ALT: () => this.SUBRULE(this.sequenceBlock) },
      { ALT: () => this.SUBRULE(this.firstSeenBlock) },
      { ALT: () => this.SUBRULE(this.baselineBlock) },
      { ALT: () => this.SUBRULE(this.incidentBlock) },
    ]);
  });

  /** title / description / owner / summary "text". */
  textClause = this.RULE('textClause', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Title, { LABEL: 'key' }) },
      { ALT: () => this.CONSUME(T.Description, { LABEL: 'key' }) },
      { ALT: () => this.CONSUME(T.Owner, { LABEL: 'key' }) },
      { ALT: () => this.CONSUME(T.Summary, { LABEL: 'key' }) },
    ]);
    this.CONSUME(T.StringLit, { LABEL: 'text' });
  });

  scheduleClause = this.RULE('scheduleClause', () => {
    this.CONSUME(T.Schedule);
    this.AT_LEAST_ONE(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Every, { LABEL: 'key' }) },
        { ALT: () => this.CONSUME(T.Lookback, { LABEL: 'key' }) },
        { ALT: () => this.CONSUME(T.Lateness, { LABEL: 'key' }) },
      ]);
      this.CONSUME(T.Duration, { LABEL: 'value' });
    });
  });

  thresholdBlock = this.RULE('thresholdBlock', () => {
    this.CONSUME(T.Threshold);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.thresholdItem));
    this.CONSUME(T.RCurly);
  });

  thresholdItem = this.RULE('thresholdItem', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.groupByClause) },
      { ALT: () => this.SUBRULE(this.windowClause) },
      { ALT: () => this.SUBRULE(this.metricClause) },
      { ALT: () => this.SUBRULE(this.havingClause) },
    ]);
  });

  groupByClause = this.RULE('groupByClause', () => {
    this.CONSUME(T.Group);
    this.CONSUME(T.By);
    this.SUBRULE(this.fieldList);
  });

  fieldList = this.RULE('fieldList', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier, { LABEL: 'field' }) });
  });

  windowClause = this.RULE('windowClause', () => {
    this.CONSUME(T.Window);
    this.CONSUME(T.Duration, { LABEL: 'size' });
    this.OPTION(() =>
      this.OR([
        { ALT: () => this.CONSUME(T.Tumbling) },
        {
          ALT: () => {
            this.CONSUME(T.Sliding);
            this.CONSUME(T.Every);
            this.CONSUME2(T.Duration, { LABEL: 'slide' });
          },
        },
      ]),
    );
  });

  metricClause = this.RULE('metricClause', () => {
    this.CONSUME(T.Metric);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.CONSUME2(T.Identifier, { LABEL: 'fn' });
    this.CONSUME(T.LParen);
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () =>
        this.OR([
          { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'num' }) },
          { ALT: () => this.SUBRULE(this.orExpr) },
        ]),
    });
    this.CONSUME(T.RParen);
  });

  havingClause = this.RULE('havingClause', () => {
    this.CONSUME(T.Having);
    this.SUBRULE(this.havingOr);
  });

  havingOr = this.RULE('havingOr', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Or, DEF: () => this.SUBRULE(this.havingAnd) });
  });

  havingAnd = this.RULE('havingAnd', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.And, DEF: () => this.SUBRULE(this.havingUnary) });
  });

  havingUnary = this.RULE('havingUnary', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Not);
          this.SUBRULE(this.havingUnary);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.havingOr);
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Identifier, { LABEL: 'metric' });
          this.SUBRULE(this.cmpOp);
          this.OR2([
            { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'num' }) },
            { ALT: () => this.CONSUME2(T.Identifier, { LABEL: 'other' }) },
          ]);
        },
      },
    ]);
  });

  cmpOp = this.RULE('cmpOp', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.EqEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.NotEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.LtEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.GtEq, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.Lt, { LABEL: 'op' }) },
      { ALT: () => this.CONSUME(T.Gt, { LABEL: 'op' }) },
    ]);
  });

  sequenceBlock = this.RULE('sequenceBlock', () => {
    this.CONSUME(T.Sequence);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.sequenceItem));
    this.CONSUME(T.RCurly);
  });

  sequenceItem = this.RULE('sequenceItem', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.By);
          this.SUBRULE(this.fieldList);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Within);
          this.CONSUME(T.Duration, { LABEL: 'within' });
        },
      },
      { ALT: () => this.SUBRULE(this.stepClause) },
      {
        ALT: () => {
          this.CONSUME(T.Until);
          this.SUBRULE(this.orExpr);
        },
      },
    ]);
  });

  stepClause = this.RULE('stepClause', () => {
    this.CONSUME(T.Step);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.Equals);
    this.OPTION(() => this.CONSUME(T.Absent));
    this.SUBRULE(this.orExpr);
    this.OPTION2(() => {
      this.CONSUME(T.Repeat);
      this.OR([
        {
          ALT: () => {
            this.CONSUME(T.GtEq);
            this.CONSUME(T.NumberLit, { LABEL: 'min' });
          },
        },
        {
          ALT: () => {
            this.CONSUME2(T.NumberLit, { LABEL: 'min' });
            this.OPTION3(() => {
              this.CONSUME(T.DotDot);
              this.CONSUME3(T.NumberLit, { LABEL: 'max' });
            });
          },
        },
      ]);
    });
  });

  firstSeenBlock = this.RULE('firstSeenBlock', () => {
    this.CONSUME(T.FirstSeen);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.firstSeenItem));
    this.CONSUME(T.RCurly);
  });

  firstSeenItem = this.RULE('firstSeenItem', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Values);
          this.SUBRULE(this.fieldList, { LABEL: 'values' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.By);
          this.SUBRULE2(this.fieldList, { LABEL: 'by' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.History);
          this.CONSUME(T.Duration, { LABEL: 'history' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Ignore);
          this.CONSUME(T.New);
          this.CONSUME(T.Groups);
        },
      },
    ]);
  });

  baselineBlock = this.RULE('baselineBlock', () => {
    this.CONSUME(T.Baseline);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.baselineItem));
    this.CONSUME(T.RCurly);
  });

  baselineItem = this.RULE('baselineItem', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.groupByClause) },
      { ALT: () => this.SUBRULE(this.windowClause) },
      { ALT: () => this.SUBRULE(this.metricClause) },
      {
        ALT: () => {
          this.CONSUME(T.History);
          this.CONSUME(T.Duration, { LABEL: 'history' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Spike);
          this.OR2([
            { ALT: () => this.CONSUME(T.Ratio, { LABEL: 'kind' }) },
            { ALT: () => this.CONSUME(T.Stddev, { LABEL: 'kind' }) },
          ]);
          this.CONSUME(T.GtEq);
          this.CONSUME(T.NumberLit, { LABEL: 'spike' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.MinBuckets);
          this.CONSUME2(T.NumberLit, { LABEL: 'minBuckets' });
        },
      },
      { ALT: () => this.SUBRULE(this.havingClause) },
    ]);
  });

  incidentBlock = this.RULE('incidentBlock', () => {
    this.CONSUME(T.Incident);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.incidentItem));
    this.CONSUME(T.RCurly);
  });

  incidentItem = this.RULE('incidentItem', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.textClause) },
      {
        ALT: () => {
          this.CONSUME(T.Entities);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.entity) });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Suppress);
          this.OPTION(() => {
            this.CONSUME(T.By);
            this.SUBRULE(this.fieldList);
          });
          this.CONSUME(T.For);
          this.CONSUME(T.Duration, { LABEL: 'period' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Evidence);
          this.CONSUME(T.NumberLit, { LABEL: 'sample' });
          this.OPTION2(() => {
            this.CONSUME(T.Fields);
            this.SUBRULE2(this.fieldList, { LABEL: 'evidenceFields' });
          });
        },
      },
    ]);
  });

  entity = this.RULE('entity', () => {
    this.CONSUME(T.Identifier, { LABEL: 'role' });
    this.CONSUME(T.Colon);
    this.CONSUME2(T.Identifier, { LABEL: 'field' });
  });

  // ---- filter expressions -------------------------------------------------------------

  orExpr = this.RULE('orExpr', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Or, DEF: () => this.SUBRULE(this.andExpr) });
  });

  andExpr = this.RULE('andExpr', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.And, DEF: () => this.SUBRULE(this.notExpr) });
  });

  notExpr = this.RULE('notExpr', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Not);
          this.SUBRULE(this.notExpr);
        },
      },
      { ALT: () => this.SUBRULE(this.primary) },
    ]);
  });

  primary = this.RULE('primary', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.orExpr);
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.CONSUME(T.True) },
      {
        ALT: () => {
          this.CONSUME(T.Identifier, { LABEL: 'name' });
          this.OPTION(() => this.SUBRULE(this.predicate));
        },
      },
    ]);
  });

  predicate = this.RULE('predicate', () => {
    this.OR([
      {
        ALT: () => {
          this.SUBRULE(this.cmpOp);
          this.SUBRULE(this.literal);
        },
      },
      {
        ALT: () => {
          this.OPTION(() => this.CONSUME(T.Not));
          this.CONSUME(T.In);
          this.SUBRULE(this.valueSource);
        },
      },
      {
        ALT: () => {
          this.OR2([
            { ALT: () => this.CONSUME(T.Like, { LABEL: 'strOp' }) },
            { ALT: () => this.CONSUME(T.Contains, { LABEL: 'strOp' }) },
            { ALT: () => this.CONSUME(T.StartsWith, { LABEL: 'strOp' }) },
            { ALT: () => this.CONSUME(T.EndsWith, { LABEL: 'strOp' }) },
          ]);
          this.SUBRULE2(this.valueSource);
          this.OPTION2(() => this.CONSUME(T.Nocase));
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Matches);
          this.CONSUME(T.RegexLit);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Cidr);
          this.SUBRULE3(this.valueSource);
        },
      },
      { ALT: () => this.CONSUME(T.Exists) },
    ]);
  });

  /** `"x"`, `("x", "y")` or `list name`. */
  valueSource = this.RULE('valueSource', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.literal) });
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.ListKw);
          this.CONSUME(T.Identifier, { LABEL: 'list' });
        },
      },
      { ALT: () => this.SUBRULE2(this.literal) },
    ]);
  });

  literal = this.RULE('literal', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.StringLit, { LABEL: 'str' }) },
      { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'num' }) },
      { ALT: () => this.SUBRULE(this.boolLit) },
    ]);
  });

  boolLit = this.RULE('boolLit', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.True, { LABEL: 'bool' }) },
      { ALT: () => this.CONSUME(T.False, { LABEL: 'bool' }) },
    ]);
  });

  /** The next unconsumed token. */
  peek(): IToken {
    return this.LA(1);
  }

  /** Entry point for bare filter expressions (event search). */
  filterOnly = this.RULE('filterOnly', () => {
    this.SUBRULE(this.orExpr);
  });
}

export const grammar = new RuleGrammar();

export interface CstResult {
  cst: CstNode;
  errors: IRecognitionException[];
}

export function parseCst(tokens: IToken[], entry: 'file' | 'filterOnly'): CstResult {
  grammar.input = tokens;
  const cst = entry === 'file' ? grammar.file() : grammar.filterOnly();
  const errors = [...grammar.errors];
  // Trailing tokens after a complete bare filter are an error too.
  if (entry === 'filterOnly' && errors.length === 0) {
    const next = grammar.peek();
    if (next.tokenType !== EOF) {
      errors.push({
        name: 'NotAllInputParsedException',
        message: `unexpected ${describeToken(next)} after the end of the expression`,
        token: next,
        resyncedTokens: [],
        context: { ruleStack: [], ruleOccurrenceStack: [] },
      });
    }
  }
  return { cst, errors };
}

export function describeToken(tok: IToken): string {
  if (tok.tokenType === EOF) return 'end of input';
  return `\`${tok.image}\``;
}
