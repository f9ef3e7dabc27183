/**
 * Identity: who a request authenticated as, and a keyed fingerprint (HMAC-SHA256 with a configured
 * secret) of the key identity, with where it came from. The raw value is never stored. JWT
 * payloads are decoded without verification and never throw.
 *
 * The key identity is, first, what the gateway itself authenticated (a credential id such as
 * Kong's `authenticated_entity.id` or API Gateway's `identity.apiKeyId`, set by the format as
 * `gatewatch.api_key.id`); then a raw key or token the request carried (header, vendor field,
 * query, cookie); a readable JWT identifies its subject (tokens rotate, their subject does not);
 * Basic credentials identify their user (each guessed password would otherwise be a new "key").
 * A value that is a logging placeholder (`REDACTED-BY-KONG`, `****`) or that many different
 * authenticated identities send is never a key identity: it names the whole fleet, not a key.
 */

import { createHash, type Hash } from 'node:crypto';
import type { CredentialCandidate, CredentialLocation, EventDraft, RawRequest } from '../formats/types.ts';
import { child } from '../formats/util.ts';
import { Lru } from './lru.ts';
import { carriedFingerprint } from './surrogate.ts';

export interface IdentityConfig {
  /** HMAC key for fingerprints. Without it no fingerprint is computed (values are still redacted). */
  fingerprintSecret?: string | Uint8Array;
  /** Headers carrying API keys (lower-case). */
  apiKeyHeaders?: string[];
  /** Query parameters carrying API keys or tokens. */
  apiKeyParams?: string[];
  /** Cookies carrying API keys or tokens. */
  apiKeyCookies?: string[];
  /** Cached fingerprints and decoded JWT claims (default 10 000 each). */
  cacheSize?: number;
  /**
   * A raw key value sent by this many different authenticated identities (gateway credential,
   * consumer, user, JWT subject) is a shared placeholder, not a key (default 3).
   */
  sharedValueIdentities?: number;
}

export const DEFAULT_API_KEY_HEADERS = [
  'x-api-key',
  'api-key',
  'apikey',
  'x-apikey',
  'x-auth-token',
  'x-access-token',
  'ocp-apim-subscription-key',
  'x-goog-api-key',
];
export const DEFAULT_API_KEY_PARAMS = [
  'api_key',
  'apikey',
  'api-key',
  'key',
  'access_token',
  'token',
  'subscription-key',
];
export const DEFAULT_API_KEY_COOKIES = ['api_key', 'apikey', 'access_token', 'token', 'jwt', 'id_token'];

/** Where the key identity of an event came from (`gatewatch.api_key.source`). */
export type KeyIdentitySource = 'gateway' | 'jwt' | 'basic' | 'header' | 'query' | 'cookie' | 'body';

/**
 * The string a key identity's fingerprint is computed over: a raw key as sent, or a prefixed
 * identity that cannot collide with one (`gateway:<credential id>`, `jwt:<iss>|<subject>`,
 * `basic:<user>`). Label writers and tests use it to compute the fingerprint an event will carry.
 */
export function keyIdentityString(
  source: KeyIdentitySource,
  value: string,
  options: { issuer?: string } = {},
): string {
  switch (source) {
    case 'gateway':
      return `gateway:${value}`;
    case 'jwt':
      return `jwt:${options.issuer ?? ''}|${value}`;
    case 'basic':
      return `basic:${value}`;
    default:
      return value;
  }
}

/**
 * Values gateways and log shippers write in place of a secret they mask. Such a value is the same
 * for every client, so it can never identify a key.
 */
