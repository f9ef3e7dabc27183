/**
 * GeoIP (city/country) and ASN enrichment from MaxMind-format databases the user supplies,
 * read with the `maxmind` package's Reader; lookups are cached. A missing or unreadable
 * database disables that enrichment with one clear message, never a crash.
 */
import { readFileSync } from 'node:fs';
import { type AsnResponse, type CityResponse, Reader } from 'maxmind';
import type { EventDraft } from '../formats/types.ts';
import { canonicalIPv4, parseAddress } from './client-ip.ts';
import { Lru } from './lru.ts';

export interface GeoConfig {
  /** GeoLite2/GeoIP2 City or Country database: a path or the file's bytes. */
  cityDatabase?: string | Uint8Array;
  /** GeoLite2 ASN database: a path or the file's bytes. */
  asnDatabase?: string | Uint8Array;
  /** Cached lookups per database (default 20 000). */
  cacheSize?: number;
  /** Where the one-time "database missing" messages go (default console.warn). */
  log?: (message: string) => void;
}

export interface GeoInfo {
  country_iso_code?: string;
  country_name?: string;
  region_name?: string;
  city_name?: string;
  location?: { lat: number; lon: number };
}

export interface AsInfo {
  number?: number;
  organization?: { name: string };
}

const warned = new Set<string>();

function openReader<T extends CityResponse | AsnResponse>(
  what: string,
  db: string | Uint8Array | undefined,
  log: (m: string) => void,
): Reader<T> | undefined {
  if (db === undefined) return undefined;
  const label = typeof db === 'string' ? db : `<${db.length} bytes>`;
  try {
    const buf =
      typeof db === 'string' ? readFileSync(db) : Buffer.from(db.buffer, db.byteOffset, db.byteLength);
    return new Reader<T>(buf);
  } catch (e) {
    const key = `${what}:${label}`;
    if (!warned.has(key)) {
      warned.add(key);
      log(
        `gatewatch: ${what} database ${label} cannot be used (${(e as Error).message}); ${what} enrichment is skipped`,
      );
    }
    return undefined;
  }
}

export interface GeoEnricher {
  readonly hasCity: boolean;
  readonly hasAsn: boolean;
  apply(ev: EventDraft): void;
  city(ip: string): GeoInfo | undefined;
  asn(ip: string): AsInfo | undefined;
}

export function createGeoEnricher(config: GeoConfig = {}): GeoEnricher {
  const log = config.log ?? ((m: string) => console.warn(m));
  const cityReader = openReader<CityResponse>('GeoIP', config.cityDatabase, log);
  const asnReader = openReader<AsnResponse>('ASN', config.asnDatabase, log);
  const size = config.cacheSize ?? 20_000;
  const cityCache = new Lru<string, GeoInfo | null>(size);
  const asnCache = new Lru<string, AsInfo | null>(size);

  function city(ip: string): GeoInfo | undefined {
    if (cityReader === undefined) return undefined;
    const hit = cityCache.get(ip);
    if (hit !== undefined) return hit ?? undefined;
    const out = cityUncached(ip);
    cityCache.set(ip, out ?? null);
    return out;
  }

  function cityUncached(ip: string): GeoInfo | undefined {
    if (cityReader === undefined) return undefined;
    let out: GeoInfo | undefined;
    try {
      const r = canonicalIPv4(ip) < 0 && parseAddress(ip) === undefined ? null : cityReader.get(ip);
      if (r) {
        out = {};
        const c = r.country ?? r.registered_country;
        if (c?.iso_code) out.country_iso_code = c.iso_code;
        if (c?.names?.en) out.country_name = c.names.en;
        const sub = r.subdivisions?.[0];
        if (sub?.names?.en) out.region_name = sub.names.en;
        if (r.city?.names?.en) out.city_name = r.city.names.en;
        if (
          r.location &&
          typeof r.location.latitude === 'number' &&
          typeof r.location.longitude === 'number'
        ) {
          // events never carry non-finite numbers (NaN cannot be stored)
          const loc: { lat?: number; lon?: number } = {};
          if (Number.isFinite(r.location.latitude)) loc.lat = r.location.latitude;
          if (Number.isFinite(r.location.longitude)) loc.lon = r.location.longitude;
          if (loc.lat !== undefined || loc.lon !== undefined)
            out.location = loc as { lat: number; lon: number };
        }
        if (Object.keys(out).length === 0) out = undefined;
      }
    } catch {
      out = undefined;
    }
    return out;
  }

  function asn(ip: string): AsInfo | undefined {
    if (asnReader === undefined) return undefined;
    const hit = asnCache.get(ip);
    if (hit !== undefined) return hit ?? undefined;
    const out = asnUncached(ip);
    asnCache.set(ip, out ?? null);
    return out;
  }

  function asnUncached(ip: string): AsInfo | undefined {
    if (asnReader === undefined) return undefined;
    let out: AsInfo | undefined;
    try {
      const r = canonicalIPv4(ip) < 0 && parseAddress(ip) === undefined ? null : asnReader.get(ip);
      if (
        r &&
        typeof r.autonomous_system_number === 'number' &&
        Number.isFinite(r.autonomous_system_number)
      ) {
        out = { number: r.autonomous_system_number };
        if (r.autonomous_system_organization) out.organization = { name: r.autonomous_system_organization };
      }
    } catch {
      out = undefined;
    }
    return out;
  }

  /** Both lookups of an address behind one cache entry (apply's path: one probe per event). */
  const bothCache = new Lru<string, { g: GeoInfo | undefined; a: AsInfo | undefined }>(size);
  function both(ip: string): { g: GeoInfo | undefined; a: AsInfo | undefined } {
    let hit = bothCache.get(ip);
    if (hit === undefined) {
      hit = { g: cityUncached(ip), a: asnUncached(ip) };
      bothCache.set(ip, hit);
    }
    return hit;
  }

  return {
    hasCity: cityReader !== undefined,
    hasAsn: asnReader !== undefined,
    city,
    asn,
    apply(ev) {
      const ip = ev.source?.ip;
      if (ip === undefined || (cityReader === undefined && asnReader === undefined)) return;
      const { g, a } = both(ip);
      if (cityReader !== undefined) {
        if (g !== undefined) {
          const src = ev.source!;
          // A country the source itself reported (WAF, CDN) wins; the rest is filled in.
          const own = src.geo;
          src.geo = own === undefined ? { ...g } : { ...g, ...own };
        }
      }
      if (asnReader !== undefined) {
        if (a !== undefined) {
          const src = ev.source!;
          const own = src.as;
          src.as = own === undefined ? { ...a } : { ...a, ...own };
        }
      }
    },
  };
}
