/**
 * Per-endpoint inventory state: one record per (host, method, route shape), plain JSON so
 * that both stores keep it as is. `mergeState` is commutative and associative: the
 * accumulator folds events into deltas, and stores merge deltas into what they hold.
 */
import { createHash } from 'node:crypto';
import {
  DistinctSketch,
  type DistinctSketchJSON,
  histAdd,
  histCount,
  histMerge,
  histQuantile,
  type SizeHistogramJSON,
} from './sketch.ts';

export const MAX_PARAMS = 64;
export const MAX_STATUS_CODES = 40;
export const MAX_ROUTE_VARIANTS = 8;

export interface EndpointState {
  /** hash(host, method, route key). */
  id: string;
  host: string;
  method: string;
  /** Route template as first seen (placeholder names as the templater gave them). */
  route: string;
  /** Placeholders normalised to `{param}`: what identifies the endpoint. */
  route_key: string;
  /** Other spellings of the same shape seen (`/users/{id}` vs `/users/{param}`), bounded. */
  route_variants: string[];
  first_seen: string;
  last_seen: string;
  requests: number;
  status_classes: {
    '1xx': number;
    '2xx': number;
    '3xx': number;
    '4xx': number;
    '5xx': number;
    other: number;
  };
  /** Per status code counts, bounded to MAX_STATUS_CODES codes (then `status_overflow`). */
  status_codes: Record<string, number>;
  status_overflow: number;
  auth: {
    present: number;
    absent: number;
    unknown: number;
    anonymous_success: number;
    last_anonymous_success?: string;
  };
  /** Query parameter names seen, bounded. */
  params: string[];
  params_overflow: boolean;
  clients_estimate: number;
  keys_estimate: number;
  bytes_p50?: number;
  bytes_p95?: number;
  sketch: { clients: DistinctSketchJSON; keys: DistinctSketchJSON; bytes: SizeHistogramJSON };
}

/** Route with every `{…}` segment placeholder written `{param}`. */
export function routeKey(route: string): string {
  return route.replace(/\{[^}/]*\}/g, '{param}');
}

export function stableId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

export function endpointId(host: string, method: string, route: string): string {
  return stableId(host.toLowerCase(), method.toUpperCase(), routeKey(route));
}

export function emptyState(host: string, method: string, route: string, at: string): EndpointState {
  return {
    id: endpointId(host, method, route),
    host: host.toLowerCase(),
    method: method.toUpperCase(),
    route,
    route_key: routeKey(route),
    route_variants: [route],
    first_seen: at,
    last_seen: at,
    requests: 0,
    status_classes: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 },
    status_codes: {},
    status_overflow: 0,
    auth: { present: 0, absent: 0, unknown: 0, anonymous_success: 0 },
    params: [],
    params_overflow: false,
    clients_estimate: 0,
    keys_estimate: 0,
    sketch: { clients: { e: [] }, keys: { e: [] }, bytes: {} },
  };
}

/** One observation folded into a state (sketches are passed live for speed). */
export interface Observation {
  at: string;
  status?: number;
  authPresent?: boolean;
  client?: string;
  key?: string;
  bytes?: number;
  params?: readonly string[];
}

export class LiveState {
  readonly state: EndpointState;
  readonly clients: DistinctSketch;
  readonly keys: DistinctSketch;
  private readonly params: Set<string>;

  constructor(state: EndpointState) {
    this.state = state;
    this.clients = DistinctSketch.fromJSON(state.sketch.clients);
    this.keys = DistinctSketch.fromJSON(state.sketch.keys);
    this.params = new Set(state.params);
  }

