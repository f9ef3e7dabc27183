/**
 * The flat field catalogue: every leaf field of the event schema by its dotted ECS name,
 * with its Elasticsearch type. The rule language checks field names and types against it
 * ("did you mean `source.ip`?"), and the compilers use it to pick query forms.
 *
 * The fields are read from catalogue.json, derived from event.ts by catalogue-derive.ts
 * (`npm run schema:catalogue`; a test fails while they disagree), so that loading the
 * catalogue does not load TypeBox.
 */
import catalogue from './catalogue.json' with { type: 'json' };
import type { EsFieldType } from './fields.ts';

export interface FieldInfo {
  name: string;
  type: EsFieldType;
  array: boolean;
  indexed: boolean;
  description: string;
}

/** All event fields by dotted name. */
export const FIELDS: ReadonlyMap<string, FieldInfo> = new Map(
  (catalogue as FieldInfo[]).map((f) => [f.name, f]),
);

/** Fields under a `flattened` parent accept any sub-key (e.g. `gatewatch.extra.tenant`). */
export function lookupField(name: string): FieldInfo | undefined {
  const direct = FIELDS.get(name);
  if (direct) return direct;
  for (const info of FIELDS.values()) {
    if (info.type === 'flattened' && name.startsWith(`${info.name}.`)) {
      return { ...info, name, type: 'keyword', description: `Sub-key of ${info.name}.` };
    }
  }
  return undefined;
}

export type FieldKind = 'string' | 'number' | 'ip' | 'date' | 'boolean' | 'geo' | 'object';

/** The value kind a rule sees for an Elasticsearch type. */
export function kindOf(type: EsFieldType): FieldKind {
  switch (type) {
    case 'keyword':
    case 'match_only_text':
      return 'string';
    case 'long':
    case 'integer':
    case 'float':
    case 'double':
      return 'number';
    case 'ip':
      return 'ip';
    case 'date':
      return 'date';
    case 'boolean':
      return 'boolean';
    case 'geo_point':
      return 'geo';
    case 'flattened':
      return 'object';
  }
}

/** Read a dotted field from a nested event (arrays returned as they are). */
export function getField(event: unknown, name: string): unknown {
  let node: unknown = event;
  let rest = name;
  // '@timestamp' and other keys may contain no dot; walk segment by segment but also allow
  // keys that themselves contain dots inside flattened objects.
  while (rest.length > 0) {
    if (node === null || typeof node !== 'object') return undefined;
    const obj = node as Record<string, unknown>;
    if (rest in obj) return obj[rest];
    const dot = rest.indexOf('.');
    if (dot < 0) return undefined;
    node = obj[rest.slice(0, dot)];
    rest = rest.slice(dot + 1);
  }
  return node;
}

/** Set a dotted field on a nested event, creating intermediate objects. */
export function setField(event: Record<string, unknown>, name: string, value: unknown): void {
  const parts = name === '@timestamp' ? [name] : name.split('.');
  let node = event;
  for (let i = 0; i < parts.length - 1; i++) {
    const key = parts[i]!;
    let next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      next = {};
      node[key] = next;
    }
    node = next as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}
