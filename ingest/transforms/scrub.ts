/**
 * Secret scrubbing of raw records by pattern, for text whose format is not known (yet): what a
 * receiver puts into Redis, what the normaliser parses, what dead letters keep. It finds
 *
 * - values of JSON keys that name a secret (`"password"`, `"authorization"`, `"x-api-key"`,
 *   `"cookie"`, `"set-cookie"`, …, the word rules of redact.ts) — strings, numbers, and the
 *   leaves of objects and arrays — also in JSON nested inside JSON strings, and in name/value
 *   pairs (AWS WAF `{"name":"Authorization","value":…}`, Azure WAF `matchVariableName`);
 * - `Name: value` header lines, `name=value` pairs (query strings, form bodies, cookies,
 *   logfmt), multipart form fields and XML elements whose name is a secret's;
 * - `Bearer` tokens, JWTs anywhere (a path segment too) and well-known key formats
 *   (sk_live_…, AKIA…, ghp_…, xoxb-…, glpat-…, AIza…, …);
 * - what ModSecurity/Coraza messages quote of a secret variable ("Matched Data: … found within
 *   ARGS:password: …", "against variable `ARGS:password' (Value: `…' )", "Matched phrase").
 *
 * Each secret becomes a surrogate (surrogate.ts) carrying the keyed fingerprint identity.ts
 * computes, so a worker reading scrubbed text derives the same key fingerprints, JWT claims and
 * Basic user names as from the raw text. Scrubbing is deterministic and every path scrubs a
 * record once (a receiver before queueing it, or the normaliser when nothing did), so its event
 * id — a hash of the scrubbed record — is the same whichever path it takes. Scrubbing scrubbed
 * text leaves it as it is (tested on generated records; on contrived text a second pass can
 * only mask more). Everything that is not a secret stays byte for byte as it was, and each
 * record is read in time linear in its length.
 */
import { createIdentityResolver } from './identity.ts';
import { createRedactor, splitWords } from './redact.ts';
import { dropFingerprints, isBase64Url, isScrubbed, isScrubbedBasic, surrogate } from './surrogate.ts';

export interface ScrubberOptions {
  /** Key of the fingerprints surrogates carry (ingest.fingerprintSecret); plain markers without. */
  fingerprintSecret?: string | Uint8Array;
}

/** Scrub one record (a line, or any text): deterministic and idempotent. */
export type Scrubber = (text: string) => string;

const names = createRedactor();
const secretNames = new Map<string, boolean>();

/**
 * Whether a field, header, parameter or cookie name names a secret: the word rules of
 * redact.ts, except names of a credential's *identifier* (`apiKeyId`, `credential_id`,
 * `access_key_id`), which identify a key without being one (session ids stay secrets).
 */
export function isSecretName(name: string): boolean {
  let r = secretNames.get(name);
  if (r === undefined) {
    let n = name;
    if (n.indexOf('%') >= 0) n = decodeValue(n);
    if (n.indexOf('[') >= 0) n = n.replace(/\[/g, '.').replace(/\]/g, '');
    r = names.isSensitive(n) && !namesCredentialId(n);
    if (secretNames.size < 8192) secretNames.set(name, r);
  }
  return r;
}

/**
 * Whether `s[from, to)` may be a secret's name: every name the word rules accept holds one of
 * these three-letter pieces (case-insensitive). Checked in place, before a name is cut out and
 * looked up: most keys of a record (status, host, path, …) are ruled out without allocating.
 */
export function mayBeSecretName(s: string, from: number, to: number): boolean {
  for (let i = from; i + 2 < to; i++) {
    switch (s.charCodeAt(i) | 32) {
      case 116: // tok
        if (piece(s, i, 111, 107)) return true;
        break;
      case 115: // sec ses sig sid
        if (piece(s, i, 101, 99) || piece(s, i, 101, 115) || piece(s, i, 105, 103) || piece(s, i, 105, 100))
          return true;
        break;
      case 112: // pas pwd
        if (piece(s, i, 97, 115) || piece(s, i, 119, 100)) return true;
        break;
      case 107: // key
        if (piece(s, i, 101, 121)) return true;
        break;
      case 99: // cre coo cod
        if (piece(s, i, 114, 101) || piece(s, i, 111, 111) || piece(s, i, 111, 100)) return true;
        break;
      case 97: // aut
        if (piece(s, i, 117, 116)) return true;
        break;
      case 106: // jwt
        if (piece(s, i, 119, 116)) return true;
        break;
      case 111: // otp
        if (piece(s, i, 116, 112)) return true;
        break;
    }
  }
  return false;
}

/** The two characters after `i` are `b` and `c` (case-insensitive). */
function piece(s: string, i: number, b: number, c: number): boolean {
  return (s.charCodeAt(i + 1) | 32) === b && (s.charCodeAt(i + 2) | 32) === c;
}

