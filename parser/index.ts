/**
 * Public API of the rule language.
 *
 *   parseRules(text, { file, readInclude?, readList? }) -> { rules: RuleIR[], diagnostics }
 *   parseFilterExpression(text)                          -> { filter?: FilterExpr, diagnostics }
 *   formatRules(text)                                    -> { text?: string, diagnostics }
 *   formatDiagnostic(d)                                  -> "file:line:col: error: ..." + excerpt
 *   loadRuleFiles(paths)                                 -> reads files / directories from disk
 *
 * Nothing here throws on bad input: every problem is a Diagnostic.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { Checker, type ListEntry, type MacroEntry, type Scope } from './check.ts';
import { compareDiagnostics, type Diagnostic, SourceText, suggest } from './diagnostics.ts';
import { formatFile } from './format.ts';
import { CLAUSE_KEYWORDS, describeToken, parseCst } from './grammar.ts';
import type { FilterExpr, RuleIR } from './ir.ts';
import { lexer } from './lexer.ts';
import { Lowerer } from './lower.ts';
import { AstBuilder } from './visitor.ts';

export type { FileAst } from './ast.ts';
export { stripPositions } from './ast.ts';
export type { Diagnostic } from './diagnostics.ts';
export { formatDiagnostic } from './diagnostics.ts';
export type * from './ir.ts';
export { IR_VERSION } from './ir.ts';

export interface ReadResult {
  /** Resolved file name, used in diagnostics and for nested includes. */
  file: string;
  text: string;
}

export interface ParseOptions {
  file: string;
  /** Resolve and read an included file (`path` as written, relative to `fromFile`). */
  readInclude?: (path: string, fromFile: string) => ReadResult | undefined;
  /** Resolve and read a list file (`list x = file("path")`). */
  readList?: (path: string, fromFile: string) => ReadResult | undefined;
  /**
   * A deployment's values for named lists (`detections.lists` in the configuration): a list
   * declared with one of these names takes these values instead of its declaration's, so a rule
   * pack's `internal_networks` can describe this deployment without editing the pack.
   */
  lists?: Readonly<Record<string, readonly string[]>>;
}

export interface ParseResult {
  rules: RuleIR[];
  diagnostics: Diagnostic[];
}

const MAX_INCLUDE_DEPTH = 16;

interface Syntax {
  ast: A.FileAst;
  src: SourceText;
  diags: Diagnostic[];
}

/** Lex + parse + CST->AST. Syntax errors only. */
export function parseSyntax(text: string, file: string): Syntax {
  const src = new SourceText(file, text);
  const diags: Diagnostic[] = [];
  const lexed = lexer.tokenize(text);
  for (const e of lexed.errors) {
    const ch = text.slice(e.offset, e.offset + Math.max(1, e.length));
    const line = e.line ?? 1;
    const column = e.column ?? 1;
    diags.push(
      src.diag(
        { line, column, endLine: line, endColumn: column + Math.max(0, ch.split(/\r?\n/)[0]!.length - 1) },
        'syntax',
        `unexpected character${ch.length > 1 ? 's' : ''} \`${ch.split(/\r?\n/)[0]}\``,
        lexHint(ch),
      ),
    );
  }
  checkNumbers(lexed.tokens, src, diags);
  // Past the size limits nothing is parsed: the one diagnostic says what to shorten.
  const tokens = withinLimits(lexed.tokens, src, diags) ? lexed.tokens : [];
  const { cst, errors } = parseCst(tokens, 'file');
  addParseErrors(errors, src, diags, tokens);
  const ast = new AstBuilder((lexed.groups.comments ?? []) as IToken[]).file(cst);
  return { ast, src, diags };
}

/** Longest identifier (field, macro, list, rule id) accepted: far above any real name. */
export const MAX_IDENTIFIER_LENGTH = 256;
/** Deepest nesting of brackets and `not`s accepted in one expression. */
export const MAX_NESTING = 64;

/**
 * Size limits that keep checking fast and the parser's recursion shallow: identifiers of at
 * most MAX_IDENTIFIER_LENGTH characters, nesting of at most MAX_NESTING levels. Adds a
 * diagnostic and returns false at the first excess.
 */
