/** Shared helpers for the parser tests (not a test file itself). */
import { formatDiagnostic, type ParseOptions, type ParseResult, parseRules } from './index.ts';

/** In-memory file system for includes and list files: paths resolved as written. */
export function memoryFs(files: Record<string, string>): Pick<ParseOptions, 'readInclude' | 'readList'> {
  const read = (path: string) => (path in files ? { file: path, text: files[path]! } : undefined);
  return { readInclude: read, readList: read };
}

export function parse(text: string, files: Record<string, string> = {}): ParseResult {
  return parseRules(text, { file: 'test.gwr', ...memoryFs(files) });
}

/** Parse and expect no diagnostics at all; returns the rules. */
export function parseOk(text: string, files: Record<string, string> = {}): ParseResult['rules'] {
  const r = parse(text, files);
  if (r.diagnostics.length > 0) throw new Error(r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.rules;
}

/** All diagnostics as text, for inline snapshots. */
export function errorsOf(text: string, files: Record<string, string> = {}): string {
  return parse(text, files).diagnostics.map(formatDiagnostic).join('\n');
}

/** Wrap a body into a minimal valid rule. */
export function rule(body: string, id = 'r'): string {
  return `rule ${id} {\n  title "T"\n  severity low\n${body}\n}\n`;
}