function namesCredentialId(name: string): boolean {
  const words = splitWords(name);
  const last = words[words.length - 1];
  if (words.length < 2 || (last !== 'id' && last !== 'ids')) return false;
  for (const w of words) if (w.indexOf('session') >= 0 || w === 'sid') return false;
  return true;
}

/** How a secret's value is shaped, by the name it goes under. */
const Kind = {
  Plain: 0,
  /** `Scheme credential`: the scheme stays, a Basic credential keeps its user name. */
  Authorization: 1,
  /** `a=1; b=2`: every value scrubbed, the names stay. */
  Cookie: 2,
  /** Like Cookie, several cookies joined by ", ", attribute values (Path, Expires…) kept. */
  SetCookie: 3,
} as const;
type Kind = (typeof Kind)[keyof typeof Kind];

function kindOf(name: string): Kind {
  const n = name.toLowerCase();
  if (n.endsWith('authorization')) return Kind.Authorization;
  if (n.indexOf('cookie') >= 0) return n.indexOf('set') >= 0 ? Kind.SetCookie : Kind.Cookie;
  return Kind.Plain;
}

const COOKIE_ATTRIBUTES = new Set([
  'path',
  'domain',
  'expires',
  'max-age',
  'samesite',
  'priority',
  'version',
  'comment',
]);

/**
 * What gateways and shippers write in place of a secret they mask (`REDACTED-BY-KONG`,
 * `[FILTERED]`, `***`): left as it is, so identity still sees a mask shared by every client
 * (identity.ts isPlaceholderSecret), not one key. Booleans and nulls are no secrets either.
 */
const PLACEHOLDER =
  /^(?:n\/a|null|none|undefined|true|false|\*{3,}|x{3,}|#{3,}|\.{3,}|[[<{(]?(?:[a-z]+[-_ ])?(?:redacted|masked|hidden|removed|filtered|obfuscated|scrubbed|sanitized|sanitised|omitted)(?:[-_ ][a-z0-9]+)*[\]>})]?)$/i;

/** Values that hold no secret: empty, "-", placeholders other tools write, earlier scrubbing. */
function holdsNoSecret(v: string): boolean {
  return v.length === 0 || v === '-' || isScrubbed(v) || (v.length <= 40 && PLACEHOLDER.test(v));
}

function decodeValue(v: string): string {
  if (v.indexOf('%') < 0 && v.indexOf('+') < 0) return v;
  try {
    return decodeURIComponent(v.replace(/\+/g, ' '));
  } catch {
    return v;
  }
}

/** A compact JWS (`header.claims.signature`) of base64url segments, as identity.ts reads one. */
function looksLikeJwt(v: string): boolean {
  if (v.length <= 20 || !v.startsWith('eyJ')) return false;
  let dots = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 46) dots++;
    else if (!isBase64Url(c)) return false;
  }
  return dots === 2;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const PRINTABLE = /^[\x20-\x7e\u00a0-\uffff]+$/;

/** Index of the quote closing the JSON string opened at `open` (before `limit`), or -1. */
function stringEnd(s: string, open: number, limit = s.length): number {
  let from = open + 1;
  for (;;) {
    const q = s.indexOf('"', from);
    if (q < 0 || q >= limit) return -1;
    let b = 0;
    for (let k = q - 1; k > open && s.charCodeAt(k) === 92; k--) b++;
    if ((b & 1) === 0) return q;
    from = q + 1;
  }
}

/** Whether the character at `i` is preceded by an odd number of backslashes (escaped). */
function escaped(s: string, i: number): boolean {
  let b = 0;
  for (let k = i - 1; k >= 0 && s.charCodeAt(k) === 92; k--) b++;
  return (b & 1) === 1;
}