function withinLimits(tokens: IToken[], src: SourceText, diags: Diagnostic[]): boolean {
  let depth = 0;
  let nots = 0;
  for (const t of tokens) {
    const at = () => {
      const line = t.startLine ?? 1;
      const column = t.startColumn ?? 1;
      return { line, column, endLine: line, endColumn: column };
    };
    const type = t.tokenType.name;
    if (t.image.length > MAX_IDENTIFIER_LENGTH && type !== 'StringLit' && type !== 'RegexLit') {
      diags.push(
        src.diag(
          at(),
          'too-long',
          `name of ${t.image.length} characters; names are at most ${MAX_IDENTIFIER_LENGTH}`,
          'field, macro, list and rule names are short: check for a missing space or quote',
        ),
      );
      return false;
    }
    if (type === 'LParen' || type === 'LBracket' || type === 'LCurly') depth++;
    else if (type === 'RParen' || type === 'RBracket' || type === 'RCurly') depth = Math.max(0, depth - 1);
    nots = type === 'Not' ? nots + 1 : 0;
    if (depth + nots > MAX_NESTING) {
      diags.push(
        src.diag(
          at(),
          'too-deep',
          `expression nested more than ${MAX_NESTING} levels deep`,
          'flatten it: `a or b or c` needs no parentheses, and `not not x` is `x`',
        ),
      );
      return false;
    }
  }
  return true;
}

function checkNumbers(tokens: IToken[], src: SourceText, diags: Diagnostic[]): void {
  for (const t of tokens) {
    if (t.tokenType.name !== 'NumberLit' || Number.isFinite(Number(t.image))) continue;
    const line = t.startLine ?? 1;
    const column = t.startColumn ?? 1;
    diags.push(
      src.diag(
        { line, column, endLine: line, endColumn: t.endColumn ?? column },
        'invalid-number',
        `number \`${t.image}\` is out of range`,
      ),
    );
  }
}

function lexHint(ch: string): string | undefined {
  const c = ch[0];
  if (c === "'") return 'strings use double quotes: "..."';
  if (c === '&') return 'write `and`';
  if (c === '|') return 'write `or`';
  if (c === '!') return 'write `not`, or `!=` for inequality';
  if (c === '"') return 'close the string on the same line; escape quotes as \\" and newlines as \\n';
  if (c === '/') return 'a regular expression is written /.../ on one line, after `matches`';
  return undefined;
}

/** Where a token is, as a diagnostic position. */
function tokenPos(t: IToken): A.Pos {
  return {
    line: t.startLine ?? 1,
    column: t.startColumn ?? 1,
    endLine: t.endLine ?? t.startLine ?? 1,
    endColumn: t.endColumn ?? t.startColumn ?? 1,
  };
}

/** Just after a token: where something missing after it goes. */
function afterToken(t: IToken): A.Pos {
  const line = t.endLine ?? t.startLine ?? 1;
  const column = (t.endColumn ?? t.startColumn ?? 0) + 1;
  return { line, column, endLine: line, endColumn: column };
}

const OPERATOR_WORDS =
  /^(and|or|not|in|like|contains|matches|cidr|exists|startswith|endswith|true|false|nocase)$/;

/** `AND`, `Or`: an operator word in the wrong case. */
const isUpperOperator = (t: IToken) =>
  t.tokenType.name === 'Identifier' &&
  OPERATOR_WORDS.test(t.image.toLowerCase()) &&
  t.image !== t.image.toLowerCase();

/** Braces of the token stream: pairs, and what is still open before a given offset. */
function braces(tokens: IToken[], before: number) {
  const open: IToken[] = [];
  const pairs: { open: IToken; close: IToken }[] = [];
  for (const t of tokens) {
    if (t.startOffset >= before) break;
    if (t.tokenType.name === 'LCurly') open.push(t);
    else if (t.tokenType.name === 'RCurly') {
      const o = open.pop();
      if (o) pairs.push({ open: o, close: t });
    }
  }
  return { open, pairs };
}

/**
 * A block not closed, told by an error at `at` (a clause of an enclosing block, a declaration
 * or the end of input where the block's own clauses or `}` were expected): the block and the
 * token after which its `}` is missing. When a `}` further in is indented like an outer block's
 * opening line rather than like its own, it was meant for the outer block: the block it
 * closed is the one left open, its `}` missing before it.
 */
