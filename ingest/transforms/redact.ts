/**
 * Secret redaction. Authorization, Cookie, Set-Cookie and API-key-like headers, and
 * token/password/signature-like query parameters never reach storage in clear: not in
 * `url.original`, `url.query`, `http.request.referrer`, `gatewatch.extra`, nor in
 * `event.original` (the secret substrings inside the stored original line are replaced too).
 * Redacted header and parameter names are listed in `gatewatch.redacted`.
 */

import type { EventDraft, RawRequest } from '../formats/types.ts';
import { child } from '../formats/util.ts';
import { cookiePairs, queryParamNames } from './identity.ts';
import { Lru } from './lru.ts';
import { isScrubbed } from './surrogate.ts';

export interface RedactionConfig {
  /** Extra header names to redact (lower-case). */
  headers?: string[];
  /** Extra query parameter / field names to redact. */
  params?: string[];
  /** Names that look sensitive but must be kept (e.g. "page_token"). */
  keep?: string[];
  /** Replacement text (default "[REDACTED]"). */
  marker?: string;
}

const EXACT = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'key',
  'sig',
  'pwd',
  'pass',
  'passwd',
  'auth',
  'jwt',
  'sid',
  'otp',
  'x-auth',
  'code_verifier',
]);
/** Sensitive-looking names that carry signals, not secrets. */
const KEEP = new Set([
  'leakedcredentialcheckresult',
  'tokencount',
  'tokentype',
  'sessioncount',
  'credentialtype',
  // Pagination continuation tokens: they say which page was read (scraping counts pages), and
  // grant nothing without the caller's own credentials.
  'pagetoken',
  'nextpagetoken',
  'nexttoken',
  'continuationtoken',
  'nextcontinuationtoken',
]);
/**
 * Sensitive words. A name is split into words (on - _ . and spaces, and at camelCase humps) and
 * matched word by word — never by substring, so `tokenize`, `keyword` or `obsession` stay
 * readable. A word matches when it is a root, a root's plural, a root with a common suffix
 * (`tokenid`, `passwordhash`) or a compound ending in a root (`accesstoken`, `xapikey`,
 * `clientsecret`, `jsessionid`).
 */
const ROOTS = [
  'token',
  'secret',
  'password',
  'passwd',
  'passphrase',
  'apikey',
  'accesskey',
  'privatekey',
  'signature',
  'credential',
  'cookie',
  'authorization',
  'subscriptionkey',
  'sessionid',
  'sessionkey',
];
/** Matched as whole words (or with a suffix) only: they end ordinary words ("obsession"). */
const WHOLE = ['session', 'jwt', 'otp', 'pwd', 'sig', 'sid'];
const SUFFIXES = ['s', 'id', 'ids', 'value', 'hash', 'key', 'string'];
/** `<qualifier> key` pairs: "api key", "access_key", "SecretKey", "ocp-apim-subscription-key". */
const KEY_QUALIFIERS = [
  'api',
  'access',
  'private',
  'subscription',
  'secret',
  'signing',
  'client',
  'master',
  'encryption',
];

export function splitWords(name: string): string[] {
  const out: string[] = [];
  let word = '';
  let prevLower = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 45 || c === 95 || c === 46 || c === 32) {
      if (word !== '') out.push(word);
      word = '';
      prevLower = false;
      continue;
    }
    const upper = c >= 65 && c <= 90;
    if (upper && prevLower && word !== '') {
      out.push(word);
      word = '';
    }
    word += upper ? String.fromCharCode(c + 32) : name[i];
    prevLower = (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
  }
  if (word !== '') out.push(word);
  return out;
}

function sensitiveWord(w: string, previous: string | undefined): boolean {
  for (const r of ROOTS) {
    if (w.endsWith(r)) return true;
    if (w.startsWith(r) && SUFFIXES.includes(w.slice(r.length))) return true;
  }
  for (const r of WHOLE) {
    if (w === r || (w.startsWith(r) && SUFFIXES.includes(w.slice(r.length)))) return true;
  }
  if ((w === 'key' || w === 'keys') && previous !== undefined) {
    for (const q of KEY_QUALIFIERS) if (previous.endsWith(q)) return true;
  }
  return false;
}

