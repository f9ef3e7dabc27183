/**
 * What a scrubbed secret is replaced with. In the queue (Redis) a secret becomes a *surrogate*
 * that carries its keyed fingerprint, `[REDACTED:<32 hex>]` (the same HMAC identity.ts computes),
 * so workers still derive API-key fingerprints and tell two different secrets apart (event ids
 * stay distinct) without ever seeing the secret. Two surrogates keep what identity needs and is
 * not secret: a JWT keeps its header and claims (`eyJ….eyJ….[REDACTED:…]`, the signature goes),
 * a Basic credential keeps its user name (`base64("user:[REDACTED:…]")`, the password goes).
 *
 * What is stored (Elasticsearch, SQLite, dead letters) carries the plain marker only
 * (`dropFingerprints`): no keyed hash of a password sits next to the key that made it.
 */

export const MARKER = '[REDACTED]';
const OPEN = '[REDACTED:';
const FP_LENGTH = 32;
/** The shortest text that holds a surrogate (a Basic one, base64, is longer). */
export const SURROGATE_LENGTH = OPEN.length + FP_LENGTH + 1;

/** The surrogate of a secret whose fingerprint is `fp` (the plain marker without one). */
export function surrogate(fp: string | undefined): string {
  return fp === undefined ? MARKER : `${OPEN}${fp}]`;
}

function isHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Fingerprint of a surrogate that ends `s`, if one does. */
function trailingFingerprint(s: string): string | undefined {
  const at = s.length - FP_LENGTH - OPEN.length - 1;
  if (at < 0 || s.charCodeAt(s.length - 1) !== 93 /* ] */ || !s.startsWith(OPEN, at)) return undefined;
  const from = at + OPEN.length;
  return isHex(s, from, from + FP_LENGTH) ? s.slice(from, from + FP_LENGTH) : undefined;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The fingerprint a scrubbed credential carries: a surrogate, a JWT whose signature is a
 * surrogate, or a Basic credential whose password is one. Undefined for anything else.
 */
export function carriedFingerprint(value: string): string | undefined {
  if (value.length < FP_LENGTH + OPEN.length + 1) return undefined;
  const fp = trailingFingerprint(value);
  if (fp !== undefined) return fp;
  if (value.length > 4096 || value.charCodeAt(value.length - 1) === 93 || !BASE64.test(value))
    return undefined;
  return trailingFingerprint(Buffer.from(value, 'base64').toString('latin1'));
}

/** Whether a value is already a scrubbing result (so scrubbing again leaves it as it is). */
export function isScrubbed(value: string): boolean {
  if (value === MARKER) return true;
  if (value.charCodeAt(value.length - 1) !== 93) return false;
  if (trailingFingerprint(value) !== undefined) {
    const start = value.length - FP_LENGTH - OPEN.length - 1;
    return start === 0 || isJwtHead(value, start);
  }
  return value.endsWith(MARKER) && isJwtHead(value, value.length - MARKER.length);
}

/** `value[0, end)` is `<header>.<claims>.` of a JWT (the part a JWT surrogate keeps). */
function isJwtHead(value: string, end: number): boolean {
  if (!value.startsWith('eyJ') || value.charCodeAt(end - 1) !== 46) return false;
  let dots = 0;
  for (let i = 0; i < end; i++) {
    const c = value.charCodeAt(i);
    if (c === 46) dots++;
    else if (!isBase64Url(c)) return false;
  }
  return dots === 2;
}

export function isBase64Url(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95;
}

/** A Basic credential (base64 of `user:password`) whose password is a scrubbing result. */
export function isScrubbedBasic(cred: string): boolean {
  if (cred.length > 4096 || !BASE64.test(cred)) return false;
  const decoded = Buffer.from(cred, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && isScrubbed(decoded.slice(colon + 1));
}

const SURROGATES = /(?:eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.)?\[REDACTED:[0-9a-f]{32}\]/g;
const BASIC = /(\bBasic\s+)([A-Za-z0-9+/]{40,}={0,2})/gi;

/**
 * Surrogates replaced by the plain marker, for what is stored: a JWT surrogate as a whole, a
 * Basic credential's surrogate with its user name.
 */
export function dropFingerprints(text: string): string {
  let out = text;
  if (out.indexOf(OPEN) >= 0) out = out.replace(SURROGATES, MARKER);
  if (mayHoldBasicSurrogate(out))
    out = out.replace(BASIC, (m, scheme: string, cred: string) =>
      carriedFingerprint(cred) !== undefined ? `${scheme}${MARKER}` : m,
    );
  return out;
}

/**
 * What base64 text holding `[REDACTED:` holds, whatever its alignment: the encodings of the
 * marker's whole 3-byte groups when it starts at a group boundary, one byte after, two after.
 */
const BASE64_MARKS = [0, 1, 2].map((start) =>
  Buffer.from(OPEN.slice(start, start + 3 * Math.floor((OPEN.length - start) / 3))).toString('base64'),
);

function mayHoldBasicSurrogate(text: string): boolean {
  // only after a Basic scheme (`Basic`, `basic`, `BASIC`): most texts have none
  if (text.indexOf('asic') < 0 && text.indexOf('ASIC') < 0) return false;
  for (const mark of BASE64_MARKS) if (text.indexOf(mark) >= 0) return true;
  return false;
}

/** Whether a text may hold a surrogate (dropFingerprints would change it). */
export function mayHoldSurrogate(text: string): boolean {
  return text.indexOf(OPEN) >= 0 || mayHoldBasicSurrogate(text);
}