function unclosedBlock(
  tokens: IToken[],
  src: SourceText,
  at: IToken | undefined,
): { opener: IToken; after: IToken; before?: IToken } | undefined {
  const lefts = tokens.filter((t) => t.tokenType.name === 'LCurly').length;
  const rights = tokens.filter((t) => t.tokenType.name === 'RCurly').length;
  if (lefts <= rights) return undefined;
  const offset =
    at && Number.isFinite(at.startOffset) && at.tokenType.name !== 'EOF' ? at.startOffset : Infinity;
  const { open, pairs } = braces(tokens, offset);
  const candidate = open[open.length - 1];
  if (!candidate) return undefined;
  const indent = (t: IToken) => {
    const line = src.lines[(t.startLine ?? 1) - 1] ?? '';
    return line.length - line.trimStart().length;
  };
  const index = (t: IToken) => tokens.indexOf(t);
  for (const p of pairs) {
    if (p.open.startOffset <= candidate.startOffset) continue;
    const lineStart = (p.close.startColumn ?? 1) - 1 === indent(p.close);
    if (lineStart && indent(p.close) !== indent(p.open) && indent(p.close) === indent(candidate)) {
      return { opener: p.open, after: tokens[index(p.close) - 1]!, before: p.close };
    }
  }
  const last = at && at.tokenType.name !== 'EOF' ? tokens[index(at) - 1] : tokens[tokens.length - 1];
  return last ? { opener: candidate, after: last } : undefined;
}

/** The words before a `{` on its line: `threshold {`, `rule a {`. */
function openerText(tokens: IToken[], brace: IToken): string {
  const line = brace.startLine;
  const words = tokens
    .filter((t) => t.startLine === line && t.startOffset < brace.startOffset)
    .map((t) => t.image);
  return `${words.join(' ')} {`.trim();
}

/**
 * Chevrotain's errors as diagnostics, one per mistake: a block left open is reported where its
 * `}` is missing (not at the next clause), a misspelled clause keyword once (not again at the
 * `}` its block leaves over), an upper-case operator with the word to write; the errors that
 * follow from a reported mistake are dropped.
 */
function addParseErrors(
  errors: { message: string; token: IToken; previousToken?: IToken }[],
  src: SourceText,
  diags: Diagnostic[],
  tokens: IToken[],
): void {
  const seen = new Set<string>();
  let quietUntil = -1;
  let quietLine = -1;
  let unclosedReported = false;
  /** `}` left over by misspelled blocks, not to be reported again. */
  let leftOverCloses = 0;
  const push = (pos: A.Pos, message: string, hint?: string) => {
    const key = `${pos.line}:${pos.column}`;
    if (seen.has(key)) return;
    seen.add(key);
    diags.push(src.diag(pos, 'syntax', message, hint));
  };
  for (const e of errors) {
    let t = e.token;
    const placed = (x: IToken | undefined): x is IToken =>
      x !== undefined && Number.isFinite(x.startLine) && (x.startLine ?? 0) >= 1 && (x.startColumn ?? 0) >= 1;
    const offset = placed(t) ? t.startOffset : Number.POSITIVE_INFINITY;
    // errors that follow from one already reported
    if (offset <= quietUntil || (placed(t) && t.startLine === quietLine)) continue;
    if (/^unexpected `\}`/.test(e.message) && (unclosedReported || leftOverCloses > 0)) {
      leftOverCloses = Math.max(0, leftOverCloses - 1);
      continue;
    }
    const blockEnd = /^expected (an? [a-z_]+ clause|a declaration.*) or `\}` but found /.test(e.message);
    const atEnd = e.message.endsWith('but found end of input');
    if ((blockEnd || atEnd) && !unclosedReported) {
      const u = unclosedBlock(tokens, src, placed(t) ? t : undefined);
      if (u) {
        unclosedReported = true;
        const where = u.before
          ? `before line ${u.before.startLine}`
          : `after line ${u.after.endLine ?? u.after.startLine}`;
        push(
          afterToken(u.after),
          `missing \`}\` to close \`${openerText(tokens, u.opener)}\` (line ${u.opener.startLine})`,
          `add \`}\` ${where}`,
        );
        continue;
      }
    }
    if (placed(t) && isUpperOperator(t)) {
      // every one on the line is its own mistake; nothing else there is reported
      for (const u of tokens.filter((x) => x.startLine === t.startLine && x.startOffset >= t.startOffset))
        if (isUpperOperator(u))
          push(
            tokenPos(u),
            `\`${u.image}\` is not a keyword: keywords and operators are written in lower case`,
            `write \`${u.image.toLowerCase()}\``,
          );
      quietLine = t.startLine ?? -1;
      continue;
    }
    // At end of input chevrotain points at EOF (no position): use the last real token.
    if (!placed(t)) {
      const last = placed(e.previousToken) ? e.previousToken : tokens[tokens.length - 1];
      if (last) {
        push(afterToken(last), e.message, syntaxHint(e.message));
        continue;
      }
      t = Object.assign({}, e.token, { startLine: 1, startColumn: 1, endLine: 1, endColumn: 1 });
    }
    const hint = syntaxHint(e.message, t);
    push(tokenPos(t), e.message, hint);
    // A misspelled clause keyword: its block or the rest of its line are not errors again,
    // nor the `}` its block leaves over.
    if (blockEnd && hint?.startsWith('did you mean')) {
      quietLine = t.startLine ?? -1;
      const brace = tokens.find(
        (x) => x.startLine === t.startLine && x.tokenType.name === 'LCurly' && x.startOffset > t.startOffset,
      );
      if (brace) {
        const close = braces(tokens, Number.POSITIVE_INFINITY).pairs.find((p) => p.open === brace)?.close;
        if (close) quietUntil = close.startOffset;
        leftOverCloses++;
      }
    }
  }
}

