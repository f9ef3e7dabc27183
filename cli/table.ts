/**
 * Plain-text tables that fit the terminal: columns separated by two spaces, a header line,
 * no colour codes. When the natural width is too wide, the columns that can give way shrink
 * first (in their order of `shrink`), each down to its `min`; a shrunk cell is cut at its end
 * or, for values whose end tells rows apart, in its middle.
 */

export interface Column {
  header: string;
  /** Right-align (numbers). */
  right?: boolean;
  /** Narrowest the column may become (default: the header's width). */
  min?: number;
  /**
   * Order in which columns give way when the table is too wide (lower first); absent: the
   * column keeps its width.
   */
  shrink?: number;
  /**
   * Where a shrunk cell is cut: at the end (default), in the middle (keeps both ends), or
   * clipped with no mark (an id prefix stays a usable id).
   */
  cut?: 'end' | 'middle' | 'clip';
  /**
   * The column is left out, at this point in the `shrink` order, when the table is still too
   * wide (after it shrank to `min`, if it shrinks).
   */
  drop?: number;
}

const GAP = '  ';

/** The output's width: the terminal's, else $COLUMNS, else wide enough for logs and files. */
export function outputWidth(stream: { isTTY?: boolean; columns?: number } = process.stdout): number {
  if (stream.isTTY && stream.columns) return stream.columns;
  const env = Number(process.env.COLUMNS);
  return Number.isInteger(env) && env > 0 ? env : 200;
}

export function cut(text: string, width: number, where: 'end' | 'middle' | 'clip' = 'end'): string {
  if (text.length <= width) return text;
  if (width <= 1 || where === 'clip') return text.slice(0, width);
  if (where === 'end') return `${text.slice(0, width - 1)}…`;
  const head = Math.ceil((width - 1) / 2);
  const tail = width - 1 - head;
  return `${text.slice(0, head)}…${tail > 0 ? text.slice(-tail) : ''}`;
}

/**
 * Column widths for the rows within `width` (as far as the columns' minimums allow); 0 for a
 * column left out.
 */
export function fitWidths(columns: Column[], rows: string[][], width: number): number[] {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const total = () => {
    const shown = widths.filter((w) => w > 0);
    return shown.reduce((a, w) => a + w, 0) + GAP.length * (shown.length - 1);
  };
  const steps = columns.flatMap((c, i) => [
    ...(c.shrink !== undefined ? [{ at: c.shrink, i, drop: false }] : []),
    ...(c.drop !== undefined ? [{ at: c.drop, i, drop: true }] : []),
  ]);
  steps.sort((a, b) => a.at - b.at || Number(a.drop) - Number(b.drop));
  for (const step of steps) {
    const excess = total() - width;
    if (excess <= 0) break;
    if (step.drop) {
      widths[step.i] = 0;
      continue;
    }
    const c = columns[step.i]!;
    const min = Math.min(widths[step.i]!, c.min ?? c.header.length);
    widths[step.i]! -= Math.min(excess, widths[step.i]! - min);
  }
  return widths;
}

export function renderTable(columns: Column[], rows: string[][], width = outputWidth()): string {
  const widths = fitWidths(columns, rows, width);
  const line = (cells: string[]) =>
    cells
      .flatMap((cell, i) => {
        if (widths[i] === 0) return [];
        const c = columns[i]!;
        const text = cut(cell, widths[i]!, c.cut);
        return [c.right ? text.padStart(widths[i]!) : text.padEnd(widths[i]!)];
      })
      .join(GAP)
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n');
}

/**
 * Whether output may carry colour codes: only on a terminal, and never with NO_COLOR set
 * (https://no-color.org) or TERM=dumb; FORCE_COLOR asks for them anyway.
 */
export function colourAllowed(stream: { isTTY?: boolean } = process.stdout): boolean {
  const env = process.env;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** cli-table3's `style` option: its default colours only where colour is allowed. */
export function cliTableStyle(): { style?: { head: string[]; border: string[] } } {
  return colourAllowed() ? {} : { style: { head: [], border: [] } };
}
