/**
 * Small, allocation-light helpers shared by the format parsers. Nothing here throws on bad input.
 *
 * The formats set optional fields with the plain two-line idiom (`const v = …; if (v !==
 * undefined) obj.k = v;`) on purpose: a shared `put(obj, 'k', v)` setter turns every site's
 * named store into one megamorphic keyed store, and measured 11 % slower in bench:ingest:cpu.
 */
import type { EventDraft } from './types.ts';

export type Obj = Record<string, unknown>;

/** `o[k]`, created as `{}` when missing (the `child(o, 'k')` idiom without assignment-in-expression). */
export function child<T extends object, K extends keyof T>(o: T, k: K): NonNullable<T[K]> {
  let v = o[k];
  if (v === undefined || v === null) {
    v = {} as T[K];
    o[k] = v;
  }
  return v as NonNullable<T[K]>;
}

/** `o[k]`, created as `[]` when missing. */
export function childList<T extends object, K extends keyof T>(o: T, k: K): NonNullable<T[K]> {
  let v = o[k];
  if (v === undefined || v === null) {
    v = [] as T[K];
    o[k] = v;
  }
  return v as NonNullable<T[K]>;
}

/** A string, with the empty string treated as missing. */
export function nz(s: string | undefined): string | undefined {
  return s === '' ? undefined : s;
}

/** Whether an object has at least one own enumerable key. */
export function hasKeys(o: object): boolean {
  for (const _k in o) return true;
  return false;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string value, with `-`, empty strings and null treated as missing. Numbers are stringified. */
export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v === '' || v === '-' ? undefined : v;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

/** An integer from a number or numeric string; `-`, empty, negative sentinels and garbage → undefined. */
export function int(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    if (v === '' || v === '-') return undefined;
    n = Number(v);
  } else return undefined;
  if (!Number.isFinite(n)) return undefined;
  return Math.trunc(n);
}

/** A non-negative integer (sizes, statuses): negative sentinels such as -1 become undefined. */
export function uint(v: unknown): number | undefined {
  const n = int(v);
  return n === undefined || n < 0 ? undefined : n;
}

/** A finite float from a number or numeric string. */
export function num(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    if (v === '' || v === '-') return undefined;
    n = Number(v);
  } else return undefined;
  return Number.isFinite(n) ? n : undefined;
}

/** A number, or undefined when it is not finite (overflowed unit conversions). */
export function finite(n: number): number | undefined {
  return Number.isFinite(n) ? n : undefined;
}

/** Seconds (float) → nanoseconds; negative sentinels (-1) → undefined. */
export function sToNs(v: unknown): number | undefined {
  const n = num(v);
  return n === undefined || n < 0 ? undefined : finite(Math.round(n * 1e9));
}

/** Milliseconds → nanoseconds; negative sentinels → undefined. */
export function msToNs(v: unknown): number | undefined {
  const n = num(v);
  return n === undefined || n < 0 ? undefined : finite(Math.round(n * 1e6));
}

/** Seconds → milliseconds (double), negative sentinels → undefined. */
export function sToMs(v: unknown): number | undefined {
  const n = num(v);
  return n === undefined || n < 0 ? undefined : finite(Math.round(n * 1e6) / 1e3);
}

/**
 * The status the upstream finally answered, from nginx `$upstream_status` and the like: a number,
 * or a list after retries and internal redirects ("502, 200", "502 : 200") whose last entry is the
 * answer the client got. Undefined for "", "-" or no number (the gateway answered itself).
 */
export function upstreamStatus(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 100 && v <= 999 ? v : undefined;
  if (typeof v !== 'string' || v === '' || v === '-') return undefined;
  const cut = Math.max(v.lastIndexOf(','), v.lastIndexOf(':'));
  const last = (cut < 0 ? v : v.slice(cut + 1)).trim();
  return /^\d{3}$/.test(last) ? Number(last) : undefined;
}