const PLACEHOLDER =
  /^(?:-|null|none|undefined|n\/a|\*+|x{3,}|#+|\.{3,}|\[[^\]]*\]|<[^>]*>|\{[^}]*\}|(?:[a-z]+[-_ ])?(?:redacted|masked|hidden|removed|filtered|obfuscated|scrubbed|sanitized|sanitised|omitted)(?:[-_ ][a-z0-9]+)*)$/i;

export function isPlaceholderSecret(value: string): boolean {
  // a secret scrubbed before it was queued: it stands for one client's key, not a mask
  if (carriedFingerprint(value) !== undefined) return false;
  if (value.length < 4) return true;
  if (PLACEHOLDER.test(value)) return true;
  // One character repeated (`xxxxxxxx`, `00000000`)
  const c = value.charCodeAt(0);
  for (let i = 1; i < value.length; i++) if (value.charCodeAt(i) !== c) return false;
  return true;
}

export interface JwtClaims {
  sub?: string;
  iss?: string;
  client_id?: string;
}

/** Decode the payload of a compact JWS without verifying it. Undefined when it is not a JWT. */
export function decodeJwtPayload(token: string): JwtClaims | undefined {
  if (token.length > 16_384 || token.charCodeAt(0) !== 101 /* e */) return undefined;
  const a = token.indexOf('.');
  const b = a < 0 ? -1 : token.indexOf('.', a + 1);
  if (a < 0 || b < 0) return undefined;
  try {
    const json: unknown = JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64url').toString('utf8'));
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
    const o = json as Record<string, unknown>;
    const s = (v: unknown) =>
      typeof v === 'string' && v !== '' ? v.slice(0, 256) : typeof v === 'number' ? String(v) : undefined;
    const claims: JwtClaims = {};
    const sub = s(o.sub);
    const iss = s(o.iss);
    const cid = s(o.client_id) ?? s(o.azp) ?? s(o.cid) ?? s(o.appid);
    if (sub !== undefined) claims.sub = sub;
    if (iss !== undefined) claims.iss = iss;
    if (cid !== undefined) claims.client_id = cid;
    return claims;
  } catch {
    return undefined;
  }
}

function looksLikeJwt(v: string): boolean {
  if (v.length <= 20 || !v.startsWith('eyJ')) return false;
  const a = v.indexOf('.');
  const b = a < 0 ? -1 : v.indexOf('.', a + 1);
  return b > 0 && v.indexOf('.', b + 1) < 0;
}

/**
 * Visit the non-empty `&`-separated parts of a query string, at most 256, as index ranges: the
 * part is q[start, end) and its first '=' is at `eq` (`end` when it has none). Stops early when
 * `visit` returns true.
 */
function eachQueryPart(
  q: string,
  visit: (start: number, eq: number, end: number) => boolean | undefined,
): void {
  let count = 0;
  let start = 0;
  while (start <= q.length && count < 256) {
    let end = q.indexOf('&', start);
    if (end < 0) end = q.length;
    if (end > start) {
      count++;
      let eq = q.indexOf('=', start);
      if (eq < 0 || eq > end) eq = end;
      if (visit(start, eq, end)) return;
    }
    start = end + 1;
  }
}

/** Parse `a=1&b=2` into [name, rawValue] pairs (names decoded, values as logged). */
export function queryPairs(q: string): [string, string][] {
  const out: [string, string][] = [];
  eachQueryPart(q, (start, eq, end) => {
    out.push([paramName(q.slice(start, eq)), eq < end ? q.slice(eq + 1, end) : '']);
    return false;
  });
  return out;
}

function paramName(raw: string): string {
  if (raw.indexOf('%') < 0 && raw.indexOf('+') < 0) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw; // keep as logged
  }
}

/**
 * The distinct parameter names of a query string (decoded), in order, at most `max` of them:
 * the names `queryPairs` gives, without building the pairs.
 */
export function queryParamNames(q: string, max = 64): string[] {
  const seen: string[] = [];
  eachQueryPart(q, (start, eq) => {
    if (seen.length >= max) return true;
    const name = paramName(q.slice(start, eq));
    if (!seen.includes(name)) seen.push(name);
    return false;
  });
  return seen;
}

/**
 * The first of the `queryPairs` whose value is not empty and whose lower-cased name is in
 * `names`, as [name, raw value]; without building the pairs.
 */
export function findQueryParam(q: string, names: ReadonlySet<string>): [string, string] | undefined {
  let found: [string, string] | undefined;
  eachQueryPart(q, (start, eq, end) => {
    if (eq >= end - 1) return false; // no value
    const name = paramName(q.slice(start, eq));
    if (names.has(name.toLowerCase())) found = [name, q.slice(eq + 1, end)];
    return found !== undefined;
  });
  return found;
}

/** Parse a Cookie header into [name, value] pairs. */
export function cookiePairs(header: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
    if (out.length >= 64) break;
  }
  return out;
}

function decodeValue(v: string): string {
  if (v.indexOf('%') < 0 && v.indexOf('+') < 0) return v;
  try {
    return decodeURIComponent(v.replace(/\+/g, ' '));
  } catch {
    return v;
  }
}

function hmacPads(secret: string | Uint8Array): { inner: Hash; outer: Hash } {
  let key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (key.length > 64) key = createHash('sha256').update(key).digest();
  const ipad = Buffer.alloc(64, 0x36);
  const opad = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < key.length; i++) {
    ipad[i]! ^= key[i]!;
    opad[i]! ^= key[i]!;
  }
  return { inner: createHash('sha256').update(ipad), outer: createHash('sha256').update(opad) };
}

