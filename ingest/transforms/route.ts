/**
 * Route templates: `/users/123/orders/9f2c4e1ab7` → `/users/{id}/orders/{id}`.
 *
 * Each segment is typed on its own (integers, UUIDs, hex ids, mixed alphanumeric ids such as
 * base62, long tokens, emails, dates). Dictionary words and version segments (`v2`, `1.0`) are
 * never parameters. Remaining plain-string segments (`/shops/acme/revenue`) become `{param}`
 * only after `threshold` distinct values were seen at the same position under the same parent
 * template (and host and depth): the stateful, memory-bounded `RouteLearner`. Once learned, the
 * position is `{param}` for typed values too, so one route has one template.
 */
import { ROUTE_WORDS } from './route-words.ts';

export type SegmentType = 'id' | 'email' | 'date' | 'token' | 'word' | 'string' | 'empty';

export interface RouteConfig {
  /** Distinct plain-string siblings needed before a position becomes `{param}` (default 10). */
  threshold?: number;
  /** Parent prefixes tracked while learning (FIFO-evicted beyond this; default 10 000). */
  maxCandidates?: number;
  /** Learned parameter positions kept (default 10 000). */
  maxLearned?: number;
  /** Segments kept in a template; the rest collapse into `/{…}` (default 24). */
  maxSegments?: number;
  /** Extra words never parameterised (lower-case). */
  words?: string[];
  /** Key learning by host too (default true): `/shops/{param}` on one host only. */
  perHost?: boolean;
}

function isWordPart(p: string, words: ReadonlySet<string>): boolean {
  if (p.length === 0) return true;
  const w = p.toLowerCase();
  if (words.has(w)) return true;
  if (w.length > 3 && w.endsWith('s') && words.has(w.slice(0, -1))) return true;
  if (w.length > 4 && w.endsWith('es') && words.has(w.slice(0, -2))) return true;
  if (w.length > 5 && w.endsWith('ing') && words.has(w.slice(0, -3))) return true;
  if (w.length > 4 && w.endsWith('ed') && (words.has(w.slice(0, -2)) || words.has(w.slice(0, -1))))
    return true;
  return false;
}

/** Whether all parts of a segment (split on - _ . and camelCase) are dictionary words. */
export function isDictionarySegment(seg: string, words: ReadonlySet<string> = ROUTE_WORDS): boolean {
  if (words.has(seg)) return true;
  let start = 0;
  let parts = 0;
  for (let i = 1; i <= seg.length; i++) {
    const c = i < seg.length ? seg.charCodeAt(i) : 45;
    const sep = c === 45 || c === 95 || c === 46;
    const camel =
      c >= 65 && c <= 90 && i < seg.length && seg.charCodeAt(i - 1) >= 97 && seg.charCodeAt(i - 1) <= 122;
    if (sep || camel) {
      const part = seg.slice(start, i);
      if (part !== '' && !isWordPart(part, words)) return false;
      if (part !== '') parts++;
      start = sep ? i + 1 : i;
    }
  }
  return parts > 0;
}