function syntaxHint(message: string, t?: IToken): string | undefined {
  if (t?.image === '=' && !message.startsWith('expected `=`')) return 'compare with `==`';
  if (t?.image === '==' && message.includes('`=`')) return 'declarations use a single `=`';
  if (t && /^(and|or|not|in|true|false)$/.test(t.image) && message.includes('a name'))
    return `\`${t.image}\` is a reserved word; choose another name`;
  if (message.includes('a duration'))
    return 'durations are a whole number and a unit: ms, s, m, h, d, w (e.g. `15m`)';
  for (const [what, words] of Object.entries(CLAUSE_KEYWORDS)) {
    if (!message.startsWith(`expected ${what}`)) continue;
    const s = t && /^[A-Za-z_]+$/.test(t.image) ? suggest(t.image, words) : undefined;
    return s ? `did you mean \`${s}\`?` : `${what.replace(/^an? /, '')}s start with: ${words.join(', ')}`;
  }
  if (message.includes('end of input')) return 'a `}` or `)` may be missing';
  return undefined;
}

interface Analysis {
  syntax: Syntax;
  scope: Scope;
  /** Diagnostics from this file and its includes. */
  diags: Diagnostic[];
}

function readSafe(
  reader: ((p: string, from: string) => ReadResult | undefined) | undefined,
  path: string,
  from: string,
): ReadResult | { error: string } {
  if (!reader) return { error: 'no file reader is configured for this parse' };
  try {
    const r = reader(path, from);
    return r ?? { error: 'file not found' };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** Parse a file and its includes, build its scope, check macros and lists. Rules are not checked here. */
function analyze(text: string, file: string, opts: ParseOptions, stack: string[]): Analysis {
  const syntax = parseSyntax(text, file);
  const { ast, src } = syntax;
  const diags = [...syntax.diags];
  const scope: Scope = { macros: new Map(), lists: new Map() };
  const origin = new Map<string, string>();

  const addMacro = (name: string, entry: MacroEntry): void => {
    const prev = scope.macros.get(name);
    if (prev && prev.decl !== entry.decl) {
      diags.push(
        src.diag(
          entry.decl.name.pos,
          'duplicate-macro',
          `macro \`${name}\` is already defined (${origin.get(`m:${name}`)})`,
        ),
      );
      return;
    }
    scope.macros.set(name, entry);
    origin.set(`m:${name}`, `${entry.src.file}:${entry.decl.name.pos.line}`);
  };
  const addList = (name: string, entry: ListEntry, at: A.Pos): void => {
    const prev = scope.lists.get(name);
    if (prev && prev.decl !== entry.decl) {
      diags.push(
        src.diag(at, 'duplicate-list', `list \`${name}\` is already defined (${origin.get(`l:${name}`)})`),
      );
      return;
    }
    scope.lists.set(name, entry);
    origin.set(`l:${name}`, `${entry.src.file}:${entry.decl.name.pos.line}`);
  };

  for (const d of ast.decls) {
    if (d.kind !== 'include') continue;
    if (stack.length >= MAX_INCLUDE_DEPTH) {
      diags.push(
        src.diag(d.path.pos, 'include-depth', `includes nested more than ${MAX_INCLUDE_DEPTH} deep`),
      );
      continue;
    }
    const r = readSafe(opts.readInclude, d.path.value, file);
    if ('error' in r) {
      diags.push(
        src.diag(
          d.path.pos,
          'include-not-found',
          `cannot include ${JSON.stringify(d.path.value)}: ${r.error}`,
          'include paths are relative to the including file',
        ),
      );
      continue;
    }
    if (stack.includes(r.file) || r.file === file) {
      diags.push(
        src.diag(d.path.pos, 'include-cycle', `include cycle: ${[...stack, file, r.file].join(' -> ')}`),
      );
      continue;
    }
    const inc = analyze(r.text, r.file, opts, [...stack, file]);
    diags.push(...inc.diags);
    const rules = inc.syntax.ast.decls.filter((x) => x.kind === 'rule');
    if (rules.length > 0) {
      diags.push(
        src.diag(
          d.path.pos,
          'include-has-rules',
          `included file ${JSON.stringify(d.path.value)} defines rules`,
          'included files may only hold `macro`, `list` and `include` declarations; load rule files directly',
        ),
      );
    }
    for (const [name, m] of inc.scope.macros) addMacro(name, m);
    for (const [name, l] of inc.scope.lists) addList(name, l, d.path.pos);
  }

  for (const d of ast.decls) {
    if (d.kind === 'macro') addMacro(d.name.name, { decl: d, src });
    if (d.kind === 'list') {
      const entry: ListEntry = { decl: d, src, values: [], origin: 'inline' };
      const configured = opts.lists?.[d.name.name];
      if (configured !== undefined) {
        entry.origin = 'configuration';
        entry.values = configured.map((v, i) => ({
          value: v,
          where: `detections.lists.${d.name.name}[${i}]`,
        }));
      } else if (d.source.kind === 'inline') {
        entry.values = d.source.values.map((v, i) => ({ value: v.value, where: `item ${i + 1}` }));
      } else {
        const r = readSafe(opts.readList, d.source.path.value, file);
        if ('error' in r) {
          diags.push(
            src.diag(
              d.source.path.pos,
              'list-not-found',
              `cannot read list file ${JSON.stringify(d.source.path.value)}: ${r.error}`,
              'list paths are relative to the declaring file; one value per line, # for comments',
            ),
          );
        } else {
          entry.origin = r.file;
          entry.values = parseListFile(r.text).map((x) => ({ value: x.value, where: `${r.file}:${x.line}` }));
        }
      }
      addList(d.name.name, entry, d.name.pos);
    }
  }

  // Check this file's macros in its own scope.
  const checker = new Checker(scope, src);
  for (const d of ast.decls) if (d.kind === 'macro') checker.filter(d.filter);
  checker.macroCycles();
  diags.push(...checker.diags);
  return { syntax, scope, diags };
}

/** One value per line; blank lines and lines starting with `#` are skipped; values are trimmed. */
export function parseListFile(text: string): { value: string; line: number }[] {
  const out: { value: string; line: number }[] = [];
  text.split(/\r\n|\r|\n/).forEach((raw, i) => {
    const v = raw.trim();
    if (v === '' || v.startsWith('#')) return;
    out.push({ value: v, line: i + 1 });
  });
  return out;
}

export function parseRules(text: string, opts: ParseOptions): ParseResult {
  try {
    return parseRulesUnsafe(text, opts);
  } catch (e) {
    // Never throw on input: an internal error is a bug, reported as a diagnostic.
    const msg = e instanceof Error ? `${e.message}` : String(e);
    return {
      rules: [],
      diagnostics: [
        {
          file: opts.file,
          line: 1,
          column: 1,
          severity: 'error',
          code: 'internal',
          message: `internal error: ${msg}`,
          excerpt: '',
        },
      ],
    };
  }
}

function parseRulesUnsafe(text: string, opts: ParseOptions): ParseResult {
  const a = analyze(text, opts.file, opts, []);
  const diags = a.diags;
  const globalErrors = diags.some((d) => d.severity === 'error');
  const lowerer = new Lowerer(a.scope);
  const rules: RuleIR[] = [];
  const ids = new Map<string, A.RuleDecl>();
  for (const d of a.syntax.ast.decls) {
    if (d.kind !== 'rule') continue;
    const checker = new Checker(a.scope, a.syntax.src);
    const prev = ids.get(d.id.name);
    if (prev) {
      diags.push(
        a.syntax.src.diag(
          d.id.pos,
          'duplicate-rule-id',
          `duplicate rule id \`${d.id.name}\` (first defined at line ${prev.id.pos.line})`,
          'rule ids must be unique across all rule files',
        ),
      );
    } else ids.set(d.id.name, d);
    checker.rule(d);
    // A clause lost to a syntax error inside the rule is not also reported as missing, nor a
    // name it declared as unknown (`metrc n = count()` is one mistake, not also "unknown metric n").
    const brokenLines = a.syntax.diags
      .filter((x) => x.code === 'syntax' && x.line >= d.pos.line && x.line <= d.pos.endLine)
      .map((x) => a.syntax.src.lines[x.line - 1] ?? '');
    const broken = brokenLines.length > 0;
    const lostName = (x: Diagnostic) => {
      const name = /^unknown (?:metric|macro|list|step) `([^`]+)`/.exec(x.message)?.[1];
      return (
        name !== undefined &&
        brokenLines.some((l) =>
          new RegExp(`(^|[^\\w.])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=`).test(l),
        )
      );
    };
    diags.push(
      ...checker.diags.filter(
        (x) => !(broken && (x.code === 'missing-clause' || x.code === 'bare-field' || lostName(x))),
      ),
    );
    if (!globalErrors && !checker.diags.some((x) => x.severity === 'error') && !prev)
      rules.push(lowerer.rule(d, opts.file));
  }
  return { rules, diagnostics: dedupeDiagnostics(diags).sort(compareDiagnostics) };
}

export function dedupeDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.file}:${d.line}:${d.column}:${d.code}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** A bare filter expression (REST event search) -> FilterExpr. */
export function parseFilterExpression(
  text: string,
  opts: { file?: string } = {},
): { filter?: FilterExpr; diagnostics: Diagnostic[] } {
  const file = opts.file ?? '<query>';
  try {
    const src = new SourceText(file, text);
    const diags: Diagnostic[] = [];
    const lexed = lexer.tokenize(text);
    for (const e of lexed.errors) {
      const line = e.line ?? 1;
      const column = e.column ?? 1;
      const ch = text.slice(e.offset, e.offset + Math.max(1, e.length)).split(/\r?\n/)[0]!;
      diags.push(
        src.diag(
          { line, column, endLine: line, endColumn: column + Math.max(0, ch.length - 1) },
          'syntax',
          `unexpected character${ch.length > 1 ? 's' : ''} \`${ch}\``,
          lexHint(ch),
        ),
      );
    }
    if (lexed.tokens.length === 0 && diags.length === 0) {
      diags.push(
        src.diag(
          { line: 1, column: 1, endLine: 1, endColumn: 1 },
          'syntax',
          'empty filter expression',
          'write e.g. `source.ip == "192.0.2.1"`, or `true`',
        ),
      );
      return { diagnostics: diags };
    }
    checkNumbers(lexed.tokens, src, diags);
    if (!withinLimits(lexed.tokens, src, diags)) return { diagnostics: diags };
    const { cst, errors } = parseCst(lexed.tokens, 'filterOnly');
    addParseErrors(errors, src, diags, lexed.tokens);
    const orExpr = cst.children.orExpr?.[0];
    const builder = new AstBuilder([]);
    const ast = orExpr && 'children' in orExpr && errors.length === 0 ? builder.orExpr(orExpr) : undefined;
    if (ast) {
      const checker = new Checker({ macros: new Map(), lists: new Map() }, src);
      checker.filter(ast);
      diags.push(...checker.diags);
    }
    if (diags.some((d) => d.severity === 'error') || !ast)
      return { diagnostics: diags.sort(compareDiagnostics) };
    const filter = new Lowerer({ macros: new Map(), lists: new Map() }).filter(ast);
    return { filter, diagnostics: diags };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return {
      diagnostics: [
        {
          file,
          line: 1,
          column: 1,
          severity: 'error',
          code: 'internal',
          message: `internal error: ${msg}`,
          excerpt: '',
        },
      ],
    };
  }
}

