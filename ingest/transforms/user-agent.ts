/**
 * User-Agent parsing with ua-parser-js (v1, MIT) behind a bounded LRU: API traffic repeats a
 * small set of agents, so almost every lookup is a cache hit. Simple API clients that ua-parser
 * does not name ("curl/8.4.0", "python-requests/2.31.0", "okhttp/4.12.0") fall back to their
 * leading product token.
 */
import UAParser from 'ua-parser-js';
import type { EventDraft } from '../formats/types.ts';
import { Lru } from './lru.ts';

export interface UserAgentConfig {
  /** Disable parsing (user_agent.original is kept either way). */
  enabled?: boolean;
  /** LRU entries (default 5 000). */
  cacheSize?: number;
  /** Longest agent string parsed (longer ones are only kept as original; default 512). */
  maxLength?: number;
}

export interface UserAgentInfo {
  name?: string;
  version?: string;
  os?: { name?: string; version?: string };
  device?: { name?: string };
}

const PRODUCT_RE = /^([A-Za-z][A-Za-z0-9._-]{0,40})\/([0-9][0-9A-Za-z._-]{0,30})/;

/** Parse one agent string (uncached). */
export function parseUserAgent(ua: string): UserAgentInfo | undefined {
  const r = new UAParser(ua).getResult();
  const out: UserAgentInfo = {};
  if (r.browser.name !== undefined) {
    out.name = r.browser.name;
    if (r.browser.version !== undefined) out.version = r.browser.version;
  } else {
    const m = PRODUCT_RE.exec(ua);
    if (m && m[1] !== 'Mozilla') {
      out.name = m[1]!;
      out.version = m[2]!;
    }
  }
  if (r.os.name !== undefined)
    out.os = r.os.version === undefined ? { name: r.os.name } : { name: r.os.name, version: r.os.version };
  const device = r.device.model ?? (r.device.vendor !== undefined ? r.device.vendor : undefined);
  if (device !== undefined) out.device = { name: device };
  return out.name === undefined && out.os === undefined && out.device === undefined ? undefined : out;
}

/** The info without empty strings and empty objects (events never carry empty values). */
function withoutEmpty(info: UserAgentInfo): UserAgentInfo | undefined {
  const out: UserAgentInfo = {};
  if (info.name !== undefined && info.name !== '') out.name = info.name;
  if (info.version !== undefined && info.version !== '') out.version = info.version;
  if (info.os !== undefined) {
    const os: { name?: string; version?: string } = {};
    if (info.os.name !== undefined && info.os.name !== '') os.name = info.os.name;
    if (info.os.version !== undefined && info.os.version !== '') os.version = info.os.version;
    if (os.name !== undefined || os.version !== undefined) out.os = os;
  }
  if (info.device?.name !== undefined && info.device.name !== '') out.device = { name: info.device.name };
  return out.name === undefined &&
    out.version === undefined &&
    out.os === undefined &&
    out.device === undefined
    ? undefined
    : out;
}

export interface UserAgentEnricher {
  apply(ev: EventDraft): void;
  lookup(ua: string): UserAgentInfo | undefined;
}

export function createUserAgentEnricher(config: UserAgentConfig = {}): UserAgentEnricher {
  const enabled = config.enabled ?? true;
  const max = config.maxLength ?? 512;
  const cache = new Lru<string, UserAgentInfo | null>(config.cacheSize ?? 5_000);
  function lookup(ua: string): UserAgentInfo | undefined {
    const hit = cache.get(ua);
    if (hit !== undefined) return hit ?? undefined;
    let info: UserAgentInfo | undefined;
    try {
      info = ua.length > max ? undefined : parseUserAgent(ua);
    } catch {
      info = undefined;
    }
    if (info !== undefined) info = withoutEmpty(info);
    cache.set(ua, info ?? null);
    return info;
  }
  return {
    lookup,
    apply(ev) {
      if (!enabled) return;
      const ua = ev.user_agent?.original;
      if (ua === undefined || ua === '' || ua === '-') return;
      const info = lookup(ua);
      if (info === undefined) return;
      const u = ev.user_agent!;
      if (info.name !== undefined) u.name = info.name;
      if (info.version !== undefined) u.version = info.version;
      if (info.os !== undefined) u.os = { ...info.os };
      if (info.device !== undefined) u.device = { ...info.device };
    },
  };
}