function isUuid(s: string): boolean {
  if (s.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

/** Type of one path segment (raw, as in the URL). */
export function classifySegment(seg: string, words: ReadonlySet<string> = ROUTE_WORDS): SegmentType {
  const n = seg.length;
  if (n === 0) return 'empty';
  let digits = 0;
  let lower = 0;
  let upper = 0;
  let hexLetters = 0;
  let dash = 0;
  let under = 0;
  let dot = 0;
  let other = 0;
  let at = -1;
  for (let i = 0; i < n; i++) {
    const c = seg.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c >= 97 && c <= 122) {
      lower++;
      if (c <= 102) hexLetters++;
    } else if (c >= 65 && c <= 90) {
      upper++;
      if (c <= 70) hexLetters++;
    } else if (c === 45) dash++;
    else if (c === 95) under++;
    else if (c === 46) dot++;
    else if (c === 64) at = i;
    else other++;
  }
  const letters = lower + upper;
  if (digits === n) return 'id';
  // versions: v2, V10, v1.2, 1.0, 2.1.3
  if (
    (seg.charCodeAt(0) === 118 || seg.charCodeAt(0) === 86) &&
    digits === n - 1 - dot &&
    letters === 1 &&
    n <= 8
  )
    return 'word';
  if (digits + dot === n && dot <= 2 && n <= 6) return 'word';
  if (at > 0 && dot > 0 && seg.indexOf('.', at) > at + 1) return 'email';
  if (other > 0 && seg.indexOf('%40') > 0) return 'email';
  if (dash === 4 && isUuid(seg)) return 'id';
  // dates 2024-01-05 / 20240105T...
  if (n === 10 && dash === 2 && digits === 8 && seg.charCodeAt(4) === 45 && seg.charCodeAt(7) === 45)
    return 'date';
  if (other > 0) return 'string';
  // JWT-looking and long opaque tokens
  if (n >= 24 && seg.startsWith('eyJ') && dot === 2) return 'token';
  const alnum = digits + letters;
  if (digits === 0 && upper === 0 && dash + under + dot > 0)
    return isDictionarySegment(seg, words) ? 'word' : 'string';
  if (digits === 0) {
    // pure letters: a word, a camelCase compound of words, or a plain string (learnable)
    if (isDictionarySegment(seg, words)) return 'word';
    if (n >= 16 && upper > 0 && lower > 0 && dash + under + dot === 0 && !/[a-z]{2,}[A-Z][a-z]{2,}/.test(seg))
      return 'id'; // base62 without digits, e.g. "QzLmWkXpRtYuAbCd"
    return 'string';
  }
  // hex ids (ObjectId, hashes, short hex like 9f2c4e1a)
  if (alnum === n && upper === 0 && hexLetters === lower && n >= 8) return 'id';
  if (alnum === n && lower === 0 && hexLetters === upper && n >= 8) return 'id';
  if (n >= 40) return 'token';
  // mixed alphanumerics: ≥ 3 digits and a letter, or long base62-ish ids with a prefix (cus_Nf…)
  if (letters > 0 && digits >= 3 && n >= 6) return 'id';
  if (n >= 10 && digits >= 1 && (upper > 0 || digits >= 2) && letters > 0) {
    return isDictionarySegment(seg, words) ? 'word' : 'id';
  }
  if (isDictionarySegment(seg.replace(/\d+$/, ''), words) && digits <= 2) return 'word'; // "page2", "ipv6"
  return 'string';
}

const PLACEHOLDER: Record<Exclude<SegmentType, 'word' | 'string' | 'empty'>, string> = {
  id: '{id}',
  email: '{email}',
  date: '{date}',
  token: '{token}',
};

export class RouteLearner {
  readonly threshold: number;
  private readonly maxCandidates: number;
  private readonly maxLearned: number;
  private readonly maxSegments: number;
  private readonly perHost: boolean;
  private readonly words: ReadonlySet<string>;
  /** parent key → distinct values seen so far (below threshold). */
  private readonly candidates = new Map<string, Set<string>>();
  /** parent keys whose child position is a parameter. */
  private readonly learned = new Set<string>();

  constructor(config: RouteConfig = {}) {
    this.threshold = Math.max(2, config.threshold ?? 10);
    this.maxCandidates = config.maxCandidates ?? 10_000;
    this.maxLearned = config.maxLearned ?? 10_000;
    this.maxSegments = config.maxSegments ?? 24;
    this.perHost = config.perHost ?? true;
    this.words = config.words
      ? new Set([...ROUTE_WORDS, ...config.words.map((w) => w.toLowerCase())])
      : ROUTE_WORDS;
  }

  /** Template for a path (no query string). Learns from it as a side effect. */
  template(path: string, host?: string): string {
    if (path === '' || path === '/') return '/';
    if (path.charCodeAt(0) !== 47) return path === '*' ? '*' : '{invalid}';
    // Segments are read in place (no split); while every piece is the segment itself the
    // template is the path's prefix up to `end`, materialised only when a piece differs.
    let count = 0;
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) count++;
    const limit = Math.min(count, this.maxSegments);
    let out: string | undefined;
    let start = 1;
    let end = 0;
    for (let i = 1; i <= limit; i++) {
      end = path.indexOf('/', start);
      if (end < 0) end = path.length;
      const seg = path.slice(start, end);
      const type = classifySegment(seg, this.words);
      if (type === 'word' || type === 'empty') {
        if (out !== undefined) out += `/${seg}`;
      } else {
        out ??= path.slice(0, start - 1);
        // A position learned as {param} takes typed values too (`/users/alice` and
        // `/users/bob1234` are one route), so a route never splits into {param} and {id}.
        const piece =
          type === 'string'
            ? this.learn(out, seg, count, host)
            : this.learned.size !== 0 && this.learned.has(this.key(out, count, host))
              ? '{param}'
              : PLACEHOLDER[type];
        out += `/${piece}`;
      }
      start = end + 1;
    }
    out ??= path.slice(0, end);
    if (count > limit) out += '/{…}';
    return out;
  }

  private key(parent: string, depth: number, host: string | undefined): string {
    return `${this.perHost && host !== undefined ? host : ''}|${depth}|${parent}`;
  }

  private learn(parent: string, seg: string, depth: number, host: string | undefined): string {
    const key = this.key(parent, depth, host);
    if (this.learned.has(key)) return '{param}';
    let set = this.candidates.get(key);
    if (set === undefined) {
      if (this.candidates.size >= this.maxCandidates) {
        const oldest = this.candidates.keys().next();
        if (!oldest.done) this.candidates.delete(oldest.value);
      }
      set = new Set();
      this.candidates.set(key, set);
    }
    set.add(seg.length > 64 ? seg.slice(0, 64) : seg);
    if (set.size >= this.threshold && this.learned.size < this.maxLearned) {
      this.candidates.delete(key);
      this.learned.add(key);
      return '{param}';
    }
    return seg;
  }

  stats(): { candidates: number; learned: number } {
    return { candidates: this.candidates.size, learned: this.learned.size };
  }
}
