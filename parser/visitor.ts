/**
 * CST -> AST. The CST may be partial after error recovery: any node with a missing piece
 * is dropped here (the syntax error has already been reported), so the AST only holds
 * well-formed nodes and later phases need no defensive code.
 */
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { parseDuration } from './lexer.ts';

type Item = CstElement;

function isToken(e: Item): e is IToken {
  return (e as IToken).image !== undefined;
}

function ok(t: IToken | undefined): t is IToken {
  return (
    t !== undefined &&
    !t.isInsertedInRecovery &&
    Number.isFinite(t.startOffset) &&
    Number.isFinite(t.startLine)
  );
}

function tok(n: CstNode, key: string, i = 0): IToken | undefined {
  const e = n.children[key]?.[i];
  return e && isToken(e) && ok(e) ? e : undefined;
}

function toks(n: CstNode, key: string): IToken[] {
  return (n.children[key] ?? []).filter((e): e is IToken => isToken(e) && ok(e));
}

function sub(n: CstNode, key: string, i = 0): CstNode | undefined {
  const e = n.children[key]?.[i];
  return e && !isToken(e) && !e.recoveredNode ? e : undefined;
}

function subs(n: CstNode, key: string): CstNode[] {
  return (n.children[key] ?? []).filter((e): e is CstNode => !isToken(e));
}

function tokPos(t: IToken): A.Pos {
  return {
    line: t.startLine ?? 1,
    column: t.startColumn ?? 1,
    endLine: t.endLine ?? t.startLine ?? 1,
    endColumn: t.endColumn ?? t.startColumn ?? 1,
  };
}

/** First and last real token of a CST node, in source order. */
function span(n: CstNode): A.Pos | undefined {
  let first: IToken | undefined;
  let last: IToken | undefined;
  const walk = (node: CstNode): void => {
    for (const list of Object.values(node.children)) {
      for (const e of list) {
        if (isToken(e)) {
          if (!ok(e)) continue;
          if (!first || e.startOffset < first.startOffset) first = e;
          if (!last || e.startOffset > last.startOffset) last = e;
        } else walk(e);
      }
    }
  };
  walk(n);
  if (!first || !last) return undefined;
  const a = tokPos(first);
  const b = tokPos(last);
  return { line: a.line, column: a.column, endLine: b.endLine, endColumn: b.endColumn };
}

function join(a: A.Pos, b: A.Pos): A.Pos {
  return { line: a.line, column: a.column, endLine: b.endLine, endColumn: b.endColumn };
}

function before(a: A.Pos, line: number, column: number): boolean {
  return a.line < line || (a.line === line && a.column < column);
}

/** Comments handed out in document order to the next item that starts after them. */
export class CommentPool {
  private readonly items: { pos: A.Pos; text: string }[];
  private next = 0;
  constructor(comments: IToken[]) {
    this.items = comments
      .filter(ok)
      .sort((x, y) => x.startOffset - y.startOffset)
      .map((t) => ({ pos: tokPos(t), text: t.image.replace(/\s+$/, '') }));
  }
  /** Comments before (line, column); an empty string stands for a blank line after a comment. */
  take(line: number, column: number): string[] {
    const out: string[] = [];
    while (this.next < this.items.length && before(this.items[this.next]!.pos, line, column)) {
      const cur = this.items[this.next]!;
      out.push(cur.text);
      this.next++;
      const following = this.items[this.next];
      const nextLine = following && before(following.pos, line, column) ? following.pos.line : line;
      if (nextLine > cur.pos.line + 1 && line !== Number.MAX_SAFE_INTEGER) out.push('');
    }
    return out;
  }
  takeBefore(t: IToken | undefined): string[] {
    if (!t) return [];
    return this.take(t.startLine ?? 1, t.startColumn ?? 1);
  }
  rest(): string[] {
    return this.take(Number.MAX_SAFE_INTEGER, 0);
  }
}

function str(t: IToken | undefined): A.Str | undefined {
  if (!t) return undefined;
  return { value: JSON.parse(t.image) as string, pos: tokPos(t) };
}

