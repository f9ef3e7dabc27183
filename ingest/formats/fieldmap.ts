/**
 * Declarative field maps for user-templated JSON logs (API Gateway `$context` templates, nginx
 * `log_format … escape=json`, any JSON source). A map is compiled once (cached per map object)
 * into a list of setters; applying it to a record walks only the mapped keys, then copies the
 * rest under `gatewatch.extra`.
 */
import { FIELDS } from '../../core/schema/catalogue.ts';
import type { CredentialLocation, EventDraft, FieldMap, RawRequest } from './types.ts';
import {
  anyTimeToMs,
  applyUrl,
  child,
  childList,
  dropEmptyUrl,
  finite,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  method,
  msToNs,
  num,
  type Obj,
  parseRequestLine,
  pick,
  splitHostPort,
  splitTarget,
  sToMs,
  sToNs,
  str,
  tlsVersion,
  upstreamStatus,
} from './util.ts';

type Setter = (ev: EventDraft, raw: RawRequest, v: unknown, st: MapState) => void;

/** Scratch state while applying a map (combined into the event at the end). */
interface MapState {
  ms?: number;
  target?: string;
  path?: string;
  query?: string;
}

interface Entry {
  key: string;
  nested: boolean;
  set: Setter;
}

export interface CompiledFieldMap {
  entries: Entry[];
  /** Top-level keys consumed by the map (also the first segment of nested keys). */
  consumed: Set<string>;
  /** Whether unmapped keys go to gatewatch.extra. */
  keepUnmapped: boolean;
  /** Entry index of each plain (not dotted) key: records are walked once, not probed per entry. */
  byKey: Map<string, number>;
  /** Entries read with pick() for every record (dotted keys, names Object.prototype has). */
  always: number[];
}

const cache = new WeakMap<FieldMap, CompiledFieldMap>();

/** Compile errors are reported as strings (unknown ECS field, bad special target). */
export function validateFieldMap(map: FieldMap): string[] {
  const errors: string[] = [];
  for (const [key, target] of Object.entries(map)) {
    if (setterFor(target) === undefined) errors.push(`${key}: unknown target "${target}"`);
  }
  return errors;
}

export function compileFieldMap(map: FieldMap, keepUnmapped = true): CompiledFieldMap {
  const hit = cache.get(map);
  if (hit && hit.keepUnmapped === keepUnmapped) return hit;
  const entries: Entry[] = [];
  const consumed = new Set<string>();
  for (const [key, target] of Object.entries(map)) {
    const set = setterFor(target);
    const dot = key.indexOf('.');
    consumed.add(dot < 0 ? key : key.slice(0, dot));
    if (set === undefined || target === '@extra') {
      if (target === '@extra') consumed.delete(dot < 0 ? key : key.slice(0, dot));
      continue;
    }
    entries.push({ key, nested: dot >= 0, set });
  }
  const byKey = new Map<string, number>();
  const always: number[] = [];
  entries.forEach((e, i) => {
    if (e.nested || e.key in Object.prototype) always.push(i);
    else byKey.set(e.key, i);
  });
  const compiled = { entries, consumed, keepUnmapped, byKey, always };
  cache.set(map, compiled);
  return compiled;
}

function group<K extends keyof EventDraft>(ev: EventDraft, k: K): NonNullable<EventDraft[K]> {
  let g = ev[k];
  if (g === undefined) {
    g = {} as NonNullable<EventDraft[K]>;
    ev[k] = g;
  }
  return g as NonNullable<EventDraft[K]>;
}

function httpReq(ev: EventDraft) {
  const h = child(ev, 'http');
  return child(h, 'request');
}

function httpRes(ev: EventDraft) {
  const h = child(ev, 'http');
  return child(h, 'response');
}

