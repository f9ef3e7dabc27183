/**
 * Reading and normalising event values the way Elasticsearch sees them: dotted field access,
 * per-type canonical forms (IP addresses as Elasticsearch prints them, dates as epoch ms),
 * multi-valued fields as lists.
 */
import ipaddr from 'ipaddr.js';
import type { FieldKind } from '../../core/schema/catalogue.ts';
import { getField, kindOf, lookupField } from '../../core/schema/catalogue.ts';

export type Accessor = (event: unknown) => unknown;

const accessors = new Map<string, Accessor>();

/**
 * Whether a field is read by walking nested objects along its dotted name: a catalogue field
 * under its own name, not flattened, without '@'. Others (flattened sub-keys, '@' names) go
 * through getField.
 */
export function isNestedPath(field: string): boolean {
  if (field === '@timestamp' || field.includes('@')) return false;
  const info = lookupField(field);
  return info !== undefined && info.name === field && info.type !== 'flattened';
}

/** A fast reader for a dotted field (nested objects; flattened sub-keys via getField). */
export function accessor(field: string): Accessor {
  const cached = accessors.get(field);
  if (cached) return cached;
  let fn: Accessor;
  if (field === '@timestamp') fn = (e) => (e as Record<string, unknown>)['@timestamp'];
  else if (!isNestedPath(field)) {
    fn = (e) => getField(e, field);
  } else {
    const parts = field.split('.');
    fn = (e) => {
      let node: unknown = e;
      for (let i = 0; i < parts.length; i++) {
        if (node === null || typeof node !== 'object') return undefined;
        node = (node as Record<string, unknown>)[parts[i]!];
      }
      return node === undefined ? getField(e, field) : node;
    };
  }
  accessors.set(field, fn);
  return fn;
}

export function fieldKind(field: string): FieldKind {
  const info = lookupField(field);
  if (!info) return 'string';
  // flattened sub-keys are keywords
  if (info.type === 'flattened') return 'string';
  return kindOf(info.type);
}

/** Non-missing values of a field (arrays flattened one level, null dropped). */
export function valuesOf(raw: unknown): unknown[] {
  if (raw === undefined || raw === null) return EMPTY;
  if (Array.isArray(raw)) return raw.filter((v) => v !== null && v !== undefined);
  return [raw];
}
const EMPTY: unknown[] = [];

const ipCanon = new Map<string, string | null>();

/** The address as Elasticsearch prints an `ip` value (IPv4-mapped IPv6 as IPv4, RFC 5952). */
export function canonicalIp(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const hit = ipCanon.get(value);
  if (hit !== undefined) return hit;
  let out: string | null = null;
  try {
    const addr = ipaddr.parse(value);
    if (addr.kind() === 'ipv6') {
      const v6 = addr as ipaddr.IPv6;
      out = v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toRFC5952String();
    } else out = addr.toString();
  } catch {
    out = null;
  }
  if (ipCanon.size > 200_000) ipCanon.clear();
  ipCanon.set(value, out);
  return out;
}

/** 16 bytes (IPv4 as IPv4-mapped IPv6), as Elasticsearch indexes `ip`. */
export function ipBytes(value: string): number[] | null {
  try {
    const addr = ipaddr.parse(value);
    const v6 = addr.kind() === 'ipv4' ? (addr as ipaddr.IPv4).toIPv4MappedAddress() : (addr as ipaddr.IPv6);
    return v6.toByteArray();
  } catch {
    return null;
  }
}

export interface Cidr {
  bytes: number[];
  bits: number;
}

export function parseCidr(text: string): Cidr {
  const [addr, len] = ipaddr.parseCIDR(text);
  if (addr.kind() === 'ipv4') {
    return { bytes: (addr as ipaddr.IPv4).toIPv4MappedAddress().toByteArray(), bits: 96 + len };
  }
  return { bytes: (addr as ipaddr.IPv6).toByteArray(), bits: len };
}

export function inCidr(bytes: number[], cidr: Cidr): boolean {
  let bits = cidr.bits;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i]! ^ cidr.bytes[i]!) & mask) !== 0) return false;
  }
  return true;
}

/** Epoch ms of a date value (ISO string or number), NaN when unreadable. */
export function dateMs(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Date.parse(value);
  return Number.NaN;
}

/**
 * The canonical value used for equality, group keys and distinct counts: strings for
 * keywords, numbers, booleans, canonical IP strings, epoch ms for dates. `undefined` when the
 * value cannot be read as the field's type (Elasticsearch would have rejected or ignored it).
 */
export function canonicalValue(kind: FieldKind, v: unknown): string | number | boolean | undefined {
  switch (kind) {
    case 'string':
      return typeof v === 'string'
        ? v
        : typeof v === 'number' || typeof v === 'boolean'
          ? String(v)
          : undefined;
    case 'number':
      return typeof v === 'number'
        ? v
        : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))
          ? Number(v)
          : undefined;
    case 'boolean':
      return typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : undefined;
    case 'ip':
      return canonicalIp(v) ?? undefined;
    case 'date': {
      const ms = dateMs(v);
      return Number.isNaN(ms) ? undefined : ms;
    }
    default:
      return undefined;
  }
}

/** Canonical values of a field on an event (distinct, in order of appearance). */
export function canonicalValues(kind: FieldKind, raw: unknown): (string | number | boolean)[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    const c = canonicalValue(kind, raw);
    return c === undefined ? [] : [c];
  }
  const out: (string | number | boolean)[] = [];
  for (const v of raw) {
    if (v === null || v === undefined) continue;
    const c = canonicalValue(kind, v);
    if (c !== undefined && !out.includes(c)) out.push(c);
  }
  return out;
}

/** Group key from values in key order: canonical JSON. */
export function groupKeyOf(values: readonly (string | number | boolean | null)[]): string {
  return JSON.stringify(values);
}

/** Order events by (@timestamp, event.id). */
export function compareOrder(aTs: number, aId: string, bTs: number, bId: string): number {
  if (aTs !== bTs) return aTs - bTs;
  return aId < bId ? -1 : aId > bId ? 1 : 0;
}