/** First value of a comma list ("0.010, 0.020" after upstream retries), in seconds → ms. */
export function firstListSeconds(v: unknown): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const comma = s.indexOf(',');
  return sToMs(comma < 0 ? s : s.slice(0, comma).trim());
}

const MIN_TS = Date.UTC(1990, 0, 1);
const MAX_TS = Date.UTC(2200, 0, 1);

/** ms since epoch → ISO-8601 UTC with milliseconds, or undefined when out of a sane range. */
export function isoFromMs(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms < MIN_TS || ms > MAX_TS) return undefined;
  const t = Math.floor(ms);
  // Log lines arrive roughly in order: reuse the formatted date of the previous call's day.
  const day = Math.floor(t / 86_400_000);
  if (day !== lastDay) {
    lastDay = day;
    lastDayPrefix = new Date(day * 86_400_000).toISOString().slice(0, 11);
  }
  const r = t - day * 86_400_000;
  const h = Math.floor(r / 3_600_000);
  const m = Math.floor((r % 3_600_000) / 60_000);
  const sec = Math.floor((r % 60_000) / 1000);
  const milli = r % 1000;
  return `${lastDayPrefix}${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}:${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

let lastDay = Number.NaN;
let lastDayPrefix = '';

/** Epoch number in s, ms, µs or ns, chosen by magnitude (as Cloudflare's `timestamp_format`). */
export function epochToMs(v: number): number {
  const a = Math.abs(v);
  if (a >= 1e17) return v / 1e6; // ns
  if (a >= 1e14) return v / 1e3; // µs
  if (a >= 1e11) return v; // ms
  return v * 1000; // s
}

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

function digits(s: string, start: number, len: number): number {
  let n = 0;
  for (let i = start; i < start + len; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return Number.NaN;
    n = n * 10 + c;
  }
  return n;
}

/** Common Log Format time `10/Oct/2000:13:55:36 -0700` (brackets optional) → ms. */
export function parseClfTime(s: string): number | undefined {
  let t = s;
  if (t.charCodeAt(0) === 91 /* [ */) t = t.slice(1, t.endsWith(']') ? -1 : undefined);
  if (t.length < 20 || t.charCodeAt(2) !== 47 || t.charCodeAt(6) !== 47 || t.charCodeAt(11) !== 58)
    return undefined;
  const day = digits(t, 0, 2);
  const mon = MONTHS[t.slice(3, 6)];
  const year = digits(t, 7, 4);
  const hh = digits(t, 12, 2);
  const mm = digits(t, 15, 2);
  const ss = digits(t, 18, 2);
  if (mon === undefined || Number.isNaN(day + year + hh + mm + ss)) return undefined;
  let ms = 0;
  let i = 20;
  if (t.charCodeAt(i) === 46 /* . */) {
    // fractional seconds (API Gateway requestTime has none, but some templates do)
    let j = i + 1;
    let frac = '';
    while (j < t.length && t.charCodeAt(j) >= 48 && t.charCodeAt(j) <= 57) frac += t[j++];
    ms = Number((frac + '000').slice(0, 3));
    i = j;
  }
  let offsetMin = 0;
  const rest = t.slice(i).trim();
  if (rest.length >= 5 && (rest[0] === '+' || rest[0] === '-')) {
    const oh = digits(rest, 1, 2);
    const om = digits(rest, rest.charCodeAt(3) === 58 ? 4 : 3, 2);
    if (Number.isNaN(oh + om)) return undefined;
    offsetMin = (rest[0] === '-' ? -1 : 1) * (oh * 60 + om);
  } else if (rest !== '' && rest !== 'Z' && rest !== 'UTC' && rest !== 'GMT') return undefined;
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return undefined;
  return Date.UTC(year, mon, day, hh, mm, ss, ms) - offsetMin * 60_000;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The common shape `YYYY-MM-DD(T| )HH:MM:SS(.fraction)?(Z|±HH:MM)?` read digit by digit (no zone
 * = UTC; fraction truncated to ms, as Date.parse does). Undefined for anything else (out of range
 * fields included), which then goes through Date.parse: same results, a tenth of the time.
 */
function isoFast(s: string): number | undefined {
  const n = s.length;
  if (n < 19) return undefined;
  const sep = s.charCodeAt(10);
  if (
    s.charCodeAt(7) !== 45 ||
    (sep !== 84 && sep !== 32) ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  )
    return undefined;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  const h = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  const sec = digits(s, 17, 2);
  // NaN fails every comparison below
  if (!(y >= 1000 && mo >= 1 && mo <= 12 && d >= 1 && h <= 23 && mi <= 59 && sec <= 59)) return undefined;
  const leap = mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  if (d > DAYS_IN_MONTH[mo - 1]! + (leap ? 1 : 0)) return undefined;
  let i = 19;
  let ms = 0;
  if (i < n && s.charCodeAt(i) === 46 /* . */) {
    i++;
    const start = i;
    while (i < n) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      if (i - start < 3) ms = ms * 10 + c;
      i++;
    }
    const k = i - start;
    if (k === 0) return undefined;
    if (k === 1) ms *= 100;
    else if (k === 2) ms *= 10;
  }
  let offsetMin = 0;
  if (i < n) {
    const c = s.charCodeAt(i);
    if (c === 90 /* Z */) {
      if (i + 1 !== n) return undefined;
    } else if ((c === 43 || c === 45) && i + 6 === n && s.charCodeAt(i + 3) === 58) {
      const oh = digits(s, i + 1, 2);
      const om = digits(s, i + 4, 2);
      if (!(oh <= 23 && om <= 59)) return undefined;
      offsetMin = (c === 45 ? -1 : 1) * (oh * 60 + om);
    } else return undefined;
  }
  return Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offsetMin * 60_000;
}

/** ISO-8601 / RFC 3339 (any fraction length; no zone = UTC) → ms. */
export function parseIsoTime(s: string): number | undefined {
  if (s.length < 10 || s.charCodeAt(4) !== 45 /* - */) return undefined;
  const fast = isoFast(s);
  if (fast !== undefined) return fast;
  let t = s;
  // "2024-01-05 10:00:00" → "T"; a missing zone means UTC (never local time).
  if (t.length > 10 && t.charCodeAt(10) === 32) t = `${t.slice(0, 10)}T${t.slice(11)}`;
  if (t.length > 10) {
    const last = t.charCodeAt(t.length - 1);
    const tail = t.slice(-6);
    const hasZone = last === 90 || last === 122 || /[+-]\d\d:?\d\d$/.test(tail);
    if (!hasZone) t += 'Z';
  }
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Any timestamp representation: number (epoch by magnitude), numeric string, ISO-8601, CLF.
 * Returns ms since the epoch.
 */
export function anyTimeToMs(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? epochToMs(v) : undefined;
  if (typeof v !== 'string' || v === '' || v === '-') return undefined;
  const c = v.charCodeAt(0);
  if (c === 91 /* [ */ || (v.length > 6 && v.charCodeAt(2) === 47) /* / */) return parseClfTime(v);
  if (v.charCodeAt(4) === 45) return parseIsoTime(v);
  if (c >= 48 && c <= 57) {
    const n = Number(v);
    if (Number.isFinite(n)) return epochToMs(n);
  }
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

/** ECS event.outcome from an HTTP status: 1xx-3xx success, 4xx/5xx failure, else unknown. */
export function outcomeOf(status: number | undefined): 'success' | 'failure' | 'unknown' {
  if (status === undefined || status < 100 || status > 599) return 'unknown';
  return status < 400 ? 'success' : 'failure';
}

const VERSION_CACHE = new Map<string, string | undefined>();

/** "HTTP/1.1" → "1.1", "HTTP/2.0" → "2", "h2" → "2"; undefined when absent. */
export function httpVersion(v: unknown): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  // a handful of distinct values in practice: cached
  let out = VERSION_CACHE.get(s);
  if (out === undefined && !VERSION_CACHE.has(s)) {
    out = httpVersionOf(s);
    if (VERSION_CACHE.size < 256) VERSION_CACHE.set(s, out);
  }
  return out;
}

function httpVersionOf(v: string): string | undefined {
  let s = v;
  if (s.startsWith('HTTP/') || s.startsWith('http/')) s = s.slice(5);
  else if (s === 'h2' || s === 'h2c') return '2';
  else if (s === 'h3') return '3';
  // "2.0" → "2", "2.0.0.0" (Azure) → "2", "1.1.0.0" → "1.1"; HTTP/1.x keeps its minor ("1.0")
  const m = /^(\d)(?:\.(\d))?(?:\.0)*$/.exec(s);
  if (m) {
    if (m[1] === '1') return `1.${m[2] ?? '0'}`;
    return m[2] === undefined || m[2] === '0' ? m[1]! : `${m[1]}.${m[2]}`;
  }
  return s === '' ? undefined : s;
}

const METHOD_CACHE = new Map<string, string>();

/** Upper-case HTTP method (cached: the set of methods is tiny). */
export function method(v: unknown): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  let m = METHOD_CACHE.get(s);
  if (m === undefined) {
    m = s.toUpperCase();
    if (METHOD_CACHE.size < 256) METHOD_CACHE.set(s, m);
  }
  return m;
}

export interface UrlParts {
  original: string;
  path?: string;
  query?: string;
  scheme?: string;
  domain?: string;
  port?: number;
}

/**
 * Split a request target: origin form (`/p?q`), absolute form (`https://h:443/p?q`), or
 * `*`. The fragment (rarely logged) is dropped from path and query.
 */