/** Whether some word of a name (or an adjacent pair) is sensitive. */
export function hasSensitiveWord(name: string): boolean {
  const words = splitWords(name);
  for (let i = 0; i < words.length; i++) if (sensitiveWord(words[i]!, words[i - 1])) return true;
  return false;
}

function compact(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 45 || c === 95 || c === 46 || c === 32) continue;
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : name[i];
  }
  return out;
}

interface Secret {
  name: string;
  value: string;
}

function replaceAll(text: string, find: string, repl: string): string {
  return text.indexOf(find) < 0 ? text : text.split(find).join(repl);
}

export interface Redactor {
  isSensitive(name: string): boolean;
  /** Redact the event in place; returns the redacted original (or the input when nothing matched). */
  apply(
    ev: EventDraft,
    raw: RawRequest,
    original: string | undefined,
    gw?: NonNullable<EventDraft['gatewatch']>,
  ): string | undefined;
  /** Scrub a query string: sensitive values replaced by the marker. */
  redactQuery(query: string, names?: Set<string>, secrets?: Secret[]): string;
}

export function createRedactor(config: RedactionConfig = {}): Redactor {
  const marker = config.marker ?? '[REDACTED]';
  const extra = new Set([...(config.headers ?? []), ...(config.params ?? [])].map(compact));
  const keep = new Set((config.keep ?? []).map(compact));
  const memo = new Map<string, boolean>();

  function isSensitive(name: string): boolean {
    let r = memo.get(name);
    if (r !== undefined) return r;
    const lower = name.toLowerCase();
    const c = compact(name);
    r = false;
    if (!keep.has(c) && !KEEP.has(c)) {
      r = EXACT.has(lower) || extra.has(c) || c.startsWith('xauth') || hasSensitiveWord(name);
    }
    if (memo.size < 4096) memo.set(name, r);
    return r;
  }

  function redactQuery(query: string, names?: Set<string>, secrets?: Secret[]): string {
    const found: string[] | undefined = names === undefined ? undefined : [];
    const out = redactQueryInto(query, found, secrets);
    if (found !== undefined) for (const n of found) names!.add(n);
    return out;
  }

  /** redactQuery, collecting the redacted names in a list (in first-seen order, no duplicates). */
  function redactQueryInto(
    query: string,
    names: string[] | undefined,
    secrets: Secret[] | undefined,
  ): string {
    let changed = false;
    const parts = query.split('&');
    for (let i = 0; i < parts.length && i < 256; i++) {
      const part = parts[i]!;
      const eq = part.indexOf('=');
      if (eq <= 0 || eq === part.length - 1) continue;
      const rawName = part.slice(0, eq);
      const name = decodeName(rawName);
      if (!isSensitive(name)) continue;
      const value = part.slice(eq + 1);
      if (value === marker) continue;
      changed = true;
      if (names !== undefined) addName(names, name);
      secrets?.push({ name: rawName, value });
      parts[i] = `${rawName}=${marker}`;
    }
    return changed ? parts.join('&') : query;
  }

  interface ScrubPlan {
    literals: string[];
    /** Short secrets, replaced only where they follow their name (name=v, "name":"v", name: v). */
    contextual: Secret[];
    /** Length of the shortest text that can contain a secret. */
    shortest: number;
  }

  /** The forms a secret value may take in logged text: as is, JSON-escaped, URL-encoded, `\/`. */
  const formsCache = new Lru<string, string[]>(4096);
  function formsOf(v: string): string[] {
    let forms = formsCache.get(v);
    if (forms === undefined) {
      forms = [v];
      const json = JSON.stringify(v).slice(1, -1);
      if (json !== v) forms.push(json);
      const enc = encodeURIComponent(v);
      if (enc !== v && !forms.includes(enc)) forms.push(enc);
      if (v.indexOf('/') >= 0) {
        const slashed = v.replace(/\//g, '\\/');
        if (!forms.includes(slashed)) forms.push(slashed);
      }
      formsCache.set(v, forms);
    }
    return forms;
  }

  /** Every form a secret may take in logged text, longest first (a header before its parts). */
  function plan(secrets: readonly Secret[]): ScrubPlan {
    const literals: string[] = [];
    // Few secrets per record: a linear scan (=== on strings) beats hashing each value into a Set.
    const seen = secrets.length > 16 ? new Set<string>() : undefined;
    const contextual: Secret[] = [];
    let shortest = Number.POSITIVE_INFINITY;
    for (const s of secrets) {
      const v = s.value;
      if (v.length === 0 || v === marker) continue;
      if (v.length >= 6) {
        // a value of URL-unreserved characters only has one form: no cache lookup; nor has a
        // surrogate (the scrubber wrote it into the record as it is)
        if (unreservedOnly(v) || isScrubbed(v)) {
          if (!(seen === undefined ? literals.includes(v) : seen.has(v))) {
            seen?.add(v);
            literals.push(v);
          }
        } else {
          for (const f of formsOf(v)) {
            if (seen === undefined ? literals.includes(f) : seen.has(f)) continue;
            seen?.add(f);
            literals.push(f);
          }
        }
        if (v.length < shortest) shortest = v.length;
      } else if (s.name !== '') {
        contextual.push(s);
        if (v.length < shortest) shortest = v.length;
      }
    }
    // longest first, ties in insertion order (a stable sort; insertion sort for the usual few)
    if (literals.length > 32) literals.sort((a, b) => b.length - a.length);
    else
      for (let a = 1; a < literals.length; a++) {
        const lit = literals[a]!;
        let b = a - 1;
        while (b >= 0 && literals[b]!.length < lit.length) {
          literals[b + 1] = literals[b]!;
          b--;
        }
        literals[b + 1] = lit;
      }
    return { literals, contextual, shortest };
  }

  function scrub(text: string, p: ScrubPlan): string {
    let out = text;
    const literals = p.literals;
    for (let k = 0; k < literals.length; k++) {
      const lit = literals[k]!;
      let i = out.indexOf(lit);
      if (i < 0) continue;
      // split(lit).join(marker), continuing from the first match instead of splitting
      let r = '';
      let last = 0;
      while (i >= 0) {
        r += out.slice(last, i) + marker;
        last = i + lit.length;
        i = out.indexOf(lit, last);
      }
      out = r + out.slice(last);
    }
    for (const s of p.contextual) out = scrubContextual(out, s.name, s.value, marker);
    return out;
  }

  function scrubExtra(obj: Record<string, unknown>, names: string[], secrets: Secret[], depth: number): void {
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (isSensitive(k) && v !== null && v !== undefined) {
        addName(names, k);
        collect(v, k, secrets, 0);
        obj[k] = marker;
      } else if (typeof v === 'object' && v !== null && depth < 4) {
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            const item = v[i];
            if (typeof item === 'object' && item !== null)
              scrubExtra(item as Record<string, unknown>, names, secrets, depth + 1);
          }
        } else scrubExtra(v as Record<string, unknown>, names, secrets, depth + 1);
      }
    }
  }

  function collect(v: unknown, name: string, secrets: Secret[], depth: number): void {
    if (typeof v === 'string') secrets.push({ name, value: v });
    else if (typeof v === 'number') secrets.push({ name, value: String(v) });
    else if (typeof v === 'object' && v !== null && depth < 3) {
      for (const x of Object.values(v)) collect(x, name, secrets, depth + 1);
    }
  }

  function scrubStrings(obj: Record<string, unknown>, p: ScrubPlan, depth: number): void {
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (typeof v === 'string') {
        if (v.length < p.shortest) continue;
        const r = scrub(v, p);
        if (r !== v) obj[k] = r;
      } else if (typeof v === 'object' && v !== null && depth < 4) {
        scrubStrings(v as Record<string, unknown>, p, depth + 1);
      }
    }
  }

  return {
    isSensitive,
    redactQuery,
    apply(ev, raw, original, gwIn) {
      const secrets: Secret[] = [];
      // Redacted names in first-seen order: a short list (few per record) rather than a Set.
      const names: string[] = [];
      const headers = raw.headers;
      if (headers !== undefined) {
        for (const name in headers) {
          if (!isSensitive(name)) continue;
          const value = headers[name]!;
          if (value === '' || value === '-') continue;
          addName(names, name);
          secrets.push({ name, value });
          const sp = value.indexOf(' ');
          if (sp > 0 && sp < 16) secrets.push({ name, value: value.slice(sp + 1).trim() });
          if (name === 'cookie' || name === 'set-cookie') {
            for (const [cn, cv] of cookiePairs(value)) secrets.push({ name: cn, value: cv });
          }
        }
      }
      if (raw.cookies !== undefined && raw.cookies !== '-') {
        addName(names, 'cookie');
        secrets.push({ name: 'cookie', value: raw.cookies });
        for (const [cn, cv] of cookiePairs(raw.cookies)) secrets.push({ name: cn, value: cv });
      }
      if (raw.credentials !== undefined) {
        for (const c of raw.credentials) {
          addName(names, c.name);
          secrets.push({ name: c.name, value: c.value });
        }
      }
      if (raw.loggedValues !== undefined) {
        for (const k of Object.keys(raw.loggedValues)) {
          if (!isSensitive(k)) continue;
          addName(names, k);
          secrets.push({ name: k, value: raw.loggedValues[k]! });
        }
      }
      if (raw.secretsInOriginal !== undefined) {
        for (const s of raw.secretsInOriginal) secrets.push({ name: '', value: s });
      }

      const url = ev.url;
      if (url?.query !== undefined) {
        const q = url.query;
        const seen = queryParamNames(q, 64);
        if (seen.length > 0) (gwIn ?? child(ev, 'gatewatch')).query_params = seen;
        const red = redactQueryInto(q, names, secrets);
        if (red !== q) {
          url.query = red;
          if (url.original !== undefined) url.original = replaceAll(url.original, q, red);
        }
      }
      const ref = ev.http?.request?.referrer;
      if (ref !== undefined) {
        const qi = ref.indexOf('?');
        if (qi >= 0) {
          const q = ref.slice(qi + 1);
          const red = redactQueryInto(q, names, secrets);
          if (red !== q) ev.http!.request!.referrer = ref.slice(0, qi + 1) + red;
        }
      }
      const gx = (gwIn ?? ev.gatewatch)?.extra;
      if (gx !== undefined) scrubExtra(gx, names, secrets, 0);

      if (secrets.length === 0) return original;
      const p = plan(secrets);
      if (gx !== undefined) scrubStrings(gx, p, 0);
      if (url?.original !== undefined) url.original = scrub(url.original, p);
      if (ev.error?.message !== undefined) ev.error.message = scrub(ev.error.message, p);
      if (names.length > 0) {
        const gw = gwIn ?? child(ev, 'gatewatch');
        const list = gw.redacted ?? [];
        for (const n of names) if (!list.includes(n)) list.push(n);
        gw.redacted = list;
      }
      return original === undefined ? undefined : scrub(original, p);
    },
  };
}