function decodeJsonString(literal: string): string | undefined {
  if (literal.indexOf('\\') < 0) return literal.slice(1, -1);
  try {
    const v: unknown = JSON.parse(literal);
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isAlnum(c: number): boolean {
  return isLetter(c) || (c >= 48 && c <= 57);
}

/** A header name: letters, digits, - and _. */
function isHeaderNameChar(c: number): boolean {
  return isAlnum(c) || c === 45 || c === 95;
}

/** What may precede a header name: start, blanks, `,;{(|`. */
function isHeaderLead(c: number): boolean {
  return (
    c === 32 || c === 9 || c === 10 || c === 13 || c === 44 || c === 59 || c === 123 || c === 40 || c === 124
  );
}

/** A header value ends at a line end, a quote or a backslash (an escape of the enclosing text). */
function isLineStop(c: number): boolean {
  return c === 10 || c === 13 || c === 34 || c === 92;
}

/** A parameter name: letters, digits, `_ . % [ ] -`. */
function isParamNameChar(c: number): boolean {
  return isAlnum(c) || c === 95 || c === 46 || c === 37 || c === 91 || c === 93 || c === 45;
}

/** A parameter value ends at `& ; , | } < >`, a double quote, blanks and backslashes. */
function isParamValueChar(c: number): boolean {
  switch (c) {
    case 38:
    case 59:
    case 44:
    case 124:
    case 125:
    case 60:
    case 62:
    case 34:
    case 92:
    case 32:
    case 9:
    case 10:
    case 13:
      return false;
    default:
      return true;
  }
}

/** What ends a plain `name: value` (a list of them on one line). */
function isListStop(c: number): boolean {
  return c === 44 || c === 59 || c === 38;
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/** Secrets of one record that get a fingerprinted surrogate (bounds the HMACs per record). */
const MAX_FINGERPRINTS = 256;

/** Longest value a text rule reads (bounds the work on pathological records). */
const MAX_VALUE = 16 * 1024;

/** Index of the n-th dot of a text (its length when there are fewer). */
function nthDot(s: string, n: number): number {
  let at = -1;
  for (let k = 0; k < n; k++) {
    at = s.indexOf('.', at + 1);
    if (at < 0) return s.length;
  }
  return at;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/** End (exclusive) of the JSON number at `p`. */
function numberEnd(s: string, p: number): number {
  let j = p;
  while (j < s.length) {
    const c = s.charCodeAt(j);
    if ((c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69) j++;
    else break;
  }
  return j;
}

/** End (exclusive) of the JSON object or array opened at `p`, or -1. */
function containerEnd(s: string, p: number): number {
  let depth = 0;
  for (let j = p; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 34) {
      j = stringEnd(s, j);
      if (j < 0) return -1;
    } else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return -1;
}

/** Builds a string from the input and replaced ranges, in order, only once something changed. */
class Edits {
  private parts: string[] | undefined;
  private last = 0;
  private readonly s: string;
  constructor(s: string) {
    this.s = s;
  }
  replace(from: number, to: number, text: string): void {
    this.parts ??= [];
    this.parts.push(this.s.slice(this.last, from), text);
    this.last = to;
  }
  result(): string {
    if (this.parts === undefined) return this.s;
    this.parts.push(this.s.slice(this.last));
    return this.parts.join('');
  }
}

/** Authorization schemes whose credentials are comma-separated parameters (RFC 7235 auth-param). */
const MULTI_PARAMETER_SCHEMES = new Set([
  'digest',
  'aws4-hmac-sha256',
  'oauth',
  'signature',
  'hoba',
  'mutual',
]);

/**
 * Keys naming the value of a sibling key: AWS WAF `{"name": "Authorization", "value": …}`,
 * Azure WAF `{"matchVariableName": "PostParamValue:password", "matchVariableValue": …}`.
 */
const PAIR_NAME_KEYS = new Map([
  ['name', 'value'],
  ['key', 'value'],
  ['header', 'value'],
  ['headername', 'value'],
  ['field', 'value'],
  ['matchvariablename', 'matchVariableValue'],
]);

/** What a JSON key tells about the value after it. */
const KeyRole = {
  None: 0,
  /** Names a secret: its value is scrubbed. */
  Secret: 1,
  /** `name` of a `{"name": …, "value": …}` pair: the value is scrubbed when the name is a secret's. */
  PairName: 2,
} as const;
type KeyRole = (typeof KeyRole)[keyof typeof KeyRole];

const keyRoles = new Map<string, KeyRole>();

function roleOf(key: string): KeyRole {
  if (isSecretName(key)) return KeyRole.Secret;
  return key.length <= 17 && PAIR_NAME_KEYS.has(key.toLowerCase()) ? KeyRole.PairName : KeyRole.None;
}

const BEARER = /\b([Bb]earer)(\s+)([A-Za-z0-9._~+/-]{8,}=*)/g;
/** Key formats that announce themselves (vendors' published prefixes). */
const KNOWN_KEYS = new RegExp(
  [
    '(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,256}',
    'whsec_[A-Za-z0-9+/=]{20,256}',
    'gh[pousr]_[A-Za-z0-9]{30,256}',
    'github_pat_[A-Za-z0-9_]{40,256}',
    'xox[abposr]-[A-Za-z0-9-]{10,256}',
    'glpat-[A-Za-z0-9_-]{20,256}',
    'shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}',
    '(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])',
    '(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}',
    '(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}',
    '(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,256}',
    '(?<![A-Za-z0-9])SG\\.[A-Za-z0-9_-]{16,128}\\.[A-Za-z0-9_-]{16,128}',
    '(?<![A-Za-z0-9-])sk-(?:proj-|ant-api\\d\\d-)?[A-Za-z0-9_-]{32,256}',
  ].join('|'),
  'g',
);
const MODSEC_DATA = /Matched Data: ([\s\S]{0,2048}?) found within ([A-Z_]+)(?::([^\s:]+))?: /g;
const MODSEC_MATCH = /against variable `([A-Z_]+)(?::([^'`]*))?' \(Value: `/g;
const MODSEC_PHRASE =
  /(?:Matched phrase|String match|Matched string) (\\?")([\s\S]{0,512}?)\1 (?:at|in) ([A-Z_]+):([^\s"\]\\]+)/g;
