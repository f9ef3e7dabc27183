/**
 * How the replay's worker thread hands the main thread what the rules and the inventory read of
 * each event, cheaply: instead of one JSON object per event (stringified on the worker, parsed
 * on the main thread — the costliest part of the hand-over), the projected values of a batch go
 * as columns of indexes into one JSON array of the batch's distinct values, and the main thread
 * builds each event's projection from them with generated object literals.
 *
 * What the main thread gets reads as the JSON round trip of the projection (`projector` in
 * detections/engine/evaluate.ts) did: the same value, JSON-copied, at the same path for every
 * projected field; missing values read as undefined (an object none of whose projected fields
 * the event has is left out rather than sent empty).
 */
import { projector } from '../detections/engine/evaluate.ts';

/** A batch's projected values: `idx[i * fields + k]` indexes field k of event i into `values`. */
export interface ColumnBatch {
  idx: Int32Array;
  /** JSON array of the distinct values; index 0 stands for a missing value. */
  values: string;
}

/**
 * The leaf fields of a projection on `fields`, as `projector` keeps them (a field under another
 * kept field is part of its value), each with the path it is stored at in the projection.
 */
export function columnLayout(fields: readonly string[]): { field: string; path: string[] }[] {
  const sorted = [...new Set(fields)].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  const kept: string[] = [];
  for (const f of sorted) if (!kept.some((k) => f.startsWith(`${k}.`))) kept.push(f);
  return kept.map((f) => ({ field: f, path: f === '@timestamp' || f.includes('@') ? [f] : f.split('.') }));
}

/** Reads the leaves of a projection in layout order (undefined when missing). */
function leafReader(layout: { path: string[] }[]): (p: unknown, out: unknown[]) => void {
  const body = layout
    .map(({ path }, k) => {
      // walk the path; a missing or non-object step reads undefined
      let src = 'p';
      const steps: string[] = [];
      for (let j = 0; j < path.length - 1; j++) {
        const v = `a${k}_${j}`;
        steps.push(
          `const ${v} = ${src} !== null && typeof ${src} === 'object' ? ${src}[${JSON.stringify(path[j])}] : undefined;`,
        );
        src = v;
      }
      const last = JSON.stringify(path[path.length - 1]);
      return `${steps.join(' ')} out[${k}] = ${src} !== null && typeof ${src} === 'object' ? ${src}[${last}] : undefined;`;
    })
    .join('\n');
  return new Function('p', 'out', body) as (p: unknown, out: unknown[]) => void;
}

/** On the worker: events → columns of their projection on `fields`. */
export function columnEncoder(fields: readonly string[]): (events: readonly unknown[]) => ColumnBatch {
  const layout = columnLayout(fields);
  const project = projector(fields);
  const read = leafReader(layout);
  const F = layout.length;
  const leaves: unknown[] = new Array(F);
  return (events) => {
    const idx = new Int32Array(events.length * F);
    const values: unknown[] = [null];
    const seen = new Map<unknown, number>();
    let o = 0;
    for (let i = 0; i < events.length; i++) {
      read(project(events[i]), leaves);
      for (let k = 0; k < F; k++) {
        const v = leaves[k];
        if (v === undefined) {
          idx[o++] = 0;
        } else if (v !== null && typeof v === 'object') {
          // objects and arrays are not shared between events
          idx[o++] = values.push(v) - 1;
        } else {
          let j = seen.get(v);
          if (j === undefined) {
            j = values.push(v) - 1;
            seen.set(v, j);
          }
          idx[o++] = j;
        }
      }
    }
    return { idx, values: JSON.stringify(values) };
  };
}

interface Node {
  key: string;
  leaf?: number;
  children: Node[];
}

/**
 * On the main thread: columns → one object per event holding the projection, and (with
 * `flat`) a second object per event with those dotted fields as keys, read from the projection
 * as `InventoryAccumulator` reads nested events (so it finds them without walking).
 */
export function columnDecoder(
  fields: readonly string[],
  flat?: readonly string[],
): (batch: ColumnBatch) => { events: unknown[]; flat?: Record<string, unknown>[] } {
  const layout = columnLayout(fields);
  const F = layout.length;
  const root: Node = { key: '', children: [] };
  layout.forEach(({ path }, k) => {
    let node = root;
    path.forEach((part, j) => {
      let next = node.children.find((c) => c.key === part);
      if (!next) {
        next = { key: part, children: [] };
        node.children.push(next);
      }
      if (j === path.length - 1) next.leaf = k;
      node = next;
    });
  });
  const leaves = (node: Node): number[] =>
    node.leaf !== undefined ? [node.leaf] : node.children.flatMap((c) => leaves(c));
  // an object none of whose fields the event has is left out (as the projection does when the
  // event has no such object), so readers do not look for dotted keys in it
  const literal = (node: Node): string =>
    `{ ${node.children
      .map(
        (c) =>
          `${JSON.stringify(c.key)}: ${
            c.leaf !== undefined
              ? `v[x[b + ${c.leaf}]]`
              : `(${leaves(c)
                  .map((k) => `x[b + ${k}]`)
                  .join(' | ')}) === 0 ? undefined : ${literal(c)}`
          }`,
      )
      .join(', ')} }`;
  const build = new Function('v', 'x', 'b', `return ${literal(root)};`) as (
    v: unknown[],
    x: Int32Array,
    b: number,
  ) => unknown;
  const flatBuild =
    flat &&
    (new Function(
      'e',
      `${flat
        .map((f, i) => {
          // as InventoryAccumulator's get: a key named like the field, else the nested walk
          const parts = f.split('.');
          let src = 'e';
          const steps: string[] = [];
          for (const part of parts) {
            const v = `s${i}_${steps.length}`;
            steps.push(
              `const ${v} = ${src} !== null && typeof ${src} === 'object' ? ${src}[${JSON.stringify(part)}] : undefined;`,
            );
            src = v;
          }
          const key = JSON.stringify(f);
          return `let f${i}; if (${key} in e) f${i} = e[${key}]; else { ${steps.join(' ')} f${i} = ${src}; }`;
        })
        .join('\n')}
      return { ${flat.map((f, i) => `${JSON.stringify(f)}: f${i}`).join(', ')} };`,
    ) as (e: unknown) => Record<string, unknown>);
  return (batch) => {
    const values = JSON.parse(batch.values) as unknown[];
    values[0] = undefined;
    const x = batch.idx;
    const n = x.length / F;
    const events: unknown[] = new Array(n);
    for (let i = 0; i < n; i++) events[i] = build(values, x, i * F);
    if (!flatBuild) return { events };
    const out: Record<string, unknown>[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = flatBuild(events[i]);
    return { events, flat: out };
  };
}
