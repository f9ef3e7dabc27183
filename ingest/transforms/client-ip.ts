/**
 * Real client IP: walk the chain "X-Forwarded-For entries…, socket peer" from right to left,
 * skipping addresses of trusted proxies (per-source CIDRs); the first untrusted address is the
 * client. With no trusted proxies the peer itself is the client (XFF is never believed blindly).
 * The peer and the raw header are kept in `gatewatch.client.*`.
 */
import ipaddr from 'ipaddr.js';
import type { EventDraft, RawRequest } from '../formats/types.ts';
import { canonicalIPv4, child } from '../formats/util.ts';
import { Lru } from './lru.ts';

export interface ClientIpConfig {
  /** CIDRs (or single addresses) of proxies in front of this source whose XFF entries are believed. */
  trustedProxies?: string[];
  /** Also trust loopback, RFC 1918, CGNAT, link-local and IPv6 ULA addresses. Default false. */
  trustPrivate?: boolean;
  /** Cache size for per-address trust decisions (default 10 000). */
  cacheSize?: number;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

const PRIVATE = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '127.0.0.0/8',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
];

/** Parse an address as it appears in logs: strips brackets, ports, zone ids; IPv4-mapped → IPv4. */
export function parseAddress(s: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  let t = s.trim();
  if (t === '' || t === '-' || t === 'unknown') return undefined;
  if (t.charCodeAt(0) === 91) {
    const close = t.indexOf(']');
    if (close < 0) return undefined;
    t = t.slice(1, close);
  } else {
    const colon = t.indexOf(':');
    if (colon > 0 && colon === t.lastIndexOf(':') && t.indexOf('.') > 0) t = t.slice(0, colon); // v4:port
  }
  const pct = t.indexOf('%');
  if (pct > 0) t = t.slice(0, pct);
  if (!ipaddr.isValid(t)) return undefined;
  try {
    const a = ipaddr.parse(t);
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress())
      return (a as ipaddr.IPv6).toIPv4Address();
    // ipaddr accepts "1", "1.2" and octal/hex forms as IPv4; only dotted quads are addresses here.
    if (a.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(t)) return undefined;
    return a;
  } catch {
    return undefined;
  }
}

export { canonicalIPv4 };

function parseRanges(list: readonly string[]): Range[] {
  const out: Range[] = [];
  for (const entry of list) {
    const s = entry.trim();
    try {
      if (s.includes('/')) out.push(ipaddr.parseCIDR(s) as Range);
      else {
        const a = parseAddress(s);
        if (a === undefined) throw new Error('not an address');
        out.push([a, a.kind() === 'ipv4' ? 32 : 128]);
      }
    } catch {
      throw new Error(`invalid trusted proxy "${entry}" (expected an IP address or CIDR)`);
    }
  }
  return out;
}

export interface ClientIpResolver {
  /**
   * Resolve the client address of a request; sets `source.ip` and `gatewatch.client.*`.
   * `gw` is the event's `gatewatch` object when the caller already holds it.
   */
  apply(ev: EventDraft, raw: RawRequest, gw?: NonNullable<EventDraft['gatewatch']>): void;
  /** The client from a peer and an XFF value (exposed for tests and other callers). */
  resolve(peer: string | undefined, forwardedFor: string | undefined): string | undefined;
}

export function createClientIpResolver(config: ClientIpConfig = {}): ClientIpResolver {
  const ranges = parseRanges([...(config.trustedProxies ?? []), ...(config.trustPrivate ? PRIVATE : [])]);
  const cache = new Lru<string, { trusted: boolean; address: string } | null>(config.cacheSize ?? 10_000);
  // IPv4 ranges as [network, mask] over unsigned 32-bit numbers, for canonical dotted quads.
  const v4Ranges: [number, number][] = [];
  for (const [net, bits] of ranges) {
    if (net.kind() !== 'ipv4') continue;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    const base = (net as ipaddr.IPv4).octets.reduce((a, o) => a * 256 + o, 0);
    v4Ranges.push([(base & mask) >>> 0, mask]);
  }

  /** Whether the address last returned by classify() is a trusted proxy. */
  let trustedLast = false;

  /**
   * Normalised address of an entry (sets `trustedLast`), or null when it is not an address.
   * Canonical dotted quads are their own normalised form: no cache entry, no new string.
   */
  function classify(entry: string): string | null {
    const v4 = canonicalIPv4(entry);
    if (v4 >= 0) {
      trustedLast = false;
      for (let i = 0; i < v4Ranges.length; i++) {
        const r = v4Ranges[i]!;
        if ((v4 & r[1]) >>> 0 === r[0]) {
          trustedLast = true;
          break;
        }
      }
      return entry;
    }
    let hit = cache.get(entry);
    if (hit === undefined) {
      const a = parseAddress(entry);
      hit = null;
      if (a !== undefined) {
        let trusted = false;
        for (const [net, bits] of ranges) {
          if (net.kind() === a.kind() && a.match(net, bits)) {
            trusted = true;
            break;
          }
        }
        hit = { trusted, address: a.toString() };
      }
      cache.set(entry, hit);
    }
    if (hit === null) return null;
    trustedLast = hit.trusted;
    return hit.address;
  }

  function resolve(peer: string | undefined, xff: string | undefined): string | undefined {
    if (peer === undefined) return resolveFrom(undefined, xff);
    const c = classify(peer);
    if (c === null) return undefined;
    return resolveFrom(c, xff);
  }

  /** resolve() with the peer already classified (`trustedLast` describes it). */
  function resolveFrom(peer: string | undefined, xff: string | undefined): string | undefined {
    let lastValid: string | undefined;
    if (peer !== undefined) {
      if (!trustedLast || xff === undefined) return peer;
      lastValid = peer;
    }
    if (xff === undefined) return lastValid;
    let end = xff.length;
    while (end > 0) {
      const comma = xff.lastIndexOf(',', end - 1);
      const entry = xff.slice(comma + 1, end);
      end = Math.max(comma, 0);
      if (entry.trim() === '') continue;
      const c = classify(entry);
      // A malformed entry was written by an untrusted hop: stop at the last address we trust.
      if (c === null) return lastValid;
      if (!trustedLast) return c;
      lastValid = c;
    }
    return lastValid;
  }

  return {
    resolve,
    apply(ev, raw, gwIn) {
      const peer = raw.peerIp;
      const xff = raw.forwardedFor;
      if (peer === undefined && xff === undefined) return;
      const gw = gwIn ?? child(ev, 'gatewatch');
      const p = peer === undefined ? null : classify(peer);
      if (p !== null || (xff !== undefined && xff !== '')) {
        let client = gw.client;
        if (client === undefined) {
          client = {};
          gw.client = client;
        }
        if (p !== null) client.peer_ip = p;
        if (xff !== undefined && xff !== '')
          client.forwarded_for = xff.length > 1024 ? xff.slice(0, 1024) : xff;
      }
      // the peer was classified just above (trustedLast still describes it)
      const ip =
        peer === undefined ? resolveFrom(undefined, xff) : p === null ? undefined : resolveFrom(p, xff);
      if (ip !== undefined) {
        const source = ev.source;
        if (source === undefined) ev.source = { ip };
        else source.ip = ip;
      }
    },
  };
}