const MULTIPART =
  /form-data;[^\r\n]{0,256}?\bname="([^"\r\n]{1,128})"[^\r\n]{0,1024}(?:\r?\n[^\r\n]{1,1024}){0,16}\r?\n\r?\n([^\r\n]{0,16384})/gi;
const XML_ELEMENT = /<([A-Za-z_][\w.:-]{0,63})(?:\s[^<>]*)?>([^<]{1,4096})<\/\1>/g;

/**
 * Whether a text may hold one of the KNOWN_KEYS: their prefixes end in `_` or `-`, or start
 * with `AKIA`, `ASIA`, `AIza`, `SG.` (searching for these is much cheaper than the pattern).
 */
function mayHoldKnownKey(s: string): boolean {
  for (let i = s.indexOf('_', 2); i >= 0; i = s.indexOf('_', i + 1)) {
    const p1 = s.charCodeAt(i - 1);
    const p2 = s.charCodeAt(i - 2);
    const p3 = s.charCodeAt(i - 3);
    if (p1 === 107 && (p2 === 115 || p2 === 114)) return true; // sk_ rk_
    if (p2 === 104 && (p3 === 103 || p1 === 102 || p1 === 97)) return true; // gh?_ hf_ shpat_/shpca_
    if ((p1 === 99 && p2 === 101 && p3 === 115) || (p1 === 109 && p2 === 112 && p3 === 110)) return true; // whsec_ npm_
    if (p1 === 98 && p2 === 117 && p3 === 104) return true; // github_
    if (p1 === 115 && p2 === 115 && p3 === 112) return true; // shpss_
  }
  if (s.indexOf('sk-') >= 0 || s.indexOf('glpat-') >= 0 || s.indexOf('xox') >= 0) return true;
  for (let i = s.indexOf('A'); i >= 0; i = s.indexOf('A', i + 1)) {
    const n1 = s.charCodeAt(i + 1);
    const n2 = s.charCodeAt(i + 2);
    if ((n1 === 75 || n1 === 83) && n2 === 73) return true; // AKIA ASIA
    if (n1 === 73 && n2 === 122) return true; // AIza
  }
  return s.indexOf('SG.') >= 0;
}

/** Whether a ModSecurity variable (`COLLECTION:name`) holds a secret. */
function secretVariable(collection: string, name: string | undefined): boolean {
  if (collection === 'REQUEST_COOKIES') return true;
  if (name === undefined || collection.endsWith('_NAMES')) return false;
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (collection === 'REQUEST_HEADERS' || collection === 'RESPONSE_HEADERS') return isSecretName(n);
  return collection.startsWith('ARGS') ||
    collection.startsWith('FILES') ||
    collection.startsWith('MULTIPART') ||
    collection === 'XML' ||
    collection === 'JSON'
    ? isSecretName(n.slice(n.lastIndexOf(':') + 1))
    : false;
}

/** End of a value quoted by a ModSecurity message: `"]` (v2), the end of its JSON string, a line. */
function modsecValueEnd(s: string, from: number): number {
  for (let j = from; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 10 || c === 13) return j;
    if (c !== 34) continue;
    if (j > from && s.charCodeAt(j - 1) === 92) {
      if (s.charCodeAt(j + 1) === 93) return j - 1; // \"] inside a JSON string
      continue; // an escaped quote of the value itself
    }
    return j;
  }
  return s.length;
}

