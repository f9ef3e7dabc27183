/**
 * Time in object names, so a time range reads only the objects that matter: the key layouts
 * cloud services write their logs in, and a listing walk that skips date partitions outside
 * the range.
 *
 *   ALB    …/AWSLogs/<acct>/elasticloadbalancing/<region>/YYYY/MM/DD/<acct>_elasticloadbalancing_<region>_app.<lb>_YYYYMMDDTHHMMZ_<ip>_<rand>.log.gz
 *   WAF    …/AWSLogs/<acct>/WAFLogs/<region>/<acl>/YYYY/MM/DD/HH/mm/<acct>_waflogs_<region>_<acl>_YYYYMMDDTHHmmZ_<hash>.log.gz
 *   CloudFront (legacy, flat)  …/<distribution>.YYYY-MM-DD-HH.<id>.gz
 *   Firehose to S3 (WAF, CloudWatch Logs)  …/YYYY/MM/DD/HH/<stream>-<n>-YYYY-MM-DD-HH-MM-SS-<uuid>(.gz)
 *   Azure Monitor  insights-logs-<category>/resourceId=/…/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json
 *   Hive-style  dt=YYYY-MM-DD/, date=YYYY-MM-DD/, year=/month=/day=/hour=
 *
 * Partitions are named by delivery time, which trails the events inside by the delivery
 * interval (5 min for ALB and WAF, up to 15 min for Firehose, an hour for PT1H.json), so
 * objects are kept when their time lies within LAYOUT_MARGIN_MS of the range.
 */

export const LAYOUT_MARGIN_MS = 2 * 3_600_000;

export interface TimeRange {
  /** Inclusive start (ms). */
  since?: number | undefined;
  /** Exclusive end (ms). */
  until?: number | undefined;
}

export interface ListedObject {
  key: string;
  etag: string;
  size: number;
  /** Last-modified time (ms). */
  modified: number;
  /** Azure: BlockBlob | AppendBlob | PageBlob. */
  kind?: string;
}

export interface ListPage {
  prefixes: string[];
  objects: ListedObject[];
}

/** One store's listing: one level under a prefix ("/" as delimiter), or everything under it. */
export interface Lister {
  list(prefix: string, delimited: boolean): AsyncIterable<ListPage>;
}

interface DateParts {
  y?: number;
  mo?: number;
  d?: number;
  h?: number;
  mi?: number;
}

const YEAR = (n: number) => n >= 2000 && n <= 2100;

/** Date partitions along a path (directories only, not the file name). */
function partitions(path: string): DateParts {
  const parts: DateParts = {};
  const dirs = path.split('/');
  if (!path.endsWith('/')) dirs.pop();
  for (const dir of dirs) {
    let m = /^(?:y|year)=(\d{4})$/i.exec(dir);
    if (m && YEAR(Number(m[1]))) {
      Object.assign(parts, { y: Number(m[1]), mo: undefined, d: undefined, h: undefined, mi: undefined });
      continue;
    }
    m = /^(?:dt|date|day)?=?(\d{4})-(\d{2})-(\d{2})(?:-(\d{2}))?$/i.exec(dir);
    if (m && YEAR(Number(m[1]))) {
      Object.assign(parts, {
        y: Number(m[1]),
        mo: Number(m[2]),
        d: Number(m[3]),
        h: m[4] !== undefined ? Number(m[4]) : undefined,
        mi: undefined,
      });
      continue;
    }
    if (parts.y === undefined) {
      if (/^\d{4}$/.test(dir) && YEAR(Number(dir))) parts.y = Number(dir);
      continue;
    }
    // inside a year: month, day, hour, minute in turn, bare or key=value
    m = /^(?:(m|mo|month|d|day|h|hour|min|minute)=)?(\d{2})$/i.exec(dir);
    if (!m) continue;
    const key = m[1]?.toLowerCase();
    const n = Number(m[2]);
    if (parts.mo === undefined && (key === undefined || key === 'm' || key === 'mo' || key === 'month'))
      parts.mo = n;
    else if (parts.d === undefined && (key === undefined || key === 'd' || key === 'day')) parts.d = n;
    else if (parts.h === undefined && (key === undefined || key === 'h' || key === 'hour')) parts.h = n;
    else if (
      parts.mi === undefined &&
      (key === undefined || key === 'm' || key === 'min' || key === 'minute')
    )
      parts.mi = n;
  }
  return parts;
}

