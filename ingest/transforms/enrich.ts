/**
 * The composed enrichment pipeline: client IP → identity → redaction → route template and
 * resource → authentication attempt → user agent → GeoIP/ASN → client network → deterministic
 * id, source fields, labels; then undefined values and empty objects are pruned so the event
 * fits the strict index mapping.
 */
import { hash } from 'node:crypto';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { EventDraft, RawRequest } from '../formats/types.ts';
import { type AuthConfig, createAuthClassifier } from './auth.ts';
import { type ClientIpConfig, createClientIpResolver } from './client-ip.ts';
import { createGeoEnricher, type GeoConfig, type GeoEnricher } from './geo.ts';
import { createIdentityResolver, type IdentityConfig } from './identity.ts';
import { applyNetwork } from './network.ts';
import { createRedactor, type RedactionConfig } from './redact.ts';
import { applyResource } from './resource.ts';
import { type RouteConfig, RouteLearner } from './route.ts';
import { dropFingerprints, mayHoldSurrogate, SURROGATE_LENGTH } from './surrogate.ts';
import { createUserAgentEnricher, type UserAgentConfig, type UserAgentEnricher } from './user-agent.ts';

export interface EnricherConfig {
  /** Configured source name: part of event.id and gatewatch.source.name. */
  sourceName: string;
  /** Keep the (redacted) original record in event.original (default true). */
  keepOriginal?: boolean;
  clientIp?: ClientIpConfig;
  identity?: IdentityConfig;
  /** What counts as an authentication attempt and its outcome for this source. */
  auth?: AuthConfig;
  redaction?: RedactionConfig;
  /** Route templating; `false` disables it. A shared `learner` may be passed. */
  route?: (RouteConfig & { learner?: RouteLearner }) | false;
  userAgent?: UserAgentConfig;
  geo?: GeoConfig;
  /** Labels and tags added to every event of the source. */
  labels?: Record<string, string>;
  tags?: string[];
  /**
   * Caches that may be shared by the enrichers of several sources (user agents, GeoIP readers).
   * Create them once with `createSharedEnrichment`.
   */
  shared?: SharedEnrichment;
}

export interface SharedEnrichment {
  userAgent: UserAgentEnricher;
  geo: GeoEnricher;
}

export function createSharedEnrichment(
  config: { userAgent?: UserAgentConfig; geo?: GeoConfig } = {},
): SharedEnrichment {
  return { userAgent: createUserAgentEnricher(config.userAgent), geo: createGeoEnricher(config.geo) };
}

/**
 * Enrich a parsed event in place and return it. `dataset` and `original` (the format id and the
 * record as received) are set as `event.dataset`, `event.original` and `gatewatch.source.format`
 * first, when given.
 */
export type Enricher = (
  event: EventDraft,
  raw: RawRequest,
  dataset?: string,
  original?: string,
) => GatewatchEvent;

/**
 * Deterministic event id: SHA-256 of (key, source name, original record), truncated to 128 bits,
 * base64url (22 characters). The record is the scrubbed one (ingest/transforms/scrub.ts: the
 * same text whether a receiver or the normaliser scrubbed it), whose surrogates carry keyed
 * fingerprints: records that differ only in a secret keep distinct ids. With a key (the
 * fingerprint secret) the id cannot be used to brute-force a short secret that was redacted out
 * of the stored original.
 */
export function eventId(sourceName: string, original: string, key?: string | Uint8Array): string {
  return eventIdWithPrefix(eventIdPrefix(sourceName, key), original);
}

function eventIdPrefix(sourceName: string, key?: string | Uint8Array): string {
  const k = key === undefined ? '' : typeof key === 'string' ? key : Buffer.from(key).toString('base64');
  return `${k}\u0000${sourceName}\n`;
}

function eventIdWithPrefix(prefix: string, original: string): string {
  return hash('sha256', prefix + original, 'base64url').slice(0, 22);
}

