/**
 * NGINX access logs: the built-in `combined` format (optionally followed by
 * "$http_x_forwarded_for", as in the stock `main` format), the ingress-nginx default
 * `upstreaminfo` format, and JSON (`log_format … escape=json`) through a declarative field map.
 * `$request_time` and `$upstream_response_time` are seconds; upstream values can be `-` or
 * comma lists after retries.
 */
import { applyFieldMap, compileFieldMap } from './fieldmap.ts';
import type { EventDraft, FieldMap, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  applyUrl,
  child,
  dropEmptyUrl,
  firstListSeconds,
  ipOrUndef,
  isObj,
  jsonObject,
  type Obj,
  outcomeOf,
  parseClfTime,
  parseRequestLine,
  setExtra,
  splitTarget,
  sToNs,
  str,
  timestampOr,
  tokenize,
  uint,
  upstreamStatus,
} from './util.ts';

const OBSERVER = { vendor: 'F5', product: 'NGINX', type: 'proxy' } as const;

/** Cheap check for `<addr> - <user> [` at the start of a line. */
export function clfPrefix(line: string): boolean {
  const c = line.charCodeAt(0);
  const hexOrColon = (c >= 48 && c <= 58) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
  if (!hexOrColon) return false;
  const sp = line.indexOf(' ');
  if (sp < 2 || sp > 46) return false;
  const sp2 = line.indexOf(' ', sp + 1);
  if (sp2 < 0) return false;
  const sp3 = line.indexOf(' ', sp2 + 1);
  return sp3 > 0 && line.charCodeAt(sp3 + 1) === 91;
}