/** The time span a path's date partitions cover, or undefined when it has none. */
export function partitionSpan(path: string): { start: number; end: number } | undefined {
  const p = partitions(path);
  if (p.y === undefined) return undefined;
  const start = Date.UTC(p.y, (p.mo ?? 1) - 1, p.d ?? 1, p.h ?? 0, p.mi ?? 0);
  const end =
    p.mo === undefined
      ? Date.UTC(p.y + 1, 0, 1)
      : p.d === undefined
        ? Date.UTC(p.y, p.mo, 1)
        : p.h === undefined
          ? start + 86_400_000
          : p.mi === undefined
            ? start + 3_600_000
            : start + 60_000;
  return Number.isNaN(start) ? undefined : { start, end };
}

/** The time an object's name carries (file name first, then its partitions), or undefined. */
export function keyTime(key: string): number | undefined {
  return nameTime(key) ?? partitionSpan(key)?.start;
}

/** The time in the file name itself (not its directories). */
function nameTime(key: string): number | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  // ALB, WAF: _20261123T1205Z_
  let m = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z[_.]/.exec(name);
  if (m) return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!);
  // Firehose: -2026-11-23-12-05-33-
  m = /-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-/.exec(name);
  if (m) return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  // CloudFront legacy: E2ABC.2026-11-23-12.a1b2c3.gz
  m = /\.(\d{4})-(\d{2})-(\d{2})-(\d{2})\./.exec(name);
  if (m) return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!);
  return undefined;
}

function overlaps(span: { start: number; end: number }, range: TimeRange): boolean {
  const since = range.since !== undefined ? range.since - LAYOUT_MARGIN_MS : Number.NEGATIVE_INFINITY;
  const until = range.until !== undefined ? range.until + LAYOUT_MARGIN_MS : Number.POSITIVE_INFINITY;
  return span.end > since && span.start < until;
}

/** Whether an object may hold events in the range, judged by its name alone. */
export function mayHoldRange(key: string, range: TimeRange): boolean {
  if (range.since === undefined && range.until === undefined) return true;
  // a time in the file name is a moment; one from the directories only is the partition's span
  const t = nameTime(key);
  const span = t !== undefined ? { start: t, end: t + 1 } : partitionSpan(key);
  return span === undefined || overlaps(span, range);
}

/**
 * Objects under `prefix`, in key order per level, leaving out date partitions and named
 * objects outside the range. Without a range, one flat listing.
 */
export async function* listObjects(
  lister: Lister,
  prefix: string,
  range: TimeRange = {},
): AsyncGenerator<ListedObject> {
  if (range.since === undefined && range.until === undefined) {
    for await (const page of lister.list(prefix, false)) yield* page.objects;
    return;
  }
  for await (const page of lister.list(prefix, true)) {
    for (const object of page.objects) if (mayHoldRange(object.key, range)) yield object;
    for (const child of page.prefixes) {
      const span = partitionSpan(child);
      if (span && !overlaps(span, range)) continue;
      yield* listObjects(lister, child, range);
    }
  }
}

/**
 * A source's `start` setting as a time: "beginning" → undefined (everything), "now" → `now`,
 * or the date given.
 */
export function startTime(start: string, now: number): number | undefined {
  if (start === 'beginning') return undefined;
  if (start === 'now') return now;
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(start) ? `${start}T00:00:00Z` : start);
  if (Number.isNaN(t)) throw new Error(`start: "${start}" is not beginning, now or an ISO-8601 time`);
  return t;
}