function num(t: IToken | undefined): A.Num | undefined {
  if (!t) return undefined;
  return { value: Number(t.image), pos: tokPos(t) };
}

function name(t: IToken | undefined): A.Name | undefined {
  if (!t) return undefined;
  return { name: t.image, pos: tokPos(t) };
}

function dur(t: IToken | undefined): A.Dur | undefined {
  if (!t) return undefined;
  return { ms: parseDuration(t.image), pos: tokPos(t) };
}

function all<T>(xs: (T | undefined)[]): T[] | undefined {
  return xs.every((x) => x !== undefined) ? (xs as T[]) : undefined;
}

/**
 * An `and`/`or` chain: the visited operands (none lost to error recovery), one operand as
 * itself, several joined under one node spanning them.
 */
function fold<T extends { pos: A.Pos }>(
  type: 'and' | 'or',
  children: CstNode[],
  visit: (c: CstNode) => T | undefined,
): T | { type: 'and' | 'or'; args: T[]; pos: A.Pos } | undefined {
  const args = all(children.map((c) => (c.recoveredNode ? undefined : visit(c))));
  if (!args || args.length === 0) return undefined;
  if (args.length === 1) return args[0];
  return { type, args, pos: join(args[0]!.pos, args[args.length - 1]!.pos) };
}

export class AstBuilder {
  private readonly comments: CommentPool;
  constructor(comments: IToken[]) {
    this.comments = new CommentPool(comments);
  }

  file(n: CstNode): A.FileAst {
    const decls: A.Decl[] = [];
    const children: CstNode[] = [
      ...subs(n, 'includeDecl'),
      ...subs(n, 'listDecl'),
      ...subs(n, 'macroDecl'),
      ...subs(n, 'ruleDecl'),
    ];
    const ordered = children
      .map((c) => ({ c, p: span(c) }))
      .filter((x): x is { c: CstNode; p: A.Pos } => x.p !== undefined)
      .sort((x, y) => x.p.line - y.p.line || x.p.column - y.p.column);
    for (const { c, p } of ordered) {
      const comments = this.comments.take(p.line, p.column);
      const d = this.decl(c, p);
      if (d) {
        d.comments = comments;
        decls.push(d);
      }
    }
    return { decls, trailing: this.comments.rest() };
  }

  private decl(n: CstNode, pos: A.Pos): A.Decl | undefined {
    switch (n.name) {
      case 'includeDecl': {
        const path = str(tok(n, 'StringLit'));
        return path && { kind: 'include', path, pos, comments: [] };
      }
      case 'listDecl': {
        const nm = name(tok(n, 'name'));
        if (!nm) return undefined;
        if (n.children.FileKw) {
          const path = str(tok(n, 'path'));
          return path && { kind: 'list', name: nm, source: { kind: 'file', path }, pos, comments: [] };
        }
        if (!tok(n, 'RBracket')) return undefined;
        const values = all(subs(n, 'literal').map((l) => this.literal(l)));
        return values && { kind: 'list', name: nm, source: { kind: 'inline', values }, pos, comments: [] };
      }
      case 'macroDecl': {
        const nm = name(tok(n, 'name'));
        const e = sub(n, 'orExpr');
        const filter = e && this.orExpr(e);
        return nm && filter && { kind: 'macro', name: nm, filter, pos, comments: [] };
      }
      case 'ruleDecl': {
        const nm = name(tok(n, 'name'));
        if (!nm) return undefined;
        const clauses: A.Clause[] = [];
        for (const c of subs(n, 'ruleClause')) {
          const p = span(c);
          if (!p) continue;
          const comments = this.comments.take(p.line, p.column);
          const clause = this.clause(c, p, comments);
          if (clause) clauses.push(clause);
        }
        const trailing = this.comments.takeBefore(tok(n, 'RCurly'));
        return { kind: 'rule', id: nm, clauses, trailing, pos, comments: [] };
      }
    }
    return undefined;
  }