/**
 * A copy without undefined/null values, empty strings, non-finite numbers, empty arrays and
 * empty objects; undefined when nothing is left. Copying (rather than deleting in place) keeps
 * the objects in V8's fast mode.
 */
export function clean(o: Record<string, unknown>): Record<string, unknown> | undefined {
  // Object.values reads the fields in one builtin call, with no megamorphic keyed load per key;
  // the keys are fetched only for a nested object (extra/labels are kept as given) or a copy.
  // Subtrees that need no change are returned as they are (no copy, no allocation).
  const vals = Object.values(o);
  let keys: string[] | undefined;
  let out: Record<string, unknown> | undefined;
  let kept = 0;
  for (let i = 0; i < vals.length; i++) {
    const v = vals[i];
    let nv: unknown = v;
    if (v === undefined || v === null || v === '') nv = undefined;
    else if (typeof v === 'object') {
      if (Array.isArray(v)) {
        if (v.length === 0) nv = undefined;
      } else {
        keys ??= Object.keys(o);
        const k = keys[i]!;
        // flattened fields (gatewatch.extra, labels) are kept as the source gave them
        nv =
          k === 'extra' || k === 'labels'
            ? shallow(v as Record<string, unknown>)
            : clean(v as Record<string, unknown>);
      }
    } else if (typeof v === 'number' && !Number.isFinite(v)) nv = undefined;
    if ((nv === undefined || nv !== v) && out === undefined) {
      keys ??= Object.keys(o);
      out = {};
      for (let j = 0; j < i; j++) {
        const vj = vals[j];
        if (vj !== undefined) out[keys[j]!] = vj;
      }
    }
    if (nv !== undefined) {
      kept++;
      if (out !== undefined) out[keys![i]!] = nv;
    }
  }
  if (kept === 0) return undefined;
  return out ?? o;
}

function shallow(o: Record<string, unknown>): Record<string, unknown> | undefined {
  const vals = Object.values(o);
  for (let i = 0; i < vals.length; i++) if (vals[i] !== undefined) return o;
  return undefined;
}

/** dropFingerprints on a string that is long enough to hold a surrogate. */
function dropped(v: string): string {
  return v.length < SURROGATE_LENGTH ? v : dropFingerprints(v);
}

/** dropFingerprints on every string of a JSON value (gatewatch.extra, labels), in place. */
function dropFingerprintsDeep(o: Record<string, unknown> | unknown[], depth: number): void {
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = (o as Record<string, unknown>)[k];
    if (typeof v === 'string') {
      const d = dropped(v);
      if (d !== v) (o as Record<string, unknown>)[k] = d;
    } else if (typeof v === 'object' && v !== null && depth < 8)
      dropFingerprintsDeep(v as Record<string, unknown>, depth + 1);
  }
}

/**
 * Surrogates replaced by the plain marker in the fields that hold text of the record: the
 * original, the URL, the referrer, the user agent, the user name, error messages, and whatever
 * the format kept under gatewatch.extra, labels and tags (the other fields are typed values the
 * formats derive: addresses, numbers, enumerations). A walk over every object of the event cost
 * a fifth of a worker's time: its objects have dozens of shapes.
 */
function dropFingerprintsIn(ev: EventDraft): void {
  const e = ev.event;
  if (e?.original !== undefined) e.original = dropped(e.original);
  const u = ev.url;
  if (u !== undefined) {
    if (u.original !== undefined) u.original = dropped(u.original);
    if (u.path !== undefined) u.path = dropped(u.path);
    if (u.query !== undefined) u.query = dropped(u.query);
  }
  const request = ev.http?.request;
  if (request?.referrer !== undefined) request.referrer = dropped(request.referrer);
  const ua = ev.user_agent;
  if (ua?.original !== undefined) ua.original = dropped(ua.original);
  const user = ev.user;
  if (user?.name !== undefined) user.name = dropped(user.name);
  const error = ev.error;
  if (error?.message !== undefined) error.message = dropped(error.message);
  const extra = ev.gatewatch?.extra;
  if (extra !== undefined) dropFingerprintsDeep(extra, 0);
  if (ev.labels !== undefined) dropFingerprintsDeep(ev.labels, 0);
  if (ev.tags !== undefined) dropFingerprintsDeep(ev.tags, 0);
}