/** Canonical text. Returns no text when the input has syntax errors (semantic errors do not matter). */
export function formatRules(
  text: string,
  opts: { file?: string } = {},
): { text?: string; diagnostics: Diagnostic[] } {
  const file = opts.file ?? '<input>';
  try {
    const s = parseSyntax(text, file);
    if (s.diags.length > 0) return { diagnostics: s.diags };
    return { text: formatFile(s.ast), diagnostics: [] };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return {
      diagnostics: [
        {
          file,
          line: 1,
          column: 1,
          severity: 'error',
          code: 'internal',
          message: `internal error: ${msg}`,
          excerpt: '',
        },
      ],
    };
  }
}

/** Readers that resolve paths relative to the including file on the local disk. */
export function diskReaders(): Required<Pick<ParseOptions, 'readInclude' | 'readList'>> {
  const read = (path: string, from: string): ReadResult | undefined => {
    const full = resolve(dirname(from), path);
    if (!existsSync(full) || !statSync(full).isFile()) return undefined;
    return { file: full, text: readFileSync(full, 'utf8') };
  };
  return { readInclude: read, readList: read };
}

export const RULE_FILE_EXTENSION = '.gwr';

function expandPaths(paths: string[]): { files: string[]; missing: string[] } {
  const files: string[] = [];
  const missing: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full);
      else if (name.endsWith(RULE_FILE_EXTENSION)) files.push(full);
    }
  };
  for (const p of paths) {
    const full = resolve(p);
    if (!existsSync(full)) missing.push(p);
    else if (statSync(full).isDirectory()) walk(full);
    else files.push(full);
  }
  return { files: [...new Set(files)], missing };
}

