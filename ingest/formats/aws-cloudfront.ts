/**
 * Amazon CloudFront standard (legacy) access logs: W3C, tab-separated, `#Version` / `#Fields`
 * header lines (the field order is read from `#Fields` and kept per source), URL-encoded values,
 * `-` for empty, times in seconds, `sc-status` 000 when the viewer disconnected.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  decodeSafe,
  hasKeys,
  httpVersion,
  ipOrUndef,
  method,
  type Obj,
  outcomeOf,
  parseIsoTime,
  setExtra,
  sToMs,
  sToNs,
  str,
  timestampOr,
  tlsVersion,
  uint,
} from './util.ts';

export const CLOUDFRONT_DEFAULT_FIELDS = [
  'date',
  'time',
  'x-edge-location',
  'sc-bytes',
  'c-ip',
  'cs-method',
  'cs(Host)',
  'cs-uri-stem',
  'sc-status',
  'cs(Referer)',
  'cs(User-Agent)',
  'cs-uri-query',
  'cs(Cookie)',
  'x-edge-result-type',
  'x-edge-request-id',
  'x-host-header',
  'cs-protocol',
  'cs-bytes',
  'time-taken',
  'x-forwarded-for',
  'ssl-protocol',
  'ssl-cipher',
  'x-edge-response-result-type',
  'cs-protocol-version',
  'fle-status',
  'fle-encrypted-fields',
  'c-port',
  'time-to-first-byte',
  'x-edge-detailed-result-type',
  'sc-content-type',
  'sc-content-len',
  'sc-range-start',
  'sc-range-end',
];

const STATE_KEY = 'aws.cloudfront.fields';
const DEFAULT_INDEX = indexOf(CLOUDFRONT_DEFAULT_FIELDS);

function indexOf(fields: readonly string[]): Map<string, number> {
  return new Map(fields.map((f, i) => [f, i]));
}

function parse(line: string, ctx: ParseContext): ParseResult {
  if (line.charCodeAt(0) === 35 /* # */) {
    if (line.startsWith('#Fields:')) {
      const fields = line.slice(8).trim().split(/\s+/);
      ctx.state.set(STATE_KEY, indexOf(fields));
    }
    return { ok: false, reason: 'header line', skip: true };
  }
  const idx = (ctx.state.get(STATE_KEY) as Map<string, number> | undefined) ?? DEFAULT_INDEX;
  const cols = line.split('\t');
  if (cols.length < 10)
    return { ok: false, reason: `aws.cloudfront: expected tab-separated fields, got ${cols.length}` };
  const get = (name: string): string | undefined => {
    const i = idx.get(name);
    return i === undefined ? undefined : str(cols[i]);
  };
  const raw: RawRequest = {};
  const statusRaw = uint(get('sc-status'));
  const status = statusRaw === 0 ? undefined : statusRaw;
  const ip = ipOrUndef(get('c-ip'));
  const stem = get('cs-uri-stem') ?? '/';
  const query = get('cs-uri-query');
  const ua = get('cs(User-Agent)');
  const referrer = get('cs(Referer)');
  const result = get('x-edge-result-type');
  const detailed = get('x-edge-detailed-result-type');
  const ssl = get('ssl-protocol');
  const event: Obj = {
    kind: 'event',
    category: ['web', 'network'],
    type: ['access'],
    action: 'request',
    outcome: outcomeOf(status),
    module: 'aws',
  };
  const duration = sToNs(get('time-taken'));
  if (duration !== undefined) event.duration = duration;
  const host = get('cs(Host)');
  const observer: Obj = { vendor: 'AWS', product: 'CloudFront', type: 'cdn' };
  if (host !== undefined) observer.name = host;
  const ev: EventDraft = { event, observer } as EventDraft;
  if (ip !== undefined) {
    const port = uint(get('c-port'));
    ev.source = port === undefined ? { ip, address: ip } : { ip, address: ip, port };
  }
  const url: Obj = { original: query === undefined ? stem : `${stem}?${query}`, path: stem };
  if (query !== undefined) url.query = query;
  const domain = get('x-host-header') ?? host;
  if (domain !== undefined) url.domain = domain;
  const scheme = get('cs-protocol')?.toLowerCase();
  if (scheme !== undefined) url.scheme = scheme;
  ev.url = url;
  const http: Obj = {};
  const version = httpVersion(get('cs-protocol-version'));
  if (version !== undefined) http.version = version;
  const request: Obj = {};
  const id = get('x-edge-request-id');
  if (id !== undefined) request.id = id;
  const m = method(get('cs-method'));
  if (m !== undefined) request.method = m;
  const reqBytes = uint(get('cs-bytes'));
  if (reqBytes !== undefined) request.bytes = reqBytes;
  if (referrer !== undefined) request.referrer = decodeSafe(referrer);
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined) response.status_code = status;
  const resBytes = uint(get('sc-bytes'));
  if (resBytes !== undefined) response.bytes = resBytes;
  const mimeType = get('sc-content-type');
  if (mimeType !== undefined) response.mime_type = mimeType;
  if (hasKeys(response)) http.response = response;
  if (hasKeys(http)) ev.http = http;
  if (ua !== undefined) ev.user_agent = { original: decodeSafe(ua) };
  if (ssl !== undefined) {
    const cipher = get('ssl-cipher');
    const version = tlsVersion(ssl)!;
    ev.tls = cipher === undefined ? { version } : { version, cipher };
  }
  const d = get('date');
  const t = get('time');
  timestampOr(
    ev,
    d !== undefined && t !== undefined ? parseIsoTime(`${d}T${t}Z`) : undefined,
    ctx.receivedAt,
  );
  if (ip !== undefined) raw.peerIp = ip;
  const xff = get('x-forwarded-for');
  if (xff !== undefined) raw.forwardedFor = decodeSafe(xff);
  const cookie = get('cs(Cookie)');
  if (cookie !== undefined) {
    raw.cookies = decodeSafe(cookie);
    raw.secretsInOriginal = [cookie];
  }
  if (detailed !== undefined && /waf|Waf|WAF/.test(detailed)) ev.gatewatch = { waf: { action: 'block' } };
  setExtra(ev, 'x-edge-location', get('x-edge-location'));
  setExtra(ev, 'x-edge-result-type', result);
  setExtra(ev, 'x-edge-response-result-type', get('x-edge-response-result-type'));
  setExtra(ev, 'x-edge-detailed-result-type', detailed);
  setExtra(ev, 'time-to-first-byte-ms', sToMs(get('time-to-first-byte')));
  setExtra(ev, 'fle-status', get('fle-status'));
  return { ok: true, event: ev, raw };
}

export const awsCloudFront: Format = {
  id: 'aws.cloudfront',
  description: 'Amazon CloudFront standard access log (W3C, tab-separated, #Fields header)',
  kind: 'text',
  detect(line) {
    if (line.charCodeAt(0) === 35) return line.startsWith('#Version:') || line.startsWith('#Fields:') ? 1 : 0;
    return line.charCodeAt(4) === 45 &&
      line.charCodeAt(7) === 45 &&
      line.charCodeAt(10) === 9 &&
      line.charCodeAt(13) === 58
      ? 1
      : 0;
  },
  parse,
};