export function createEnricher(config: EnricherConfig): Enricher {
  const keepOriginal = config.keepOriginal ?? true;
  const clientIp = createClientIpResolver(config.clientIp);
  const identity = createIdentityResolver(config.identity);
  const redactor = createRedactor(config.redaction);
  const auth = createAuthClassifier(config.auth);
  const learner =
    config.route === false ? undefined : (config.route?.learner ?? new RouteLearner(config.route ?? {}));
  const shared = config.shared ?? createSharedEnrichment({ userAgent: config.userAgent, geo: config.geo });
  const idKey = config.identity?.fingerprintSecret;
  const labels = config.labels;
  const tags = config.tags;
  const sourceName = config.sourceName;
  const idPrefix = eventIdPrefix(sourceName, idKey);

  // Formats and the transforms above build events without undefined, null or empty values,
  // so no cleaning copy is needed; only an empty redaction marker can leave empty strings.
  const needsClean = config.redaction?.marker === '';

  return (ev, raw, dataset, original0) => {
    let evt = ev.event;
    let gw = ev.gatewatch;
    if (dataset !== undefined) {
      // A parsed record: event.dataset/original and gatewatch.source.format come first.
      if (evt === undefined) {
        evt = {};
        ev.event = evt;
      }
      evt.dataset = dataset;
      if (original0 !== undefined) evt.original = original0;
      if (gw === undefined) {
        gw = {};
        ev.gatewatch = gw;
      }
      // gatewatch.source is complete now: nothing below touches it in this path
      const s = gw.source;
      if (s === undefined)
        gw.source = sourceName === '' ? { format: dataset } : { format: dataset, name: sourceName };
      else {
        s.format = dataset;
        if (sourceName !== '') s.name = sourceName;
      }
    } else if (evt === undefined) {
      evt = {};
      ev.event = evt;
    }
    const original = original0 ?? evt.original;
    if (original !== undefined) evt.id ??= eventIdWithPrefix(idPrefix, original);

    clientIp.apply(ev, raw, gw);
    if (gw === undefined) gw = ev.gatewatch;
    identity.apply(ev, raw, gw);
    gw ??= ev.gatewatch!;
    const redacted = redactor.apply(ev, raw, original, gw);
    if (keepOriginal && redacted !== undefined && redacted !== '') evt.original = redacted;
    else delete evt.original;
    // Fields parsed from a scrubbed record may hold surrogates: what is stored keeps the plain
    // marker only (identity has taken the fingerprints it needs by now).
    if (original !== undefined && mayHoldSurrogate(original)) dropFingerprintsIn(ev);

    const url = ev.url;
    if (learner !== undefined && gw.route === undefined) {
      const path = url?.path;
      if (path !== undefined) gw.route = learner.template(path, url!.domain);
    }
    applyResource(ev);
    auth.apply(ev);
    shared.userAgent.apply(ev);
    shared.geo.apply(ev);
    applyNetwork(ev);

    if (dataset === undefined) {
      let src = gw.source;
      if (src === undefined) {
        src = {};
        gw.source = src;
      }
      if (sourceName !== '') src.name = sourceName;
      if (evt.dataset !== undefined) src.format ??= evt.dataset;
    }
    if (labels !== undefined) {
      const merged = { ...labels, ...ev.labels };
      if (shallow(merged) !== undefined) ev.labels = merged;
      else delete ev.labels;
    }
    if (tags !== undefined) {
      const merged = ev.tags === undefined ? [...tags] : [...ev.tags, ...tags];
      if (merged.length > 0) ev.tags = merged;
    }
    if (needsClean) return (clean(ev as Record<string, unknown>) ?? {}) as GatewatchEvent;
    return ev as GatewatchEvent;
  };
}