  private clause(n: CstNode, pos: A.Pos, comments: string[]): A.Clause | undefined {
    const base = { pos, comments };
    const text = sub(n, 'textClause');
    if (text) {
      const key = tok(text, 'key')?.image;
      const value = str(tok(text, 'text'));
      if (!value || !key) return undefined;
      if (key === 'summary') return { ...base, kind: 'invalid', key };
      return { ...base, kind: key as 'title' | 'description' | 'owner', text: value };
    }
    if (n.children.Severity) {
      const severity = name(tok(n, 'severity'));
      return severity && { ...base, kind: 'severity', severity };
    }
    if (n.children.Risk) {
      const risk = num(tok(n, 'risk'));
      return risk && { ...base, kind: 'risk', risk };
    }
    if (n.children.Tags) {
      if (!tok(n, 'RBracket')) return undefined;
      const tags = toks(n, 'tag').map((t) => str(t)!);
      return { ...base, kind: 'tags', tags };
    }
    if (n.children.Enabled) {
      const b = sub(n, 'boolLit');
      const t = b && tok(b, 'bool');
      return t && { ...base, kind: 'enabled', enabled: t.image === 'true' };
    }
    const sched = sub(n, 'scheduleClause');
    if (sched) {
      const keys = toks(sched, 'key');
      const values = toks(sched, 'value');
      if (keys.length !== values.length || keys.length === 0) return undefined;
      const entries = keys.map((k, i) => ({
        key: k.image as 'every' | 'lookback' | 'lateness',
        value: dur(values[i])!,
      }));
      return { ...base, kind: 'schedule', entries };
    }
    if (n.children.Correlate) {
      const within = dur(tok(n, 'tolerance'));
      return within && { ...base, kind: 'correlate', within };
    }
    if (n.children.Where) {
      const e = sub(n, 'orExpr');
      const filter = e && this.orExpr(e);
      return filter && { ...base, kind: 'where', filter };
    }
    const block = (key: string): CstNode | undefined => sub(n, key);
    let b = block('thresholdBlock');
    if (b) return this.block(b, 'thresholdItem', base, 'threshold', (i, p, c) => this.thresholdItem(i, p, c));
    b = block('sequenceBlock');
    if (b) return this.block(b, 'sequenceItem', base, 'sequence', (i, p, c) => this.sequenceItem(i, p, c));
    b = block('firstSeenBlock');
    if (b)
      return this.block(b, 'firstSeenItem', base, 'first_seen', (i, p, c) => this.firstSeenItem(i, p, c));
    b = block('baselineBlock');
    if (b) return this.block(b, 'baselineItem', base, 'baseline', (i, p, c) => this.baselineItem(i, p, c));
    b = block('incidentBlock');
    if (b) return this.block(b, 'incidentItem', base, 'incident', (i, p, c) => this.incidentItem(i, p, c));
    return undefined;
  }

  private block<K extends string, I>(
    n: CstNode,
    itemKey: string,
    base: { pos: A.Pos; comments: string[] },
    kind: K,
    item: (n: CstNode, pos: A.Pos, comments: string[]) => I | undefined,
  ): A.Clause | undefined {
    if (!tok(n, 'RCurly')) return undefined;
    const items: I[] = [];
    for (const c of subs(n, itemKey)) {
      const p = span(c);
      if (!p) continue;
      const comments = this.comments.take(p.line, p.column);
      const it = item(c, p, comments);
      if (it !== undefined) items.push(it);
    }
    const trailing = this.comments.takeBefore(tok(n, 'RCurly'));
    return { ...base, kind, items, trailing } as unknown as A.Clause;
  }

  private fieldList(n: CstNode | undefined): A.Name[] | undefined {
    if (!n) return undefined;
    const fields = toks(n, 'field').map((t) => name(t)!);
    return fields.length > 0 ? fields : undefined;
  }

  private window(n: CstNode | undefined): A.WindowDecl | undefined {
    if (!n) return undefined;
    const size = dur(tok(n, 'size'));
    if (!size) return undefined;
    const pos = span(n)!;
    if (n.children.Sliding) {
      const slide = dur(tok(n, 'slide'));
      return slide && { size, mode: 'sliding', slide, pos };
    }
    return { size, mode: n.children.Tumbling ? 'tumbling' : 'default', pos };
  }