export function createScrubber(options: ScrubberOptions = {}): Scrubber {
  const secret = options.fingerprintSecret;
  const fingerprint =
    secret === undefined ? undefined : createIdentityResolver({ fingerprintSecret: secret }).fingerprint;

  // A record holds a few secrets; one crafted to hold thousands would cost an HMAC each. Past
  // MAX_FINGERPRINTS a record's secrets get the plain marker (still deterministic: the count
  // depends on the record only).
  let fingerprinted = 0;
  const mask = (fpInput: string): string => {
    if (fingerprint === undefined || fingerprinted >= MAX_FINGERPRINTS) return surrogate(undefined);
    fingerprinted++;
    return surrogate(fingerprint(fpInput));
  };

  /** A credential: a JWT keeps its header and claims, anything else becomes a surrogate. */
  function credential(v: string, fpInput = v): string {
    if (looksLikeJwt(v)) return v.slice(0, v.lastIndexOf('.') + 1) + mask(v);
    return mask(fpInput);
  }

  function authorization(v: string): string | undefined {
    const sp = v.search(/[ \t]/);
    if (sp <= 0) return credential(v);
    const scheme = v.slice(0, sp);
    const cred = v.slice(sp + 1).trim();
    if (cred === '') return mask(v);
    if (holdsNoSecret(cred)) return undefined;
    if (scheme.length === 5 && scheme.toLowerCase() === 'basic') {
      if (isScrubbedBasic(cred)) return undefined;
      let user = '';
      if (BASE64.test(cred)) {
        const decoded = Buffer.from(cred, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon > 0) {
          const u = decoded.slice(0, Math.min(colon, 256));
          if (PRINTABLE.test(u)) user = u;
        }
      }
      return `${scheme} ${Buffer.from(`${user}:${mask(cred)}`, 'utf8').toString('base64')}`;
    }
    return `${scheme} ${credential(cred)}`;
  }

  const COOKIE_SPLIT = /;\s*/g;
  const SET_COOKIE_SPLIT = /;\s*|,\s*(?=[^\s=;,]+=)/g;

  function cookies(v: string, kind: Kind): string | undefined {
    if (v.indexOf('=') < 0) return credential(v);
    const split = kind === Kind.SetCookie ? SET_COOKIE_SPLIT : COOKIE_SPLIT;
    split.lastIndex = 0;
    const parts: string[] = [];
    let changed = false;
    let start = 0;
    for (;;) {
      const m = split.exec(v);
      const end = m === null ? v.length : m.index;
      const pair = v.slice(start, end);
      const eq = pair.indexOf('=');
      let next = pair;
      if (eq > 0) {
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        if (
          !holdsNoSecret(value) &&
          !(kind === Kind.SetCookie && COOKIE_ATTRIBUTES.has(name.toLowerCase()))
        ) {
          next = `${pair.slice(0, eq + 1)}${credential(value, decodeValue(value))}`;
          changed = true;
        }
      }
      parts.push(next);
      if (m === null) break;
      parts.push(m[0]);
      start = end + m[0].length;
    }
    return changed ? parts.join('') : undefined;
  }

  /** The replacement of a secret value (decoded), or undefined to leave it. */
  function replacement(name: string, v: string): string | undefined {
    if (holdsNoSecret(v)) return undefined;
    const kind = kindOf(name);
    if (kind === Kind.Authorization) return authorization(v);
    if (kind !== Kind.Plain) return cookies(v, kind);
    return credential(v);
  }

  /** Replace the JSON value token at `p` (string, number, or an object/array's leaves). */
  function jsonValue(s: string, p: number, name: string, edits: Edits): number {
    const c = s.charCodeAt(p);
    if (c === 34) {
      const e = stringEnd(s, p);
      if (e < 0) return s.length;
      const v = decodeJsonString(s.slice(p, e + 1));
      if (v !== undefined) {
        const r = replacement(name, v);
        if (r !== undefined) edits.replace(p, e + 1, JSON.stringify(r));
      }
      return e + 1;
    }
    if ((c >= 48 && c <= 57) || c === 45) {
      const e = numberEnd(s, p);
      const r = replacement(name, s.slice(p, e));
      if (r !== undefined) edits.replace(p, e, JSON.stringify(r));
      return e;
    }
    if (c === 91 && s.startsWith('[REDACTED', p)) {
      // an unquoted surrogate (text that only looks like JSON): already scrubbed
      const end = s.indexOf(']', p);
      return end < 0 ? s.length : end + 1;
    }
    if (c === 123 || c === 91) {
      const end = containerEnd(s, p);
      if (end < 0) return s.length;
      for (let j = p + 1; j < end; j++) {
        const d = s.charCodeAt(j);
        if (d === 91 && s.startsWith('[REDACTED', j)) {
          const close = s.indexOf(']', j);
          if (close < 0 || close >= end) break;
          j = close;
        } else if (d === 34) {
          const e = stringEnd(s, j);
          if (e < 0 || e >= end) break;
          let k = e + 1;
          while (k < end && isSpace(s.charCodeAt(k))) k++;
          if (s.charCodeAt(k) !== 58 /* : */) jsonValue(s, j, name, edits);
          j = e;
        } else if ((d >= 48 && d <= 57) || d === 45) {
          const prev = s.charCodeAt(j - 1);
          if (prev === 58 || prev === 91 || prev === 44 || isSpace(prev))
            j = jsonValue(s, j, name, edits) - 1;
          else j = numberEnd(s, j) - 1;
        }
      }
      return end;
    }
    return p + 1;
  }

  /** Values of JSON keys that name secrets (and `{"name": <secret name>, "value": …}` pairs). */
  function jsonPairs(s: string): string {
    let close = s.indexOf('":');
    if (close < 0) return s;
    let edits: Edits | undefined;
    let from = 0;
    while (close >= 0) {
      let next = close + 2;
      const open = s.lastIndexOf('"', close - 1);
      if (open >= from && close - open <= 101) {
        // a key's role is looked up by its text: the same few dozen keys come back line after line
        let key: string | undefined = s.slice(open + 1, close);
        let role = keyRoles.get(key);
        if (role === undefined) {
          if (key.indexOf('\\') >= 0) key = decodeJsonString(`"${key}"`);
          role = key === undefined ? KeyRole.None : roleOf(key);
          if (keyRoles.size < 8192) keyRoles.set(s.slice(open + 1, close), role);
        }
        if (role !== KeyRole.None && key !== undefined && !escaped(s, close) && !escaped(s, open)) {
          if (key.indexOf('\\') >= 0) key = decodeJsonString(`"${key}"`) ?? key;
          let p = close + 2;
          while (p < s.length && isSpace(s.charCodeAt(p))) p++;
          edits ??= new Edits(s);
          if (role === KeyRole.Secret) next = Math.max(next, jsonValue(s, p, key, edits));
          else if (s.charCodeAt(p) === 34) {
            const e = stringEnd(s, p);
            const named = e < 0 ? undefined : decodeJsonString(s.slice(p, e + 1));
            // "PostParamValue:password", "REQUEST_HEADERS:Authorization": the name is the last part
            const header = named?.slice(named.lastIndexOf(':') + 1);
            if (header !== undefined && isSecretName(header)) {
              const valueKey = PAIR_NAME_KEYS.get(key.toLowerCase())!;
              const after = s.slice(e + 1, e + 64);
              const pair = new RegExp(`^\\s*,\\s*"${valueKey}"\\s*:\\s*`).exec(after);
              if (pair !== null) next = jsonValue(s, e + 1 + pair[0].length, header, edits);
            }
          }
        }
      }
      from = next;
      close = s.indexOf('":', next);
    }
    return edits === undefined ? s : edits.result();
  }

  /** JSON nested in JSON strings (Filebeat's `message`, bodies): decoded, scrubbed, re-encoded. */
  function nestedJson(s: string, depth: number): string {
    const edits = new Edits(s);
    let from = 0;
    for (;;) {
      const q = s.indexOf('"', from);
      if (q < 0) break;
      const e = stringEnd(s, q);
      if (e < 0) break;
      const literal = s.slice(q, e + 1);
      if (literal.indexOf('\\"') >= 0) {
        const v = decodeJsonString(literal);
        if (v !== undefined) {
          const r = scrubText(v, depth + 1);
          if (r !== v) edits.replace(q, e + 1, JSON.stringify(r));
        }
      }
      from = e + 1;
    }
    return edits.result();
  }

  /** `Name: value` lines (raw HTTP headers, text logs) whose name names a secret. */
  function headerLines(s: string): string {
    let colon = s.indexOf(': ');
    if (colon < 0) return s;
    const edits = new Edits(s);
    while (colon >= 0) {
      let next = colon + 2;
      let a = colon;
      while (a > 0 && colon - a < 64 && isHeaderNameChar(s.charCodeAt(a - 1))) a--;
      if (
        a < colon &&
        isLetter(s.charCodeAt(a)) &&
        (a === 0 || isHeaderLead(s.charCodeAt(a - 1))) &&
        mayBeSecretName(s, a, colon)
      ) {
        const name = s.slice(a, colon);
        if (isSecretName(name)) {
          let v = colon + 1;
          while (s.charCodeAt(v) === 32 || s.charCodeAt(v) === 9) v++;
          const kind = kindOf(name);
          // the value's extent, read once (each character is looked at a bounded number of times)
          let end = v;
          const limit = Math.min(s.length, v + MAX_VALUE);
          if (kind === Kind.Plain) {
            while (end < limit && !isLineStop(s.charCodeAt(end)) && !isListStop(s.charCodeAt(end))) end++;
          } else if (kind === Kind.Authorization) {
            // `Scheme token`: the value ends with the token, unless the scheme takes parameters
            while (end < limit && !isLineStop(s.charCodeAt(end)) && !isBlank(s.charCodeAt(end))) end++;
            const scheme = s.slice(v, end).toLowerCase();
            let t = end;
            while (t < limit && isBlank(s.charCodeAt(t))) t++;
            if (t > end && t < limit && !isLineStop(s.charCodeAt(t))) {
              end = t;
              const multi = MULTI_PARAMETER_SCHEMES.has(scheme);
              while (end < limit && !isLineStop(s.charCodeAt(end)) && (multi || !isBlank(s.charCodeAt(end))))
                end++;
            }
          } else while (end < limit && !isLineStop(s.charCodeAt(end))) end++;
          const value = s.slice(v, end).trimEnd();
          const r = replacement(name, value);
          if (r !== undefined) edits.replace(v, v + value.length, r);
          // past the value whether or not it changed: the next pass reads the line the same way
          next = v + value.length;
        }
      }
      colon = s.indexOf(': ', next);
    }
    return edits.result();
  }

  /** `name=value` pairs (query strings, form bodies, cookies, logfmt) whose name names a secret. */
  function keyValues(s: string): string {
    let eq = s.indexOf('=');
    if (eq < 0) return s;
    const edits = new Edits(s);
    while (eq >= 0) {
      let next = eq + 1;
      let a = eq;
      while (a > 0 && eq - a < 64 && isParamNameChar(s.charCodeAt(a - 1))) a--;
      if (a < eq && mayBeSecretName(s, a, eq) && isSecretName(s.slice(a, eq))) {
        const name = s.slice(a, eq);
        let b = eq + 1;
        const limit = Math.min(s.length, b + MAX_VALUE);
        let quoted = s.charCodeAt(b) === 34;
        if (quoted) {
          const e = stringEnd(s, b, limit);
          if (e < 0) quoted = false;
          else b = e + 1;
        }
        if (!quoted) while (b < limit && isParamValueChar(s.charCodeAt(b))) b++;
        if (b > eq + 1 + (quoted ? 1 : 0)) {
          const raw = s.slice(eq + 1, b);
          const value = quoted ? raw.slice(1, -1) : raw;
          const r = replacement(name, quoted ? value : decodeValue(value));
          if (r !== undefined) {
            // an unquoted replacement stays one token of a query string (no spaces, & ; , + %)
            edits.replace(
              eq + 1,
              b,
              quoted ? JSON.stringify(r) : r.replace(/[\s&;,"+%]/g, encodeURIComponent),
            );
          }
          next = b;
        }
      }
      eq = s.indexOf('=', next);
    }
    return edits.result();
  }

  function bearer(s: string): string {
    const edits = new Edits(s);
    const re = BEARER;
    re.lastIndex = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const token = m[3]!;
      const end = m.index + m[0].length;
      if (s.startsWith('[REDACTED', end) || isScrubbed(token)) continue;
      edits.replace(end - token.length, end, credential(token));
    }
    return edits.result();
  }

  /** JWTs (JWS `a.b.c` and JWE `a.b.c.d.e` of base64url segments starting `eyJ`) anywhere. */
  function jwts(s: string): string {
    let at = s.indexOf('eyJ');
    if (at < 0) return s;
    const edits = new Edits(s);
    while (at >= 0) {
      let end = at + 3;
      if (at === 0 || !isBase64Url(s.charCodeAt(at - 1))) {
        // dot-joined runs of base64url characters, each read once: linear in the text
        let segments = 0;
        let j = at;
        for (;;) {
          const start = j;
          while (j < s.length && isBase64Url(s.charCodeAt(j))) j++;
          if (j === start) break;
          segments++;
          end = j;
          if (segments === 5 || s.charCodeAt(j) !== 46) break;
          j++;
        }
        // a JWS has three segments, a JWE five; the first is a JSON header (eyJ…)
        const take = segments >= 5 ? 5 : segments >= 3 ? 3 : 0;
        if (take > 0) {
          const token = s.slice(at, take === segments ? end : at + nthDot(s.slice(at, end), take));
          if (token.length >= 24) {
            edits.replace(at, at + token.length, credential(token));
            end = at + token.length;
          }
        }
      }
      at = s.indexOf('eyJ', end);
    }
    return edits.result();
  }

  function knownKeys(s: string): string {
    const edits = new Edits(s);
    const re = KNOWN_KEYS;
    re.lastIndex = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const key = m[0];
      if (key.startsWith('sk-') && !/[0-9]/.test(key)) continue;
      edits.replace(m.index, m.index + key.length, mask(key));
    }
    return edits.result();
  }

  function modsecurity(s: string): string {
    const edits = new Edits(s);
    let re = MODSEC_DATA;
    re.lastIndex = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      if (!secretVariable(m[2]!, m[3])) continue;
      const matched = m[1]!;
      const dataAt = m.index + 'Matched Data: '.length;
      const valueAt = m.index + m[0].length;
      const valueEnd = modsecValueEnd(s, valueAt);
      if (matched !== '' && !holdsNoSecret(matched))
        edits.replace(dataAt, dataAt + matched.length, mask(matched));
      const value = s.slice(valueAt, valueEnd);
      if (value !== '' && !holdsNoSecret(value)) edits.replace(valueAt, valueEnd, mask(value));
      re.lastIndex = Math.max(re.lastIndex, valueEnd);
    }
    let result = edits.result();
    if (result.indexOf('against variable `') >= 0) {
      const e2 = new Edits(result);
      re = MODSEC_MATCH;
      re.lastIndex = 0;
      for (let m = re.exec(result); m !== null; m = re.exec(result)) {
        if (!secretVariable(m[1]!, m[2])) continue;
        const at = m.index + m[0].length;
        const end = result.indexOf("' )", at);
        if (end < 0) continue;
        const value = result.slice(at, end);
        if (value !== '' && !holdsNoSecret(value)) e2.replace(at, end, mask(value));
        re.lastIndex = end;
      }
      result = e2.result();
    }
    if (result.indexOf(' at ') >= 0 || result.indexOf(' in ') >= 0) {
      const e3 = new Edits(result);
      re = MODSEC_PHRASE;
      re.lastIndex = 0;
      for (let m = re.exec(result); m !== null; m = re.exec(result)) {
        if (!secretVariable(m[3]!, m[4])) continue;
        const phrase = m[2]!;
        if (phrase === '' || holdsNoSecret(phrase)) continue;
        const at = m.index + m[0].indexOf(m[1]!) + m[1]!.length;
        e3.replace(at, at + phrase.length, mask(phrase));
      }
      result = e3.result();
    }
    return result;
  }

  function multipart(s: string): string {
    const edits = new Edits(s);
    const re = MULTIPART;
    re.lastIndex = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const value = m[2]!;
      if (!isSecretName(m[1]!) || holdsNoSecret(value)) continue;
      const end = m.index + m[0].length;
      edits.replace(end - value.length, end, credential(value));
    }
    return edits.result();
  }

  function xmlElements(s: string): string {
    const edits = new Edits(s);
    const re = XML_ELEMENT;
    re.lastIndex = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const tag = m[1]!;
      const value = m[2]!;
      if (!isSecretName(tag.slice(tag.lastIndexOf(':') + 1)) || holdsNoSecret(value.trim())) continue;
      const end = m.index + m[0].length - tag.length - 3;
      edits.replace(end - value.length, end, credential(value.trim()));
    }
    return edits.result();
  }

  function scrubText(text: string, depth: number): string {
    // Each rule runs only where a cheap search finds what it looks for: most records hold no
    // secret, and searching for rare strings is far cheaper than running the patterns.
    let s = text;
    if (depth < 4 && s.indexOf('\\"') >= 0) s = nestedJson(s, depth);
    s = jsonPairs(s);
    s = headerLines(s);
    s = keyValues(s);
    if (s.indexOf('Bearer') >= 0 || s.indexOf('bearer') >= 0) s = bearer(s);
    if (s.indexOf('yJ') >= 0) s = jwts(s);
    // a key glued to another one is seen once its neighbour is a surrogate: again until stable
    if (mayHoldKnownKey(s))
      for (let k = 0, prev = ''; k < 4 && prev !== s; k++) [prev, s] = [s, knownKeys(s)];
    if (s.indexOf('Matched') >= 0 || s.indexOf('tring match') >= 0) s = modsecurity(s);
    if (s.indexOf('form-data') >= 0) s = multipart(s);
    if (s.indexOf('</') >= 0) s = xmlElements(s);
    return s;
  }

  return (text) => {
    fingerprinted = 0;
    // what the normaliser reads is scrubbed; the trailing line end and blanks it drops are kept
    const body = normalizeRecord(text);
    const scrubbed = scrubText(body, 0);
    return body.length === text.length ? scrubbed : scrubbed + trailingBlanks(text);
  };
}