export interface IdentityResolver {
  /** `gw` is the event's `gatewatch` object when the caller already holds it. */
  apply(ev: EventDraft, raw: RawRequest, gw?: NonNullable<EventDraft['gatewatch']>): void;
  fingerprint(value: string): string | undefined;
}

export function createIdentityResolver(config: IdentityConfig = {}): IdentityResolver {
  const secret = config.fingerprintSecret;
  const headerNames = (config.apiKeyHeaders ?? DEFAULT_API_KEY_HEADERS).map((h) => h.toLowerCase());
  /** Priority of each API-key header name (its first position in the list). */
  const headerIndex = new Map<string, number>();
  headerNames.forEach((h, i) => {
    if (!headerIndex.has(h)) headerIndex.set(h, i);
  });
  const paramNames = new Set((config.apiKeyParams ?? DEFAULT_API_KEY_PARAMS).map((p) => p.toLowerCase()));
  const cookieNames = new Set((config.apiKeyCookies ?? DEFAULT_API_KEY_COOKIES).map((c) => c.toLowerCase()));

  // HMAC-SHA256 (RFC 2104) with the padded key states computed once and copied per call:
  // same output as createHmac, without re-deriving the key for every request.
  const pads = secret === undefined ? undefined : hmacPads(secret);
  // The same keys and tokens come back request after request: fingerprints and decoded JWT
  // claims are cached per value (bounded; the values are in this process's memory anyway).
  const fingerprints = new Lru<string, string>(config.cacheSize ?? 10_000);
  const claims = new Lru<string, JwtClaims | null>(config.cacheSize ?? 10_000);
  function fingerprint(value: string): string | undefined {
    if (pads === undefined) return undefined;
    let fp = fingerprints.get(value);
    if (fp === undefined) {
      // a value scrubbed before it was queued carries the fingerprint of the secret it replaced
      fp = carriedFingerprint(value);
      if (fp !== undefined) return fp;
      const inner = pads.inner.copy().update(value).digest();
      fp = pads.outer.copy().update(inner).digest('hex').slice(0, 32);
      fingerprints.set(value, fp);
    }
    return fp;
  }
  function jwtClaims(token: string): JwtClaims | undefined {
    let c = claims.get(token);
    if (c === undefined) {
      c = decodeJwtPayload(token) ?? null;
      claims.set(token, c);
    }
    return c ?? undefined;
  }

  // Raw key values seen with several authenticated identities: value → the identities (up to the
  // limit), and the values found shared. Bounded like the other caches; per process, so each
  // worker learns a shared placeholder after a few of its events.
  const sharedLimit = config.sharedValueIdentities ?? 3;
  const identitiesByValue = new Lru<string, string[]>(config.cacheSize ?? 10_000);
  const sharedValues = new Lru<string, true>(1_000);
  function sharedValue(raw: string, authenticated: string | undefined): boolean {
    if (sharedValues.get(raw) !== undefined) return true;
    if (authenticated === undefined) return false;
    const seen = identitiesByValue.get(raw);
    if (seen === undefined) {
      identitiesByValue.set(raw, [authenticated]);
      return false;
    }
    if (seen.includes(authenticated)) return false;
    seen.push(authenticated);
    if (seen.length < sharedLimit) return false;
    sharedValues.set(raw, true);
    return true;
  }

  return {
    fingerprint,
    apply(ev, raw, gwIn) {
      const headers = raw.headers;
      let primary: CredentialCandidate | undefined;
      let scheme: string | undefined;
      let jwt: JwtClaims | undefined;

      // 1. explicit API-key headers: the first configured name the record has a value for (one
      // walk over the record's few headers rather than a probe per configured name)
      if (headers !== undefined) {
        let best = headerNames.length;
        let name: string | undefined;
        for (const k in headers) {
          const i = headerIndex.get(k);
          if (i === undefined || i >= best) continue;
          const v = headers[k]!;
          if (v === '' || v === '-') continue;
          best = i;
          name = k;
        }
        if (name !== undefined) {
          primary = { name, value: headers[name]!, location: 'header' };
          scheme = 'api-key';
        }
      }
      // 2. credentials the format found in vendor fields
      if (primary === undefined && raw.credentials !== undefined && raw.credentials.length > 0) {
        primary = raw.credentials[0]!;
        scheme = 'api-key';
      }
      // 3. query parameters
      const query = ev.url?.query;
      if (primary === undefined && query !== undefined && paramNames.size > 0) {
        const found = findQueryParam(query, paramNames);
        if (found !== undefined) {
          primary = { name: found[0], value: decodeValue(found[1]), location: 'query' };
          scheme = looksLikeJwt(primary.value) ? 'bearer' : 'api-key';
        }
      }
      // 4. Authorization header
      const authz = headers?.authorization ?? headers?.['proxy-authorization'];
      if (authz !== undefined && authz !== '' && authz !== '-') {
        const sp = authz.indexOf(' ');
        const kind = (sp < 0 ? '' : authz.slice(0, sp)).toLowerCase();
        const cred = sp < 0 ? authz : authz.slice(sp + 1).trim();
        if (kind === 'basic') {
          let user: string | undefined;
          try {
            const decoded = Buffer.from(cred, 'base64').toString('utf8');
            const colon = decoded.indexOf(':');
            if (colon > 0) user = decoded.slice(0, Math.min(colon, 256));
          } catch {
            user = undefined;
          }
          if (user !== undefined && /^[\x20-\x7e\u00a0-\uffff]+$/.test(user)) {
            const u = child(ev, 'user');
            u.name ??= user;
          }
          if (primary === undefined) {
            primary = { name: 'authorization', value: cred, location: 'header' };
            scheme = 'basic';
          }
        } else {
          if (primary === undefined) {
            primary = { name: 'authorization', value: cred, location: 'header' };
            scheme = kind === 'bearer' || looksLikeJwt(cred) ? 'bearer' : kind === '' ? 'api-key' : kind;
          }
          if (looksLikeJwt(cred)) jwt = jwtClaims(cred);
        }
      }
      // 5. cookies
      const cookieHeader = headers?.cookie ?? raw.cookies;
      if (cookieHeader !== undefined && cookieHeader !== '-' && cookieHeader !== '') {
        for (const [name, value] of cookiePairs(cookieHeader)) {
          if (value === '' || !cookieNames.has(name.toLowerCase())) continue;
          const v = decodeValue(value);
          if (primary === undefined) {
            primary = { name, value: v, location: 'cookie' };
            scheme = 'cookie';
          }
          if (jwt === undefined && looksLikeJwt(v)) jwt = jwtClaims(v);
          break;
        }
      }
      if (jwt === undefined && primary !== undefined && looksLikeJwt(primary.value))
        jwt = jwtClaims(primary.value);

      const gw = gwIn ?? child(ev, 'gatewatch');
      const key = gw.api_key;
      // What the gateway authenticated comes first (see the module comment).
      const credentialId = key?.id;
      const basicUser = scheme === 'basic' ? ev.user?.name : undefined;
      const authenticated = credentialId ?? gw.consumer ?? ev.user?.id ?? jwt?.sub ?? basicUser;
      let identity: { source: KeyIdentitySource; value: string; issuer?: string } | undefined;
      if (credentialId !== undefined) identity = { source: 'gateway', value: credentialId };
      else if (primary !== undefined) {
        const raw = primary.value;
        if (scheme === 'basic' && basicUser !== undefined) identity = { source: 'basic', value: basicUser };
        else if (jwt !== undefined && looksLikeJwt(raw) && (jwt.sub ?? jwt.client_id) !== undefined)
          identity = {
            source: 'jwt',
            value: (jwt.sub ?? jwt.client_id)!,
            ...(jwt.iss !== undefined ? { issuer: jwt.iss } : {}),
          };
        else if (!isPlaceholderSecret(raw) && !sharedValue(raw, authenticated))
          identity = { source: primary.location, value: raw };
      }
      if (primary !== undefined || identity !== undefined) {
        const k = key ?? {};
        if (key === undefined) gw.api_key = k;
        if (identity !== undefined) {
          const fp = fingerprint(keyIdentityString(identity.source, identity.value, identity));
          if (fp !== undefined) k.fingerprint = fp;
          k.source = identity.source;
          const name =
            identity.source === 'gateway'
              ? (gw.consumer ?? identity.value)
              : identity.source === 'jwt' || identity.source === 'basic'
                ? identity.value
                : gw.consumer;
          if (name !== undefined) k.name = name.slice(0, 256);
        }
        if (primary !== undefined) k.location = primary.location satisfies CredentialLocation;
      }
      if (
        jwt !== undefined &&
        (jwt.sub !== undefined || jwt.iss !== undefined || jwt.client_id !== undefined)
      ) {
        gw.jwt = { ...gw.jwt, ...jwt };
      }
      if (scheme !== undefined) gw.auth = { present: true, scheme };
      else if (headers !== undefined) gw.auth = { present: false, scheme: 'none' };
    },
  };
}