/** Only `A-Z a-z 0-9 - _ . ! ~ * ' ( )`: JSON and URL encoding leave the value as it is. */
function unreservedOnly(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57)) continue;
    if (
      c === 45 ||
      c === 95 ||
      c === 46 ||
      c === 33 ||
      c === 126 ||
      c === 42 ||
      c === 39 ||
      c === 40 ||
      c === 41
    )
      continue;
    return false;
  }
  return true;
}

function addName(names: string[], name: string): void {
  if (!names.includes(name)) names.push(name);
}

function decodeName(raw: string): string {
  if (raw.indexOf('%') < 0 && raw.indexOf('+') < 0) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/**
 * Replace a short value only where it directly follows its name: `name=v`, `name: v`,
 * `"name":"v"`, `'name' = 'v'` (name case-insensitive), never inside longer words.
 */
export function scrubContextual(text: string, name: string, value: string, marker: string): string {
  let from = 0;
  let out = '';
  let last = 0;
  const lname = name.toLowerCase();
  for (;;) {
    const i = text.indexOf(value, from);
    if (i < 0) break;
    from = i + 1;
    const after = text.charCodeAt(i + value.length);
    if (i + value.length < text.length && isAlnum(after)) continue;
    let j = i - 1;
    if (text[j] === '"' || text[j] === "'") j--;
    while (text[j] === ' ') j--;
    if (text[j] !== '=' && text[j] !== ':') continue;
    j--;
    while (text[j] === ' ') j--;
    if (text[j] === '"' || text[j] === "'") j--;
    const start = j - lname.length + 1;
    if (start < 0 || text.slice(start, j + 1).toLowerCase() !== lname) continue;
    if (start > 0 && isAlnum(text.charCodeAt(start - 1))) continue;
    out += text.slice(last, i) + marker;
    last = i + value.length;
    from = last;
  }
  return last === 0 ? text : out + text.slice(last);
}
