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
import { getField } from '../core/schema/catalogue.ts';
import { accessor, isNestedPath } from '../detections/engine/values.ts';

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

/**
 * Reads, in layout order, the value each field has in the projection `projector(fields)` would
 * build (undefined when it would be missing), without building it: catalogue fields by walking
 * nested objects (a missing or non-object parent reads undefined; a missing leaf under an
 * object parent falls back to `getField`), the others (flattened sub-keys, names with '@')
 * through `accessor` — as the projector does.
 */
function leafReader(layout: { field: string; path: string[] }[]): (e: unknown, out: unknown[]) => void {
  const special: ((e: unknown) => unknown)[] = [];
  const lines: string[] = [];
  const parents = new Map<string, string>();
  const parent = (parts: string[]): string => {
    if (parts.length === 0) return 'e';
    const key = parts.join('.');
    let v = parents.get(key);
    if (v === undefined) {
      const up = parent(parts.slice(0, -1));
      v = `p${parents.size}`;
      parents.set(key, v);
      const raw = `${up} === undefined ? undefined : ${up}[${JSON.stringify(parts[parts.length - 1])}]`;
      lines.push(
        `const ${v}r = ${raw}; const ${v} = ${v}r !== null && typeof ${v}r === 'object' ? ${v}r : undefined;`,
      );
    }
    return v;
  };
  layout.forEach(({ field: f }, k) => {
    // Generated code names the path's parts literally: plain characters only.
    const plain = isNestedPath(f) && /^[A-Za-z0-9_.]+$/.test(f);
    if (!plain) {
      special.push(accessor(f));
      lines.push(`out[${k}] = special[${special.length - 1}](e);`);
      return;
    }
    const parts = f.split('.');
    const up = parent(parts.slice(0, -1));
    const leaf = `${up}[${JSON.stringify(parts[parts.length - 1])}]`;
    lines.push(
      `{ const v = ${up} === undefined ? undefined : ${leaf}; out[${k}] = v === undefined && ${up} !== undefined ? getField(e, ${JSON.stringify(f)}) : v; }`,
    );
  });
  return new Function('getField', 'special', `return (e, out) => { ${lines.join('\n')} };`)(
    getField,
    special,
  ) as (e: unknown, out: unknown[]) => void;
}

/** On the worker: events, one at a time (so none is kept alive longer), → columns of a batch. */
export interface ColumnEncoder {
  add(event: unknown): void;
  /** The columns of the events added since the last `end`. */
  end(): ColumnBatch;
  /** `add` each, then `end`. */
  encode(events: readonly unknown[]): ColumnBatch;
}

export function columnEncoder(fields: readonly string[]): ColumnEncoder {
  const layout = columnLayout(fields);
  const read = leafReader(layout);
  const F = layout.length;
  const leaves: unknown[] = new Array(F);
  // Per field, whether its values repeat enough to be worth looking up (decided on the last
  // batch: ids and times never repeat); either way each event reads the same value.
  const share: boolean[] = new Array(F).fill(true);
  let idx = new Int32Array(2048 * F);
  let o = 0;
  let values: unknown[] = [null];
  let seen: Map<unknown, number>[] = layout.map(() => new Map());
  const fresh = new Int32Array(F);
  const self: ColumnEncoder = {
    add(event) {
      read(event, leaves);
      if (o + F > idx.length) {
        const grown = new Int32Array(idx.length * 2);
        grown.set(idx);
        idx = grown;
      }
      for (let k = 0; k < F; k++) {
        const v = leaves[k];
        if (v === undefined) {
          idx[o++] = 0;
        } else if ((v !== null && typeof v === 'object') || !share[k]) {
          // objects and arrays are not shared between events
          idx[o++] = values.push(v) - 1;
        } else {
          const m = seen[k]!;
          let j = m.get(v);
          if (j === undefined) {
            j = values.push(v) - 1;
            m.set(v, j);
            fresh[k] = fresh[k]! + 1;
          }
          idx[o++] = j;
        }
      }
    },
    end() {
      const n = o / F;
      for (let k = 0; k < F; k++) if (share[k]) share[k] = fresh[k]! < n / 2;
      const out = { idx: idx.slice(0, o), values: JSON.stringify(values) };
      o = 0;
      values = [null];
      seen = layout.map(() => new Map());
      fresh.fill(0);
      return out;
    },
    encode(events) {
      for (const e of events) self.add(e);
      return self.end();
    },
  };
  return self;
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