export interface LoadResult extends ParseResult {
  files: string[];
}

/**
 * Read rule files and directories (recursively, `*.gwr`), resolving includes and list files
 * relative to the including file. Rule ids must be unique across all files.
 */
export async function loadRuleFiles(
  paths: string[],
  options: Pick<ParseOptions, 'lists'> = {},
): Promise<LoadResult> {
  const { files, missing } = expandPaths(paths);
  const diagnostics: Diagnostic[] = missing.map((p) => ({
    file: p,
    line: 1,
    column: 1,
    severity: 'error' as const,
    code: 'file-not-found',
    message: `no such file or directory: ${p}`,
    excerpt: '',
  }));
  const rules: RuleIR[] = [];
  const seen = new Map<string, RuleIR>();
  const readers = diskReaders();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      diagnostics.push({
        file,
        line: 1,
        column: 1,
        severity: 'error',
        code: 'file-not-found',
        message: String(e),
        excerpt: '',
      });
      continue;
    }
    const r = parseRules(text, { file, ...readers, ...options });
    diagnostics.push(...r.diagnostics);
    for (const rule of r.rules) {
      const prev = seen.get(rule.id);
      if (prev) {
        const src = new SourceText(file, text);
        const line = rule.source.line;
        const col = (src.lines[line - 1] ?? '').indexOf(rule.id) + 1 || 1;
        diagnostics.push(
          src.diag(
            { line, column: col, endLine: line, endColumn: col + rule.id.length - 1 },
            'duplicate-rule-id',
            `duplicate rule id \`${rule.id}\` (also defined at ${prev.source.file}:${prev.source.line})`,
            'rule ids must be unique across all rule files',
          ),
        );
        continue;
      }
      seen.set(rule.id, rule);
      rules.push(rule);
    }
  }
  return { rules, diagnostics: dedupeDiagnostics(diagnostics).sort(compareDiagnostics), files };
}

export { describeToken };