  private metric(n: CstNode | undefined): A.MetricDecl | undefined {
    if (!n) return undefined;
    const nm = name(tok(n, 'name'));
    const fn = name(tok(n, 'fn'));
    if (!nm || !fn || !tok(n, 'RParen')) return undefined;
    const args: { arg: A.MetricArg; off: number }[] = [];
    for (const t of toks(n, 'num')) {
      args.push({ arg: { kind: 'number', value: Number(t.image), pos: tokPos(t) }, off: t.startOffset });
    }
    for (const e of subs(n, 'orExpr')) {
      const f = e.recoveredNode ? undefined : this.orExpr(e);
      const p = span(e);
      if (!f || !p) return undefined;
      args.push({ arg: { kind: 'filter', filter: f, pos: p }, off: offsetOf(e) });
    }
    args.sort((x, y) => x.off - y.off);
    return { name: nm, fn, args: args.map((a) => a.arg), pos: span(n)! };
  }

  private having(n: CstNode | undefined): A.Having | undefined {
    if (!n) return undefined;
    const h = sub(n, 'havingOr');
    return h && this.havingOr(h);
  }

  private havingOr(n: CstNode): A.Having | undefined {
    return fold('or', subs(n, 'havingAnd'), (c) => this.havingAnd(c));
  }

  private havingAnd(n: CstNode): A.Having | undefined {
    return fold('and', subs(n, 'havingUnary'), (c) => this.havingUnary(c));
  }

  private havingUnary(n: CstNode): A.Having | undefined {
    const pos = span(n);
    if (!pos) return undefined;
    const notTok = tok(n, 'Not');
    if (notTok) {
      const inner = sub(n, 'havingUnary');
      const arg = inner && this.havingUnary(inner);
      return arg && { type: 'not', arg, pos };
    }
    if (n.children.LParen) {
      const inner = sub(n, 'havingOr');
      if (!inner || !tok(n, 'RParen')) return undefined;
      return this.havingOr(inner);
    }
    const metric = name(tok(n, 'metric'));
    const op = this.cmpOp(sub(n, 'cmpOp'));
    if (!metric || !op) return undefined;
    const value = num(tok(n, 'num'));
    if (value) return { type: 'cmp', metric, op, value, pos };
    const other = name(tok(n, 'other'));
    return other && { type: 'cmp_metric', metric, op, other, pos };
  }

  private cmpOp(n: CstNode | undefined): A.CmpOp | undefined {
    if (!n) return undefined;
    return tok(n, 'op')?.image as A.CmpOp | undefined;
  }

  private thresholdItem(n: CstNode, pos: A.Pos, comments: string[]): A.ThresholdItem | undefined {
    const base = { pos, comments };
    const g = sub(n, 'groupByClause');
    if (g) {
      const fields = this.fieldList(sub(g, 'fieldList'));
      return fields && { ...base, kind: 'group_by', fields };
    }
    const w = this.window(sub(n, 'windowClause'));
    if (w) return { ...base, kind: 'window', window: w };
    const m = this.metric(sub(n, 'metricClause'));
    if (m) return { ...base, kind: 'metric', metric: m };
    const h = this.having(sub(n, 'havingClause'));
    if (h) return { ...base, kind: 'having', having: h };
    return undefined;
  }

  private sequenceItem(n: CstNode, pos: A.Pos, comments: string[]): A.SequenceItem | undefined {
    const base = { pos, comments };
    if (n.children.By) {
      const fields = this.fieldList(sub(n, 'fieldList'));
      return fields && { ...base, kind: 'by', fields };
    }
    if (n.children.Within) {
      const span_ = dur(tok(n, 'within'));
      return span_ && { ...base, kind: 'within', span: span_ };
    }
    if (n.children.Until) {
      const e = sub(n, 'orExpr');
      const filter = e && this.orExpr(e);
      return filter && { ...base, kind: 'until', filter };
    }
    const s = sub(n, 'stepClause');
    if (!s) return undefined;
    const nm = name(tok(s, 'name'));
    const e = sub(s, 'orExpr');
    const filter = e && this.orExpr(e);
    if (!nm || !filter) return undefined;
    const step: A.StepDecl = { name: nm, absent: s.children.Absent !== undefined, filter };
    if (s.children.Repeat) {
      const min = num(tok(s, 'min'));
      if (!min) return undefined;
      if (s.children.GtEq) step.repeat = { min, atLeast: true };
      else if (s.children.DotDot) {
        const max = num(tok(s, 'max'));
        if (!max) return undefined;
        step.repeat = { min, max, atLeast: false };
      } else step.repeat = { min, max: min, atLeast: false };
    }
    return { ...base, kind: 'step', step };
  }