/** Set a dotted ECS field, given as its parts (split once when the map is compiled). */
function setPath(ev: EventDraft, parts: readonly string[], value: unknown): void {
  let node = ev as Record<string, unknown>;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    let next = node[p];
    if (!isObj(next)) {
      next = {};
      node[p] = next;
    }
    node = next as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function ecsSetter(field: string): Setter | undefined {
  const info = FIELDS.get(field);
  if (info === undefined || info.type === 'flattened' || field === '@timestamp') return undefined;
  let coerce: (v: unknown) => unknown;
  switch (info.type) {
    case 'long':
    case 'integer':
      coerce = int;
      break;
    case 'double':
    case 'float':
      coerce = num;
      break;
    case 'ip':
      coerce = ipOrUndef;
      break;
    case 'boolean':
      coerce = (v) => (typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : undefined);
      break;
    case 'date':
      coerce = (v) => {
        const ms = anyTimeToMs(v);
        return ms === undefined ? undefined : new Date(ms).toISOString();
      };
      break;
    case 'geo_point':
      return undefined;
    default:
      coerce = info.array
        ? (v) => {
            if (Array.isArray(v)) return v.map((x) => str(x)).filter((x) => x !== undefined);
            const s = str(v);
            return s === undefined ? undefined : s.split(',').map((x) => x.trim());
          }
        : str;
  }
  if (field === 'http.request.method') coerce = method;
  if (field === 'http.version') coerce = httpVersion;
  const parts = field.split('.');
  return (ev, raw, v) => {
    const c = coerce(v);
    if (c === undefined || (Array.isArray(c) && c.length === 0)) return;
    setPath(ev, parts, c);
    if (field === 'source.ip') raw.peerIp = c as string;
  };
}

function setterFor(target: string): Setter | undefined {
  if (!target.startsWith('@') && !target.startsWith('labels.') && !target.startsWith('gatewatch.extra.')) {
    return ecsSetter(target);
  }
  switch (target) {
    case '@timestamp':
      return (_ev, _raw, v, st) => {
        const ms = anyTimeToMs(v);
        if (ms !== undefined) st.ms = ms;
      };
    case '@duration_ms':
      return (ev, _raw, v) => {
        const ns = msToNs(v);
        if (ns !== undefined) group(ev, 'event').duration = ns;
      };
    case '@duration_s':
      return (ev, _raw, v) => {
        const ns = sToNs(v);
        if (ns !== undefined) group(ev, 'event').duration = ns;
      };
    case '@duration_us':
      return (ev, _raw, v) => {
        const n = num(v);
        const ns = n !== undefined && n >= 0 ? finite(Math.round(n * 1e3)) : undefined;
        if (ns !== undefined) group(ev, 'event').duration = ns;
      };
    case '@duration_ns':
      return (ev, _raw, v) => {
        const n = int(v);
        if (n !== undefined && n >= 0) group(ev, 'event').duration = n;
      };
    case '@upstream_latency_ms':
      return (ev, _raw, v) => {
        const s = str(v);
        const n = num(s?.split(',')[0]?.trim());
        if (n !== undefined && n >= 0) group(ev, 'gatewatch').upstream_latency_ms = n;
      };
    case '@upstream_latency_s':
      return (ev, _raw, v) => {
        const s = str(v);
        const n = sToMs(s?.split(',')[0]?.trim());
        if (n !== undefined) group(ev, 'gatewatch').upstream_latency_ms = n;
      };
    case '@request_line':
      return (ev, _raw, v, st) => {
        const r = parseRequestLine(str(v));
        if (r === undefined) return;
        httpReq(ev).method = r.method;
        if (r.version !== undefined) group(ev, 'http').version = r.version;
        st.target = r.target;
      };
    case '@target':
      return (_ev, _raw, v, st) => {
        const s = str(v);
        if (s !== undefined) st.target = s;
      };
    case '@path':
      return (_ev, _raw, v, st) => {
        const s = str(v);
        if (s !== undefined) st.path = s;
      };
    case '@query':
      return (_ev, _raw, v, st) => {
        const s = str(v);
        if (s !== undefined) st.query = s.charCodeAt(0) === 63 ? s.slice(1) : s;
      };
    case '@protocol':
      return (ev, _raw, v) => {
        const s = httpVersion(v);
        if (s !== undefined) group(ev, 'http').version = s;
      };
    case '@tls_version':
      return (ev, _raw, v) => {
        const s = tlsVersion(v);
        if (s !== undefined) group(ev, 'tls').version = s;
      };
    case '@route_key':
      // HTTP API routeKey: "GET /pets/{id}" or "$default".
      return (ev, _raw, v) => {
        const s = str(v);
        if (s === undefined || s.startsWith('$')) return;
        const sp = s.indexOf(' ');
        const route = sp < 0 ? s : s.slice(sp + 1);
        if (route !== '') group(ev, 'gatewatch').route = route;
      };
    case '@peer_ip':
      return (ev, raw, v) => {
        const ip = ipOrUndef(v);
        if (ip === undefined) return;
        group(ev, 'source').ip = ip;
        raw.peerIp = ip;
      };
    case '@peer_address':
      return (ev, raw, v) => {
        const s = str(v);
        if (s === undefined) return;
        const hp = splitHostPort(s);
        if (hp.host === '' && hp.port === undefined) return;
        const ip = ipOrUndef(hp.host);
        const src = group(ev, 'source');
        if (hp.host !== '') src.address = hp.host;
        if (hp.port !== undefined) src.port = hp.port;
        if (ip !== undefined) {
          src.ip = ip;
          raw.peerIp = ip;
        }
      };
    case '@forwarded_for':
      return (_ev, raw, v) => {
        const s = str(v);
        if (s !== undefined) raw.forwardedFor = s;
      };
    case '@upstream_status':
      return (ev, _raw, v) => {
        const n = upstreamStatus(v);
        if (n !== undefined) child(group(ev, 'gatewatch'), 'upstream').status_code = n;
      };
    case '@status':
      return (ev, _raw, v) => {
        const n = int(v);
        if (n !== undefined && n > 0) httpRes(ev).status_code = n;
      };
    case '@ignore':
    case '@extra':
      return () => {};
  }
  if (target.startsWith('labels.') || target.startsWith('gatewatch.extra.')) {
    const labels = target.startsWith('labels.');
    const key = target.slice(labels ? 7 : 16);
    if (key === '') return undefined;
    return (ev, _raw, v) => {
      if (labels) {
        const s = str(v);
        if (s !== undefined) child(ev, 'labels')[key] = s;
      } else if (v !== '' && v !== '-') child(child(ev, 'gatewatch'), 'extra')[key] = v;
    };
  }
  if (target.startsWith('@header:')) {
    const name = target.slice(8).toLowerCase();
    return (_ev, raw, v) => {
      const s = str(v);
      if (s === undefined) return;
      child(raw, 'headers')[name] = s;
      if (name === 'x-forwarded-for') raw.forwardedFor = s;
    };
  }
  if (target.startsWith('@credential:')) {
    const rest = target.slice(12);
    const colon = rest.indexOf(':');
    const loc = (colon < 0 ? rest : rest.slice(0, colon)) as CredentialLocation;
    if (loc !== 'header' && loc !== 'query' && loc !== 'cookie' && loc !== 'body') return undefined;
    const name = colon < 0 ? 'api_key' : rest.slice(colon + 1);
    return (_ev, raw, v) => {
      const s = str(v);
      if (s === undefined) return;
      childList(raw, 'credentials').push({ name, value: s, location: loc });
    };
  }
  return undefined;
}

/** Apply a compiled map to a parsed record. Returns the record's time in ms, if any. */
export function applyFieldMap(
  o: Obj,
  map: CompiledFieldMap,
  ev: EventDraft,
  raw: RawRequest,
): { ms?: number } {
  const st: MapState = {};
  // One walk over the record's keys finds the mapped values (and the unmapped ones); the setters
  // then run in the map's order, as if every entry had been probed in turn.
  const idx: number[] = [];
  const vals: unknown[] = [];
  let extraKeys: string[] | undefined;
  let extraVals: unknown[] | undefined;
  const { byKey, consumed, keepUnmapped } = map;
  for (const k in o) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    const i = byKey.get(k);
    if (i !== undefined) {
      idx.push(i);
      vals.push(v);
    }
    if (keepUnmapped && v !== '' && v !== '-' && !consumed.has(k)) {
      if (extraKeys === undefined) {
        extraKeys = [];
        extraVals = [];
      }
      extraKeys.push(k);
      extraVals!.push(v);
    }
  }
  for (const i of map.always) {
    const e = map.entries[i]!;
    const v = e.nested ? pick(o, e.key) : o[e.key];
    if (v === undefined || v === null) continue;
    idx.push(i);
    vals.push(v);
  }
  // insertion sort by entry index (a handful of values)
  for (let a = 1; a < idx.length; a++) {
    const i = idx[a]!;
    const v = vals[a];
    let b = a - 1;
    while (b >= 0 && idx[b]! > i) {
      idx[b + 1] = idx[b]!;
      vals[b + 1] = vals[b];
      b--;
    }
    idx[b + 1] = i;
    vals[b + 1] = v;
  }
  const entries = map.entries;
  for (let a = 0; a < idx.length; a++) entries[idx[a]!]!.set(ev, raw, vals[a], st);
  if (st.target !== undefined) {
    applyUrl(ev, splitTarget(st.target));
  } else if (st.path !== undefined) {
    applyUrl(ev, splitTarget(st.query === undefined ? st.path : `${st.path}?${st.query}`));
  }
  if (st.target !== undefined && st.query !== undefined && ev.url && ev.url.query === undefined) {
    if (st.query !== '') ev.url.query = st.query;
    ev.url.original = `${ev.url.original ?? ''}?${st.query}`;
  }
  if (st.target === '') dropEmptyUrl(ev);
  if (extraKeys !== undefined) {
    const extra = child(group(ev, 'gatewatch'), 'extra');
    for (let a = 0; a < extraKeys.length; a++) extra[extraKeys[a]!] = extraVals![a];
  }
  return st.ms === undefined ? {} : { ms: st.ms };
}