/** The trailing line ends and blanks of a text. */
function trailingBlanks(text: string): string {
  let end = text.length;
  while (end > 0) {
    const c = text.charCodeAt(end - 1);
    if (c !== 10 && c !== 13 && c !== 32 && c !== 9) break;
    end--;
  }
  return text.slice(end);
}

/**
 * A record as the normaliser reads it: without trailing line ends and blanks, with lone
 * surrogates replaced. Scrubbing reads it, so a record scrubbed by a receiver and the same
 * record scrubbed by the normaliser give the same text (and event id).
 */
function normalizeRecord(text: string): string {
  let end = text.length;
  while (end > 0) {
    const c = text.charCodeAt(end - 1);
    if (c !== 10 && c !== 13 && c !== 32 && c !== 9) break;
    end--;
  }
  const t = end === text.length ? text : text.slice(0, end);
  return t.isWellFormed() ? t : t.toWellFormed();
}

/** The scrubber without a key: plain markers. */
const plain = createScrubber();

/** Scrub a text with plain markers (no fingerprints). */
export function scrubSecrets(text: string): string {
  return plain(text);
}

/**
 * A record as it may be stored (dead letters): scrubbed again (it may not have passed a keyed
 * scrubber: a pre-scrubbing queue, an index rejection's document) and with the surrogates'
 * fingerprints dropped, so no keyed hash of a password is stored next to the key.
 */
export function storableRecord(text: string): string {
  return dropFingerprints(plain(text));
}
