/** Diagnostics: structured errors and warnings with a source excerpt, and their text form. */
import type { Pos } from './ast.ts';

export type DiagnosticSeverity = 'error' | 'warning';

export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  endLine?: number;
  endColumn?: number;
  severity: DiagnosticSeverity;
  /** Stable machine code, e.g. `unknown-field`, `syntax`, `type-mismatch`. */
  code: string;
  message: string;
  /** How to fix it, e.g. "did you mean `source.ip`?". */
  hint?: string;
  /** The source line(s) with a caret line under the span. */
  excerpt: string;
}

/** Longest excerpt line shown (characters); longer lines are shown around the span. */
const MAX_EXCERPT_LINE = 160;
/** Characters shown before the span on a long line. */
const EXCERPT_CONTEXT = 40;

/** Source text of one file, for excerpts. */
export class SourceText {
  readonly file: string;
  readonly lines: string[];
  constructor(file: string, text: string) {
    this.file = file;
    this.lines = text.split(/\r\n|\r|\n/);
  }

  excerpt(pos: Pos): string {
    const lineText = this.lines[pos.line - 1];
    if (lineText === undefined) return '';
    let shown = lineText.replace(/\t/g, ' ');
    const gutter = String(pos.line);
    let start = Math.max(1, Math.min(pos.column, shown.length + 1));
    let end =
      pos.endLine === pos.line ? Math.max(start, Math.min(pos.endColumn, shown.length)) : shown.length;
    if (shown.length > MAX_EXCERPT_LINE) {
      // A long line is shown around the span only: every diagnostic of a 250 KB one-line rule
      // carried the whole line (hundreds of MB for the answer).
      const from = Math.max(0, start - 1 - EXCERPT_CONTEXT);
      const to = Math.min(shown.length, from + MAX_EXCERPT_LINE);
      const left = from > 0 ? '…' : '';
      shown = `${left}${shown.slice(from, to)}${to < shown.length ? '…' : ''}`;
      start = start - from + left.length;
      end = Math.min(end, to) - from + left.length;
    }
    const width = Math.max(1, end - start + 1);
    return `${gutter} | ${shown}\n${' '.repeat(gutter.length)} | ${' '.repeat(start - 1)}${'^'.repeat(width)}`;
  }

  diag(
    pos: Pos,
    code: string,
    message: string,
    hint?: string,
    severity: DiagnosticSeverity = 'error',
  ): Diagnostic {
    const d: Diagnostic = {
      file: this.file,
      line: pos.line,
      column: pos.column,
      endLine: pos.endLine,
      endColumn: pos.endColumn,
      severity,
      code,
      message,
      excerpt: this.excerpt(pos),
    };
    if (hint !== undefined) d.hint = hint;
    return d;
  }
}

/** `file:line:col: error: message`, the caret excerpt, and `  = hint: ...`. */
export function formatDiagnostic(d: Diagnostic): string {
  let out = `${d.file}:${d.line}:${d.column}: ${d.severity}: ${d.message} [${d.code}]`;
  if (d.excerpt) out += `\n${d.excerpt}`;
  if (d.hint) out += `\n  = hint: ${d.hint}`;
  return out;
}

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column;
}

/** Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => {
    const row = new Array<number>(n + 1).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j <= n; j++) d[0]![j] = j;
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[m]![n]!;
}

/** Names longer than this get no "did you mean" (no field or keyword is nearly this long). */
const MAX_SUGGESTED_NAME = 96;

/**
 * The closest candidate to `name`, if it is close enough: one it begins up to a `_` (a word
 * left off), else distance at most a third of the name's length (min 1, max 4), or else the
 * closest candidate with the same last segment (`client.ip` -> `source.ip`).
 */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  // Bounded work: a name far longer than any candidate has no close one, and the distance of
  // two names is at least the difference of their lengths, so only candidates of about the
  // same length are measured (a long name otherwise costs its length × every candidate).
  if (name.length > MAX_SUGGESTED_NAME) return undefined;
  const limit = Math.min(4, Math.max(1, Math.floor(name.length / 3)));
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const list = [...candidates];
  // A name cut short of its last word (`http.response.status` for `…status_code`): the
  // shortest candidate it begins.
  const lower = name.toLowerCase();
  const longer = list
    .filter((c) => c.length > name.length && c[name.length] === '_' && c.toLowerCase().startsWith(lower))
    .sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  if (longer[0] !== undefined) return longer[0];
  for (const c of list) {
    if (Math.abs(c.length - name.length) > limit) continue;
    const dist = editDistance(name.toLowerCase(), c.toLowerCase());
    if (dist < bestD || (dist === bestD && best !== undefined && c < best)) {
      bestD = dist;
      best = c;
    }
  }
  if (best !== undefined && bestD <= limit) return best;
  // `client.ip` -> `source.ip`: same leaf name, if there is only one such field.
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  const sameLeaf = list.filter((c) => c.endsWith(`.${leaf}`) || c === leaf);
  let pick: string | undefined;
  let pickD = Number.POSITIVE_INFINITY;
  for (const c of sameLeaf) {
    const dist = editDistance(name, c);
    if (dist < pickD) {
      pickD = dist;
      pick = c;
    }
  }
  return pick;
}
