/**
 * Read an OpenAPI / Swagger document from JSON or YAML text, keeping source positions so
 * that problems found later (by JSON pointer) can be reported with a line and column.
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';

export interface SpecProblem {
  /** JSON pointer (RFC 6901) into the document, `""` for the root. */
  pointer: string;
  message: string;
  line?: number;
  column?: number;
}

export class SpecInvalidError extends Error {
  override name = 'SpecInvalidError';
  readonly problems: SpecProblem[];
  constructor(problems: SpecProblem[]) {
    super(
      `invalid API specification: ${problems
        .slice(0, 5)
        .map((p) => `${p.pointer || '/'}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`)
        .join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`,
    );
    this.problems = problems;
  }
}

export interface ParsedSpec {
  doc: unknown;
  /** Line/column (1-based) of the node a pointer names, or of its nearest existing ancestor. */
  locate(pointer: string): { line: number; column: number } | undefined;
}

export function pointerOf(path: readonly (string | number)[]): string {
  return path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

export function splitPointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

const MAX_SPEC_BYTES = 10 * 1024 * 1024;

/** Parse JSON or YAML (JSON is read by the YAML 1.2 parser too, which keeps positions). */
export function parseSpecText(text: string): ParsedSpec {
  if (text.length > MAX_SPEC_BYTES) {
    throw new SpecInvalidError([{ pointer: '', message: `document larger than ${MAX_SPEC_BYTES} bytes` }]);
  }
  if (text.trim() === '') throw new SpecInvalidError([{ pointer: '', message: 'empty document' }]);
  const lineCounter = new LineCounter();
  const ydoc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (ydoc.errors.length > 0) {
    throw new SpecInvalidError(
      ydoc.errors.slice(0, 10).map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          pointer: '',
          message: `syntax error: ${e.message.split('\n')[0]}`,
          line: pos.line,
          column: pos.col,
        };
      }),
    );
  }
  const doc = ydoc.toJS({ maxAliasCount: 100 }) as unknown;
  const locate = (pointer: string) => {
    let node: unknown = ydoc.contents;
    let offset: number | undefined = (ydoc.contents as Node | null)?.range?.[0];
    for (const seg of splitPointer(pointer)) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
        if (!pair) break;
        offset = (pair.key as Node).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node)) {
        const item = node.items[Number(seg)] as Node | undefined;
        if (!item) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else break;
    }
    if (offset === undefined) return undefined;
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  return { doc, locate };
}