export function splitTarget(target: string): UrlParts {
  const out: UrlParts = { original: target };
  let rest = target;
  const schemeEnd = rest.indexOf('://');
  if (schemeEnd > 0 && schemeEnd < 10 && rest.charCodeAt(0) !== 47) {
    out.scheme = rest.slice(0, schemeEnd).toLowerCase();
    rest = rest.slice(schemeEnd + 3);
    let slash = rest.indexOf('/');
    const q = rest.indexOf('?');
    if (q >= 0 && (slash < 0 || q < slash)) slash = q;
    const authority = slash < 0 ? rest : rest.slice(0, slash);
    rest = slash < 0 ? '/' : rest.charCodeAt(slash) === 63 ? `/${rest.slice(slash)}` : rest.slice(slash);
    const hp = splitHostPort(authority);
    out.domain = hp.host;
    if (hp.port !== undefined) out.port = hp.port;
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const qi = rest.indexOf('?');
  if (qi < 0) out.path = rest;
  else {
    out.path = rest.slice(0, qi);
    const query = rest.slice(qi + 1);
    if (query !== '') out.query = query;
  }
  if (out.path === '') delete out.path;
  return out;
}

/** "host:port", "[v6]:port", "v6" (several colons, no brackets) → host and port. */
export function splitHostPort(s: string): { host: string; port?: number } {
  if (s.charCodeAt(0) === 91 /* [ */) {
    const close = s.indexOf(']');
    if (close < 0) return { host: s };
    const host = s.slice(1, close);
    const port = s.charCodeAt(close + 1) === 58 ? uint(s.slice(close + 2)) : undefined;
    return port === undefined ? { host } : { host, port };
  }
  const colon = s.lastIndexOf(':');
  if (colon < 0 || s.indexOf(':') !== colon) return { host: s };
  const port = uint(s.slice(colon + 1));
  const host = s.slice(0, colon);
  return port === undefined ? { host } : { host, port };
}

/**
 * A canonical dotted quad ("203.0.113.9": four decimal parts 0-255, no leading zeros, nothing
 * else) as an unsigned 32-bit number, or -1. Such strings are their own normalised form, so the
 * common case needs neither ipaddr.js nor a cache entry (every client address differs).
 */
export function canonicalIPv4(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/** A cheap syntactic IP check (v4 dotted quad, or something with colons and hex digits). */
export function looksLikeIp(s: string | undefined): s is string {
  if (s === undefined || s.length < 2 || s.length > 45) return false;
  if (s.indexOf(':') >= 0) return /^[0-9A-Fa-f:.]+(?:%[\w.-]+)?$/.test(s) && s.indexOf(':::') < 0;
  return canonicalIPv4(s) >= 0;
}

/** An IP for an `ip` field, or undefined (so a host name never breaks the strict mapping). */
export function ipOrUndef(v: unknown): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const pct = s.indexOf('%');
  const ip = pct > 0 ? s.slice(0, pct) : s;
  return looksLikeIp(ip) ? ip : undefined;
}

/** `decodeURIComponent` that never throws (malformed escapes are kept as they are). */
export function decodeSafe(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%[0-9A-Fa-f]{2}/g, (m) => {
      const c = Number.parseInt(m.slice(1), 16);
      return c < 0x80 ? String.fromCharCode(c) : m;
    });
  }
}