  private firstSeenItem(n: CstNode, pos: A.Pos, comments: string[]): A.FirstSeenItem | undefined {
    const base = { pos, comments };
    if (n.children.Values) {
      const fields = this.fieldList(sub(n, 'values'));
      return fields && { ...base, kind: 'values', fields };
    }
    if (n.children.By) {
      const fields = this.fieldList(sub(n, 'by'));
      return fields && { ...base, kind: 'by', fields };
    }
    if (n.children.History) {
      const history = dur(tok(n, 'history'));
      return history && { ...base, kind: 'history', history };
    }
    if (tok(n, 'Groups')) return { ...base, kind: 'ignore_new_groups' };
    return undefined;
  }

  private baselineItem(n: CstNode, pos: A.Pos, comments: string[]): A.BaselineItem | undefined {
    const base = { pos, comments };
    const g = sub(n, 'groupByClause');
    if (g) {
      const fields = this.fieldList(sub(g, 'fieldList'));
      return fields && { ...base, kind: 'group_by', fields };
    }
    const w = this.window(sub(n, 'windowClause'));
    if (w) return { ...base, kind: 'window', window: w };
    const m = this.metric(sub(n, 'metricClause'));
    if (m) return { ...base, kind: 'metric', metric: m };
    if (n.children.History) {
      const history = dur(tok(n, 'history'));
      return history && { ...base, kind: 'history', history };
    }
    if (n.children.Spike) {
      const kind = tok(n, 'kind')?.image;
      const min = num(tok(n, 'spike'));
      if (!kind || !min) return undefined;
      return { ...base, kind: 'spike', spike: kind as 'ratio' | 'stddev', min };
    }
    if (n.children.MinBuckets) {
      const count = num(tok(n, 'minBuckets'));
      return count && { ...base, kind: 'min_buckets', count };
    }
    const h = this.having(sub(n, 'havingClause'));
    if (h) return { ...base, kind: 'having', having: h };
    return undefined;
  }

  private incidentItem(n: CstNode, pos: A.Pos, comments: string[]): A.IncidentItem | undefined {
    const base = { pos, comments };
    const text = sub(n, 'textClause');
    if (text) {
      const key = tok(text, 'key')?.image;
      const value = str(tok(text, 'text'));
      if (!key || !value) return undefined;
      if (key !== 'title' && key !== 'summary') return { ...base, kind: 'invalid', key };
      return { ...base, kind: key, text: value };
    }
    if (n.children.Entities) {
      const entities = all(
        subs(n, 'entity').map((e) => {
          const role = name(tok(e, 'role'));
          const field = name(tok(e, 'field'));
          return role && field ? { role, field } : undefined;
        }),
      );
      return entities && entities.length > 0 ? { ...base, kind: 'entities', entities } : undefined;
    }
    if (n.children.Suppress) {
      const period = dur(tok(n, 'period'));
      if (!period) return undefined;
      if (n.children.By) {
        const by = this.fieldList(sub(n, 'fieldList'));
        return by && { ...base, kind: 'suppress', by, period };
      }
      return { ...base, kind: 'suppress', period };
    }
    if (n.children.Evidence) {
      const sample = num(tok(n, 'sample'));
      if (!sample) return undefined;
      if (n.children.Fields) {
        const fields = this.fieldList(sub(n, 'evidenceFields'));
        return fields && { ...base, kind: 'evidence', sample, fields };
      }
      return { ...base, kind: 'evidence', sample };
    }
    return undefined;
  }

  // ---- filters ---------------------------------------------------------------------------