  observe(o: Observation): void {
    const s = this.state;
    s.requests++;
    if (o.at < s.first_seen) s.first_seen = o.at;
    if (o.at > s.last_seen) s.last_seen = o.at;
    if (o.status !== undefined) {
      const cls = o.status >= 100 && o.status < 600 ? (`${Math.floor(o.status / 100)}xx` as '2xx') : 'other';
      s.status_classes[cls]++;
      addCode(s, String(o.status), 1);
    }
    const success = o.status !== undefined && o.status >= 200 && o.status < 300;
    if (o.authPresent === true) s.auth.present++;
    else if (o.authPresent === false) {
      s.auth.absent++;
      if (success) {
        s.auth.anonymous_success++;
        if (!s.auth.last_anonymous_success || o.at > s.auth.last_anonymous_success)
          s.auth.last_anonymous_success = o.at;
      }
    } else s.auth.unknown++;
    if (o.client) this.clients.add(o.client);
    if (o.key) this.keys.add(o.key);
    if (o.bytes !== undefined && o.bytes >= 0) histAdd(s.sketch.bytes, o.bytes);
    if (o.params) {
      for (const p of o.params) {
        if (this.params.has(p)) continue;
        if (this.params.size >= MAX_PARAMS) s.params_overflow = true;
        else this.params.add(p);
      }
    }
  }

  /** Write live sketches back into the JSON state and refresh derived fields. */
  seal(): EndpointState {
    const s = this.state;
    s.sketch.clients = this.clients.toJSON();
    s.sketch.keys = this.keys.toJSON();
    s.params = [...this.params].sort();
    derive(s);
    return s;
  }
}

function addCode(s: EndpointState, code: string, n: number): void {
  if (s.status_codes[code] !== undefined || Object.keys(s.status_codes).length < MAX_STATUS_CODES) {
    s.status_codes[code] = (s.status_codes[code] ?? 0) + n;
  } else s.status_overflow += n;
}

function derive(s: EndpointState): void {
  s.clients_estimate = DistinctSketch.fromJSON(s.sketch.clients).estimate();
  s.keys_estimate = DistinctSketch.fromJSON(s.sketch.keys).estimate();
  if (histCount(s.sketch.bytes) > 0) {
    s.bytes_p50 = histQuantile(s.sketch.bytes, 0.5);
    s.bytes_p95 = histQuantile(s.sketch.bytes, 0.95);
  }
}

/** Merge `b` into a copy of `a` (same endpoint id). */
export function mergeState(a: EndpointState, b: EndpointState): EndpointState {
  if (a.id !== b.id) throw new Error(`cannot merge endpoint ${a.id} with ${b.id}`);
  const out: EndpointState = structuredClone(a);
  if (b.first_seen < out.first_seen) {
    out.first_seen = b.first_seen;
    out.route = b.route;
  }
  if (b.last_seen > out.last_seen) out.last_seen = b.last_seen;
  for (const v of b.route_variants) {
    if (!out.route_variants.includes(v) && out.route_variants.length < MAX_ROUTE_VARIANTS)
      out.route_variants.push(v);
  }
  out.requests += b.requests;
  for (const k of Object.keys(out.status_classes) as (keyof EndpointState['status_classes'])[]) {
    out.status_classes[k] += b.status_classes[k];
  }
  for (const [code, n] of Object.entries(b.status_codes)) addCode(out, code, n);
  out.status_overflow += b.status_overflow;
  out.auth.present += b.auth.present;
  out.auth.absent += b.auth.absent;
  out.auth.unknown += b.auth.unknown;
  out.auth.anonymous_success += b.auth.anonymous_success;
  const lb = b.auth.last_anonymous_success;
  if (lb && (!out.auth.last_anonymous_success || lb > out.auth.last_anonymous_success)) {
    out.auth.last_anonymous_success = lb;
  }
  const params = new Set(out.params);
  for (const p of b.params) {
    if (params.has(p)) continue;
    if (params.size >= MAX_PARAMS) out.params_overflow = true;
    else params.add(p);
  }
  out.params = [...params].sort();
  out.params_overflow ||= b.params_overflow;
  out.sketch.clients = DistinctSketch.fromJSON(a.sketch.clients)
    .merge(DistinctSketch.fromJSON(b.sketch.clients))
    .toJSON();
  out.sketch.keys = DistinctSketch.fromJSON(a.sketch.keys)
    .merge(DistinctSketch.fromJSON(b.sketch.keys))
    .toJSON();
  out.sketch.bytes = histMerge(structuredClone(a.sketch.bytes), b.sketch.bytes);
  derive(out);
  return out;
}

/** Share of requests with a known auth state that carried credentials (0..1). */
export function authShare(s: EndpointState): number {
  const known = s.auth.present + s.auth.absent;
  return known === 0 ? 0 : s.auth.present / known;
}