/** Headers from an object (`{Name: "v"}` or `{name: ["a","b"]}`) → lower-case map. */
export function headersFromObject(o: unknown): Record<string, string> | undefined {
  if (!isObj(o)) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const k of Object.keys(o)) {
    const v = o[k];
    let s: string | undefined;
    if (typeof v === 'string') s = v;
    else if (Array.isArray(v)) s = v.filter((x) => typeof x === 'string').join(', ');
    else if (typeof v === 'number') s = String(v);
    if (s === undefined) continue;
    const name = k.toLowerCase();
    const prev = out[name];
    out[name] = prev === undefined ? s : `${prev}, ${s}`;
    any = true;
  }
  return any ? out : undefined;
}

/** Headers from `[{name, value}]` (AWS WAF) → lower-case map. */
export function headersFromPairs(a: unknown): Record<string, string> | undefined {
  if (!Array.isArray(a)) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const h of a) {
    if (!isObj(h) || typeof h.name !== 'string') continue;
    const v = typeof h.value === 'string' ? h.value : str(h.value);
    if (v === undefined) continue;
    const name = h.name.toLowerCase();
    const prev = out[name];
    out[name] = prev === undefined ? v : `${prev}, ${v}`;
    any = true;
  }
  return any ? out : undefined;
}

/**
 * Split a space-separated log line with "quoted" (backslash escapes) and [bracketed] fields.
 * Quotes keep their content (escapes `\"` and `\\` resolved); `-` stays `-`.
 * Returns undefined for an unterminated quote or bracket (truncated line).
 */