  orExpr(n: CstNode): A.Filter | undefined {
    return fold('or', subs(n, 'andExpr'), (c) => this.andExpr(c));
  }

  private andExpr(n: CstNode): A.Filter | undefined {
    return fold('and', subs(n, 'notExpr'), (c) => this.notExpr(c));
  }

  private notExpr(n: CstNode): A.Filter | undefined {
    const pos = span(n);
    if (!pos) return undefined;
    if (n.children.Not) {
      const inner = sub(n, 'notExpr');
      const arg = inner && this.notExpr(inner);
      return arg && { type: 'not', arg, pos };
    }
    const p = sub(n, 'primary');
    return p && this.primary(p);
  }

  private primary(n: CstNode): A.Filter | undefined {
    const pos = span(n);
    if (!pos) return undefined;
    if (n.children.LParen) {
      const inner = sub(n, 'orExpr');
      if (!inner || !tok(n, 'RParen')) return undefined;
      return this.orExpr(inner);
    }
    if (tok(n, 'True')) return { type: 'true', pos };
    const field = name(tok(n, 'name'));
    if (!field) return undefined;
    if (!n.children.predicate) return { type: 'ref', name: field, pos };
    const p = sub(n, 'predicate');
    if (!p) return undefined;
    if (p.children.cmpOp) {
      const op = this.cmpOp(sub(p, 'cmpOp'));
      const l = sub(p, 'literal');
      const value = l && this.literal(l);
      return op && value && { type: 'cmp', field, op, value, pos };
    }
    if (p.children.In) {
      const source = this.valueSource(sub(p, 'valueSource'));
      return source && { type: 'in', field, negated: p.children.Not !== undefined, source, pos };
    }
    const strOp = tok(p, 'strOp');
    if (strOp) {
      const source = this.valueSource(sub(p, 'valueSource'));
      const type = strOp.image as A.StrOp;
      return source && { type, field, source, nocase: p.children.Nocase !== undefined, pos };
    }
    if (p.children.Matches) {
      const re = tok(p, 'RegexLit');
      if (!re) return undefined;
      const end = re.image.lastIndexOf('/');
      return { type: 'matches', field, pattern: re.image.slice(1, end), flags: re.image.slice(end + 1), pos };
    }
    if (p.children.Cidr) {
      const source = this.valueSource(sub(p, 'valueSource'));
      return source && { type: 'cidr', field, source, pos };
    }
    if (tok(p, 'Exists')) return { type: 'exists', field, pos };
    return undefined;
  }

  private valueSource(n: CstNode | undefined): A.ValueSource | undefined {
    if (!n) return undefined;
    const pos = span(n);
    if (!pos) return undefined;
    if (n.children.ListKw) {
      const nm = name(tok(n, 'list'));
      return nm && { kind: 'list', name: nm, pos };
    }
    if (n.children.LParen) {
      if (!tok(n, 'RParen')) return undefined;
      const values = all(subs(n, 'literal').map((l) => this.literal(l)));
      return values && { kind: 'values', values, pos };
    }
    const l = sub(n, 'literal');
    const v = l && this.literal(l);
    return v && { kind: 'values', values: [v], pos };
  }

  private literal(n: CstNode): A.Literal | undefined {
    if (n.recoveredNode) return undefined;
    const s = tok(n, 'str');
    if (s) return { value: JSON.parse(s.image) as string, pos: tokPos(s) };
    const x = tok(n, 'num');
    if (x) return { value: Number(x.image), pos: tokPos(x) };
    const b = sub(n, 'boolLit');
    const t = b && tok(b, 'bool');
    if (t) return { value: t.image === 'true', pos: tokPos(t) };
    return undefined;
  }
}

function offsetOf(n: CstNode): number {
  let min = Number.POSITIVE_INFINITY;
  const walk = (node: CstNode): void => {
    for (const list of Object.values(node.children)) {
      for (const e of list) {
        if (isToken(e)) {
          if (ok(e) && e.startOffset < min) min = e.startOffset;
        } else walk(e);
      }
    }
  };
  walk(n);
  return min;
}
