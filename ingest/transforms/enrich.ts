/**
 * The composed enrichment pipeline: client IP → identity → redaction → route template →
 * user agent → GeoIP/ASN → deterministic id, source fields, labels; then undefined values and
 * empty objects are pruned so the event fits the strict index mapping.
 */
import { createHash, createHmac } from 'node:crypto';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { EventDraft, RawRequest } from '../formats/types.ts';
import { child } from '../formats/util.ts';
import { type ClientIpConfig, createClientIpResolver } from './client-ip.ts';
import { createGeoEnricher, type GeoConfig, type GeoEnricher } from './geo.ts';
import { createIdentityResolver, type IdentityConfig } from './identity.ts';
import { createRedactor, type RedactionConfig } from './redact.ts';
import { type RouteConfig, RouteLearner } from './route.ts';
import { createUserAgentEnricher, type UserAgentConfig, type UserAgentEnricher } from './user-agent.ts';

export interface EnricherConfig {
  /** Configured source name: part of event.id and gatewatch.source.name. */
  sourceName: string;
  /** Keep the (redacted) original record in event.original (default true). */
  keepOriginal?: boolean;
  clientIp?: ClientIpConfig;
  identity?: IdentityConfig;
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

export type Enricher = (event: EventDraft, raw: RawRequest) => GatewatchEvent;

/**
 * Deterministic event id: sha256 (or HMAC-SHA256 when a key is given) of source name and the
 * original record, truncated to 128 bits, base64url (22 characters).
 */
export function eventId(sourceName: string, original: string, key?: string | Uint8Array): string {
  const h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  return h.update(sourceName).update('\n').update(original).digest('base64url').slice(0, 22);
}

/** Remove undefined values, empty arrays and empty objects (in place). Returns whether empty. */
export function prune(o: Record<string, unknown>): boolean {
  let empty = true;
  for (const k in o) {
    const v = o[k];
    if (v === undefined || v === null) delete o[k];
    else if (Array.isArray(v)) {
      if (v.length === 0) delete o[k];
      else empty = false;
    } else if (typeof v === 'object') {
      if (prune(v as Record<string, unknown>)) delete o[k];
      else empty = false;
    } else if ((typeof v === 'number' && !Number.isFinite(v)) || v === '') delete o[k];
    else empty = false;
  }
  return empty;
}

export function createEnricher(config: EnricherConfig): Enricher {
  const keepOriginal = config.keepOriginal ?? true;
  const clientIp = createClientIpResolver(config.clientIp);
  const identity = createIdentityResolver(config.identity);
  const redactor = createRedactor(config.redaction);
  const learner =
    config.route === false ? undefined : (config.route?.learner ?? new RouteLearner(config.route ?? {}));
  const shared = config.shared ?? createSharedEnrichment({ userAgent: config.userAgent, geo: config.geo });
  const idKey = config.identity?.fingerprintSecret;
  const labels = config.labels;
  const tags = config.tags;
  const sourceName = config.sourceName;

  return (ev, raw) => {
    const evt = child(ev, 'event');
    const original = evt.original;
    if (original !== undefined) evt.id ??= eventId(sourceName, original, idKey);

    clientIp.apply(ev, raw);
    identity.apply(ev, raw);
    const redacted = redactor.apply(ev, raw, original);
    if (keepOriginal && redacted !== undefined) evt.original = redacted;
    else delete evt.original;

    if (learner !== undefined && ev.gatewatch?.route === undefined) {
      const path = ev.url?.path;
      if (path !== undefined) child(ev, 'gatewatch').route = learner.template(path, ev.url?.domain);
    }
    shared.userAgent.apply(ev);
    shared.geo.apply(ev);

    const gw = child(ev, 'gatewatch');
    const src = child(gw, 'source');
    src.name = sourceName;
    if (evt.dataset !== undefined) src.format ??= evt.dataset;
    if (labels !== undefined) ev.labels = { ...labels, ...ev.labels };
    if (tags !== undefined) ev.tags = ev.tags === undefined ? [...tags] : [...ev.tags, ...tags];
    prune(ev as Record<string, unknown>);
    return ev as GatewatchEvent;
  };
}