export function tokenize(line: string, max = 64, brackets = true): string[] | undefined {
  const out: string[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    if (out.length >= max) return undefined;
    if (c === 34 /* " */) {
      let j = i + 1;
      let buf = '';
      let start = j;
      for (;;) {
        if (j >= n) return undefined;
        c = line.charCodeAt(j);
        if (c === 34) break;
        if (c === 92 /* \ */ && j + 1 < n) {
          buf += line.slice(start, j);
          const e = line.charCodeAt(j + 1);
          buf += e === 110 ? '\n' : e === 116 ? '\t' : line[j + 1];
          j += 2;
          start = j;
          continue;
        }
        j++;
      }
      out.push(buf + line.slice(start, j));
      i = j + 1;
    } else if (brackets && c === 91 /* [ */ && bracketToken(line, i)) {
      const j = line.indexOf(']', i + 1);
      out.push(line.slice(i + 1, j));
      i = j + 1;
    } else {
      let j = i + 1;
      while (j < n) {
        const d = line.charCodeAt(j);
        if (d === 32 || d === 9) break;
        j++;
      }
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

/** A `[…]` field: closed, and followed by a separator (not `[v6]:port`). */
function bracketToken(line: string, i: number): boolean {
  const j = line.indexOf(']', i + 1);
  if (j < 0) return false;
  const next = line.charCodeAt(j + 1);
  return j + 1 >= line.length || next === 32 || next === 9;
}

const VALID_METHODS = new Set<string>();

function validMethod(m: string): boolean {
  if (!/^[A-Z_-]{1,20}$/.test(m)) return false;
  if (VALID_METHODS.size < 256) VALID_METHODS.add(m);
  return true;
}

/** "GET /path?q HTTP/1.1" → parts; undefined when it does not look like a request line. */
export function parseRequestLine(
  s: string | undefined,
): { method: string; target: string; version?: string } | undefined {
  if (s === undefined || s === '' || s === '-') return undefined;
  const sp1 = s.indexOf(' ');
  if (sp1 <= 0) return undefined;
  const sp2 = s.lastIndexOf(' ');
  const m = method(s.slice(0, sp1));
  if (m === undefined || !(VALID_METHODS.has(m) || validMethod(m))) return undefined;
  if (sp2 === sp1) return { method: m, target: s.slice(sp1 + 1) };
  const v = s.slice(sp2 + 1);
  if (!v.startsWith('HTTP/')) return { method: m, target: s.slice(sp1 + 1) };
  const version = httpVersion(v);
  const target = s.slice(sp1 + 1, sp2);
  return version === undefined ? { method: m, target } : { method: m, target, version };
}

/** Set `gatewatch.extra[key]` (creating the objects). */
export function setExtra(ev: EventDraft, key: string, value: unknown): void {
  if (value === undefined || value === null || value === '' || value === '-') return;
  if (Array.isArray(value) && value.length === 0) return;
  // named loads (not child()'s keyed ones): formats call this several times per record
  let gw = ev.gatewatch;
  if (gw === undefined) {
    gw = {};
    ev.gatewatch = gw;
  }
  let extra = gw.extra;
  if (extra === undefined) {
    extra = {};
    gw.extra = extra;
  }
  extra[key] = value;
}

/** Merge a URL split into an event draft's `url`. */
export function applyUrl(ev: EventDraft, parts: UrlParts | undefined): void {
  if (parts === undefined) return;
  const url = child(ev, 'url');
  // an empty target ("GET  HTTP/1.1") leaves `url` empty: see dropEmptyUrl
  if (parts.original !== '') url.original = parts.original;
  if (parts.path !== undefined) url.path = parts.path;
  if (parts.query !== undefined) url.query = parts.query;
  if (parts.scheme !== undefined) url.scheme = parts.scheme;
  // an empty host ("http:///p") is no host
  if (parts.domain !== undefined && parts.domain !== '') url.domain = parts.domain;
  if (parts.port !== undefined) url.port = parts.port;
}

/** Remove `url` when nothing was put in it (after applyUrl of an empty target). */
export function dropEmptyUrl(ev: EventDraft): void {
  if (ev.url !== undefined && !hasKeys(ev.url)) delete ev.url;
}

/** `@timestamp` or the receive time with a `_timestamp_fallback` tag. */
export function timestampOr(ev: EventDraft, ms: number | undefined, receivedAt: number): void {
  const iso = isoFromMs(ms);
  if (iso !== undefined) ev['@timestamp'] = iso;
  else {
    ev['@timestamp'] = new Date(receivedAt).toISOString();
    childList(ev, 'tags').push('_timestamp_fallback');
  }
}

/** The JSON object of the record, or a failure reason. */
export function jsonObject(line: string, json: unknown): Obj | string {
  if (json !== undefined) return isObj(json) ? json : 'record is not a JSON object';
  if (line.charCodeAt(0) !== 123) return 'record is not a JSON object';
  try {
    const v: unknown = JSON.parse(line);
    return isObj(v) ? v : 'record is not a JSON object';
  } catch (e) {
    return `invalid JSON: ${(e as Error).message.slice(0, 120)}`;
  }
}

/** Dotted-path read from a parsed JSON object (also accepts keys containing dots). */
export function pick(o: Obj, path: string): unknown {
  if (path in o) return o[path];
  let node: unknown = o;
  let start = 0;
  for (;;) {
    if (!isObj(node)) return undefined;
    const dot = path.indexOf('.', start);
    if (dot < 0) return node[path.slice(start)];
    const rest = path.slice(start);
    if (rest in node) return node[rest];
    node = node[path.slice(start, dot)];
    start = dot + 1;
  }
}

/** WAF action words of many vendors → Gatewatch's `gatewatch.waf.action`. */
export function wafAction(v: unknown): string | undefined {
  const s = str(v)?.toLowerCase();
  if (s === undefined) return undefined;
  switch (s) {
    case 'allow':
    case 'allowed':
    case 'pass':
    case 'skip':
    case 'bypass':
      return 'allow';
    case 'block':
    case 'blocked':
    case 'deny':
    case 'denied':
    case 'drop':
    case 'intercepted':
    case 'connectionclose':
      return 'block';
    case 'count':
      return 'count';
    case 'challenge':
    case 'managed_challenge':
    case 'js_challenge':
    case 'jschallenge':
    case 'challengesolved':
    case 'challenge_solved':
    case 'redirect':
      return 'challenge';
    case 'captcha':
      return 'captcha';
    case 'log':
    case 'detected':
    case 'matched':
    case 'anomalyscoring':
    case 'detect':
      return 'log';
    default:
      return s;
  }
}

/** event.outcome for a WAF record without a response status. */
export function outcomeOfWaf(action: string | undefined): 'success' | 'failure' | 'unknown' {
  switch (action) {
    case 'block':
    case 'challenge':
    case 'captcha':
      return 'failure';
    case 'allow':
    case 'count':
    case 'log':
      return 'success';
    default:
      return 'unknown';
  }
}

/** event.type for a WAF decision. */
export function wafEventType(action: string | undefined): string[] {
  return action === 'block' || action === 'challenge' || action === 'captcha'
    ? ['access', 'denied']
    : ['access', 'allowed'];
}

const ATTACK_CLASS_CACHE = new Map<string, string | null>();

/** Attack class from CRS-style tags or rule names ("attack-sqli", "SQLI-942330", "xss"). */
export function attackClass(texts: readonly (string | undefined)[]): string | undefined {
  for (const t of texts) {
    if (t === undefined) continue;
    // rule names, labels and tags repeat: the class of each text is remembered (bounded)
    let c = ATTACK_CLASS_CACHE.get(t);
    if (c === undefined) {
      c = attackClassOf(t) ?? null;
      if (ATTACK_CLASS_CACHE.size < 4096 && t.length <= 256) ATTACK_CLASS_CACHE.set(t, c);
    }
    if (c !== null) return c;
  }
  return undefined;
}

function attackClassOf(t: string): string | undefined {
  const s = t.toLowerCase();
  if (s.includes('sqli') || s.includes('sql injection') || s.includes('sql_injection')) return 'sqli';
  if (s.includes('xss') || s.includes('cross-site scripting') || s.includes('cross_site_scripting'))
    return 'xss';
  if (s.includes('attack-rce') || s.includes('remote command') || s.includes('rce')) return 'rce';
  if (s.includes('attack-lfi') || s.includes('path traversal') || s.includes('lfi')) return 'lfi';
  if (s.includes('attack-rfi') || s.includes('rfi')) return 'rfi';
  if (s.includes('attack-protocol') || s.includes('protocol')) return 'protocol';
  if (s.includes('scanner') || s.includes('attack-reputation-scanner')) return 'scanner';
  if (s.includes('bot')) return 'bot';
  if (s.includes('ssrf')) return 'ssrf';
  return undefined;
}

/** "TLSv1.3" / "TLSv1_2" / "tls1.2" / "1.2" → "1.2". */
export function tlsVersion(v: unknown): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const m = /(\d)[._](\d)/.exec(s);
  return m ? `${m[1]}.${m[2]}` : s;
}