function isHex32Tail(line: string): boolean {
  const n = line.length;
  if (n < 34 || line.charCodeAt(n - 33) !== 32) return false;
  for (let i = n - 32; i < n; i++) {
    const c = line.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Join list tokens split by the tokenizer ("10.0.0.1:80," "10.0.0.2:80"). */
function mergeLists(t: string[], from: number): string[] {
  const out = t.slice(0, from);
  for (let i = from; i < t.length; i++) {
    let v = t[i]!;
    while ((v.endsWith(',') || t[i + 1] === ':' || v.endsWith(' :')) && i + 1 < t.length) v += ` ${t[++i]}`;
    out.push(v);
  }
  return out;
}

function clfEvent(t: string[], module: string, receivedAt: number): { ev: EventDraft; raw: RawRequest } {
  const status = uint(t[5]);
  const req = parseRequestLine(t[4]);
  const addr = str(t[0]);
  const ip = ipOrUndef(addr);
  const raw: RawRequest = {};
  const ev: EventDraft = {
    event: {
      kind: 'event',
      category: ['web'],
      type: ['access'],
      action: 'request',
      outcome: outcomeOf(status),
      module,
    },
    observer: { ...OBSERVER },
  };
  if (addr !== undefined) ev.source = ip === undefined ? { address: addr } : { ip, address: addr };
  const user = str(t[2]);
  if (user !== undefined) {
    ev.user = { name: user };
    // $remote_user is the user of the request's Basic credentials (accepted or not).
    ev.gatewatch = { auth: { present: true, scheme: 'basic' } };
  }
  const http: Obj = {};
  if (req?.version !== undefined) http.version = req.version;
  const referrer = str(t[7]);
  if (req !== undefined)
    http.request = referrer === undefined ? { method: req.method } : { method: req.method, referrer };
  else if (referrer !== undefined) http.request = { referrer };
  const bytes = uint(t[6]);
  if (status !== undefined && status !== 0) {
    http.response = bytes === undefined ? { status_code: status } : { status_code: status, bytes };
  } else if (bytes !== undefined) http.response = { bytes };
  ev.http = http;
  const ua = str(t[8]);
  if (ua !== undefined) ev.user_agent = { original: ua };
  timestampOr(ev, parseClfTime(t[3] ?? ''), receivedAt);
  if (ip !== undefined) raw.peerIp = ip;
  if (req !== undefined) {
    applyUrl(ev, splitTarget(req.target));
    if (req.target === '') dropEmptyUrl(ev);
  } else if (str(t[4]) !== undefined) setExtra(ev, 'request', t[4]);
  return { ev, raw };
}

function dropEmptyHttp(ev: EventDraft): void {
  const http = ev.http!;
  if (http.version === undefined && http.request === undefined && http.response === undefined) delete ev.http;
}

function parseCombined(line: string, ctx: ParseContext): ParseResult {
  const t = tokenize(line, 32);
  if (t === undefined) return { ok: false, reason: 'nginx.access: unterminated quoted field' };
  if (t.length < 9) return { ok: false, reason: `nginx.access: expected 9 fields, got ${t.length}` };
  if (t[1] !== '-') return { ok: false, reason: 'nginx.access: not a combined log line' };
  const { ev, raw } = clfEvent(t, 'nginx', ctx.receivedAt);
  dropEmptyHttp(ev);
  const xff = str(t[9]);
  if (xff !== undefined) raw.forwardedFor = xff;
  return { ok: true, event: ev, raw };
}

function parseIngress(line: string, ctx: ParseContext): ParseResult {
  const t0 = tokenize(line, 48);
  if (t0 === undefined) return { ok: false, reason: 'nginx.ingress: unterminated quoted field' };
  const t = mergeLists(t0, 13);
  if (t.length < 18) return { ok: false, reason: `nginx.ingress: expected 18 fields, got ${t.length}` };
  const { ev, raw } = clfEvent(t, 'nginx', ctx.receivedAt);
  ev.observer = { vendor: 'Kubernetes', product: 'ingress-nginx', type: 'proxy' };
  const reqBytes = uint(t[9]);
  const reqId = str(t[17]);
  if (reqBytes !== undefined || reqId !== undefined) {
    const http = ev.http!;
    const request = http.request ?? {};
    if (reqBytes !== undefined) request.bytes = reqBytes;
    if (reqId !== undefined) request.id = reqId;
    if (http.request === undefined) {
      // keep the field order of the other lines: request before response
      const response = http.response;
      if (response !== undefined) delete http.response;
      http.request = request;
      if (response !== undefined) http.response = response;
    }
  }
  dropEmptyHttp(ev);
  const duration = sToNs(t[10]);
  if (duration !== undefined) ev.event!.duration = duration;
  const upstream = str(t[11]);
  if (upstream !== undefined) ev.service = { name: upstream };
  const ups = firstListSeconds(t[15]);
  if (ups !== undefined) child(ev, 'gatewatch').upstream_latency_ms = ups;
  setExtra(ev, 'proxy_alternative_upstream_name', str(t[12]));
  setExtra(ev, 'upstream_addr', str(t[13]));
  setExtra(ev, 'upstream_response_length', str(t[14]));
  setExtra(ev, 'upstream_status', str(t[16]));
  const upstreamCode = upstreamStatus(t[16]);
  if (upstreamCode !== undefined) child(child(ev, 'gatewatch'), 'upstream').status_code = upstreamCode;
  return { ok: true, event: ev, raw };
}

/**
 * Default map for `escape=json` templates, with the key names real deployments use: the nginx
 * variable names (with or without `$`), their `http_` / `sent_http_` header forms, and the short
 * names common in published log_format examples (`method`, `uri`, `ua`, `xff`, `x_api_key`, …).
 * Later entries win when a record carries two keys for one field.
 */
export const NGINX_JSON_FIELD_MAP: FieldMap = {
  time_local: '@timestamp',
  time_iso8601: '@timestamp',
  time: '@timestamp',
  timestamp: '@timestamp',
  '@timestamp': '@timestamp',
  // $msec has milliseconds where $time_iso8601 has seconds: it wins when both are logged
  msec: '@timestamp',
  remote_addr: '@peer_ip',
  remote_port: 'source.port',
  remote_user: 'user.name',
  request: '@request_line',
  request_method: 'http.request.method',
  method: 'http.request.method',
  request_uri: '@target',
  uri: '@path',
  path: '@path',
  args: '@query',
  query_string: '@query',
  host: 'url.domain',
  http_host: 'url.domain',
  server_name: '@extra',
  server_addr: 'destination.ip',
  server_port: 'destination.port',
  scheme: 'url.scheme',
  server_protocol: '@protocol',
  protocol: '@protocol',
  status: 'http.response.status_code',
  // $bytes_sent counts the headers too: the body size wins when both are logged
  bytes_sent: 'http.response.bytes',
  body_bytes_sent: 'http.response.bytes',
  request_length: 'http.request.bytes',
  request_time: '@duration_s',
  upstream_response_time: '@upstream_latency_s',
  upstream_status: '@upstream_status',
  http_referer: 'http.request.referrer',
  http_referrer: 'http.request.referrer',
  referer: 'http.request.referrer',
  referrer: 'http.request.referrer',
  http_user_agent: 'user_agent.original',
  user_agent: 'user_agent.original',
  ua: 'user_agent.original',
  http_x_forwarded_for: '@forwarded_for',
  x_forwarded_for: '@forwarded_for',
  xff: '@forwarded_for',
  http_x_request_id: 'http.request.id',
  x_request_id: 'http.request.id',
  request_id: 'http.request.id',
  req_id: 'http.request.id',
  ssl_protocol: '@tls_version',
  ssl_cipher: 'tls.cipher',
  content_type: 'http.request.mime_type',
  http_content_type: 'http.request.mime_type',
  sent_http_content_type: 'http.response.mime_type',
  http_authorization: '@header:authorization',
  http_cookie: '@header:cookie',
  http_x_api_key: '@header:x-api-key',
  x_api_key: '@header:x-api-key',
  http_api_key: '@header:api-key',
  http_apikey: '@header:apikey',
  api_key_id: 'gatewatch.api_key.id',
  geoip_country_code: 'source.geo.country_iso_code',
  geoip2_country_code: 'source.geo.country_iso_code',
  proxy_upstream_name: 'service.name',
  hostname: 'host.name',
  pid: 'process.pid',
};

function parseJson(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  // Accept "$remote_addr"-style keys by stripping the sigil.
  let rec = o;
  for (const k in o) {
    if (k.charCodeAt(0) === 36) {
      rec = {};
      for (const k2 in o) rec[k2.charCodeAt(0) === 36 ? k2.slice(1) : k2] = o[k2];
      break;
    }
  }
  const map = compileFieldMap(ctx.source.fieldMap ?? NGINX_JSON_FIELD_MAP, ctx.source.keepUnmapped ?? true);
  const raw: RawRequest = {};
  const ev: EventDraft = {
    event: { kind: 'event', category: ['web'], type: ['access'], action: 'request', module: 'nginx' },
    observer: { ...OBSERVER },
  };
  const { ms } = applyFieldMap(rec, map, ev, raw);
  if (ev.source?.ip !== undefined) ev.source.address ??= ev.source.ip;
  // $remote_user is the user of the request's Basic credentials (accepted or not).
  const remoteUser = rec.remote_user;
  if (typeof remoteUser === 'string' && remoteUser !== '' && remoteUser !== '-') {
    const gw = ev.gatewatch ?? {};
    gw.auth ??= { present: true, scheme: 'basic' };
    ev.gatewatch = gw;
  }
  ev.event!.outcome = outcomeOf(ev.http?.response?.status_code);
  timestampOr(ev, ms, ctx.receivedAt);
  return { ok: true, event: ev, raw };
}

export const nginxAccess: Format = {
  id: 'nginx.access',
  description: 'NGINX combined access log (also Apache combined; optional trailing "$http_x_forwarded_for")',
  kind: 'text',
  detect(line) {
    return clfPrefix(line) && line.indexOf('"') > 0 ? 0.8 : 0;
  },
  parse: parseCombined,
};

export const nginxIngress: Format = {
  id: 'nginx.ingress',
  description: 'ingress-nginx default (upstreaminfo) access log',
  kind: 'text',
  detect(line) {
    return clfPrefix(line) && isHex32Tail(line) && line.indexOf('] [') > 0 ? 0.95 : 0;
  },
  parse: parseIngress,
};

export const nginxJson: Format = {
  id: 'nginx.json',
  description: 'NGINX JSON access log (log_format escape=json), declarative field map',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    const hasAddr = 'remote_addr' in json || '$remote_addr' in json;
    const hasReq =
      'request' in json ||
      'request_uri' in json ||
      'uri' in json ||
      'request_method' in json ||
      '$request' in json ||
      '$request_uri' in json ||
      '$uri' in json;
    return hasAddr && hasReq && ('status' in json || '$status' in json) ? 0.7 : 0;
  },
  parse: parseJson,
};
