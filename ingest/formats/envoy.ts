/**
 * Envoy / Istio access logs: Envoy's default text format and Istio's default text format
 * (told apart by field count), and JSON (`json_format`, Istio `accessLogEncoding: JSON`,
 * snake_case keys) through a declarative field map. `%DURATION%` is milliseconds; missing
 * values are `-`.
 */
import { applyFieldMap, compileFieldMap } from './fieldmap.ts';
import type { EventDraft, FieldMap, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  applyUrl,
  dropEmptyUrl,
  hasKeys,
  ipOrUndef,
  isObj,
  jsonObject,
  msToNs,
  num,
  type Obj,
  outcomeOf,
  parseIsoTime,
  parseRequestLine,
  setExtra,
  splitHostPort,
  splitTarget,
  str,
  timestampOr,
  tokenize,
  uint,
} from './util.ts';

function parseText(line: string, ctx: ParseContext): ParseResult {
  const t = tokenize(line, 40);
  if (t === undefined) return { ok: false, reason: 'envoy.access: unterminated quoted field' };
  const istio = t.length >= 20;
  if (!istio && t.length < 13)
    return { ok: false, reason: `envoy.access: expected 13 or 22 fields, got ${t.length}` };
  // Istio inserts response_code_details, connection_termination_details and
  // "upstream_transport_failure_reason" after the flags.
  const o = istio ? 3 : 0;
  const status = uint(t[2]);
  const req = parseRequestLine(t[1]);
  const raw: RawRequest = {};
  const upstreamMs = num(t[7 + o]);
  const event: Obj = {
    kind: 'event',
    category: ['web'],
    type: ['access'],
    action: 'request',
    outcome: outcomeOf(status === 0 ? undefined : status),
    module: istio ? 'istio' : 'envoy',
  };
  const duration = msToNs(t[6 + o]);
  if (duration !== undefined) event.duration = duration;
  const ev: EventDraft = {
    event,
    observer: { vendor: istio ? 'Istio' : 'Envoy', product: istio ? 'Istio' : 'Envoy', type: 'proxy' },
  } as EventDraft;
  const http: Obj = {};
  if (req?.version !== undefined) http.version = req.version;
  const request: Obj = {};
  const id = str(t[10 + o]);
  if (id !== undefined) request.id = id;
  if (req !== undefined) request.method = req.method;
  const reqBytes = uint(t[4 + o]);
  if (reqBytes !== undefined) request.bytes = reqBytes;
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined && status !== 0) response.status_code = status;
  const resBytes = uint(t[5 + o]);
  if (resBytes !== undefined) response.bytes = resBytes;
  if (hasKeys(response)) http.response = response;
  if (hasKeys(http)) ev.http = http;
  const ua = str(t[9 + o]);
  if (ua !== undefined) ev.user_agent = { original: ua };
  ev.gatewatch = upstreamMs !== undefined && upstreamMs >= 0 ? { upstream_latency_ms: upstreamMs } : {};
  timestampOr(ev, parseIsoTime(t[0] ?? ''), ctx.receivedAt);
  if (req !== undefined) applyUrl(ev, splitTarget(req.target));
  const authority = str(t[11 + o]);
  if (authority !== undefined && ev.url !== undefined) {
    const host = splitHostPort(authority).host;
    if (host !== '') ev.url.domain = host;
    else if (ev.url.domain !== undefined) delete ev.url.domain;
  }
  if (req !== undefined && req.target === '') dropEmptyUrl(ev);
  const xff = str(t[8 + o]);
  if (xff !== undefined) raw.forwardedFor = xff;
  if (istio) {
    const remote = str(t[19]);
    if (remote !== undefined) {
      const hp = splitHostPort(remote);
      const ip = ipOrUndef(hp.host);
      if (ip !== undefined) {
        ev.source = hp.port === undefined ? { ip, address: ip } : { ip, address: ip, port: hp.port };
        raw.peerIp = ip;
      }
    }
    const local = str(t[18]);
    if (local !== undefined) {
      const hp = splitHostPort(local);
      const ip = ipOrUndef(hp.host);
      if (ip !== undefined) ev.destination = hp.port === undefined ? { ip } : { ip, port: hp.port };
    }
    setExtra(ev, 'response_code_details', str(t[4]));
    setExtra(ev, 'connection_termination_details', str(t[5]));
    setExtra(ev, 'upstream_transport_failure_reason', str(t[6]));
    setExtra(ev, 'upstream_cluster', str(t[16]));
    setExtra(ev, 'requested_server_name', str(t[20]));
    setExtra(ev, 'route_name', str(t[21]));
  }
  setExtra(ev, 'response_flags', str(t[3]));
  setExtra(ev, 'upstream_host', str(t[12 + o]));
  return { ok: true, event: ev, raw };
}

/** Istio JSON keys (and Envoy json_format configurations that follow them). */
export const ENVOY_JSON_FIELD_MAP: FieldMap = {
  start_time: '@timestamp',
  method: 'http.request.method',
  path: '@target',
  protocol: '@protocol',
  response_code: 'http.response.status_code',
  bytes_received: 'http.request.bytes',
  bytes_sent: 'http.response.bytes',
  duration: '@duration_ms',
  upstream_service_time: '@upstream_latency_ms',
  x_forwarded_for: '@forwarded_for',
  user_agent: 'user_agent.original',
  request_id: 'http.request.id',
  authority: 'url.domain',
  downstream_remote_address: '@peer_address',
  downstream_direct_remote_address: '@ignore',
  downstream_tls_version: '@tls_version',
  downstream_tls_cipher: 'tls.cipher',
  upstream_cluster: 'service.name',
};

function parseJson(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const map = compileFieldMap(ctx.source.fieldMap ?? ENVOY_JSON_FIELD_MAP, ctx.source.keepUnmapped ?? true);
  const raw: RawRequest = {};
  const ev: EventDraft = {
    event: { kind: 'event', category: ['web'], type: ['access'], action: 'request', module: 'envoy' },
    observer: { vendor: 'Envoy', product: 'Envoy', type: 'proxy' },
  };
  const { ms } = applyFieldMap(o, map, ev, raw);
  // Envoy's direct peer, when logged, is the socket peer; downstream_remote_address may be XFF-derived.
  const direct = str(o.downstream_direct_remote_address);
  if (direct !== undefined) {
    const ip = ipOrUndef(splitHostPort(direct).host);
    if (ip !== undefined) raw.peerIp = ip;
  }
  if (ev.url?.domain !== undefined) {
    const host = splitHostPort(ev.url.domain).host;
    if (host !== '') ev.url.domain = host;
    else delete ev.url.domain;
  }
  ev.event!.outcome = outcomeOf(ev.http?.response?.status_code || undefined);
  if (ev.http?.response?.status_code === 0) {
    // 0 = no response: the field (and the objects it leaves empty) goes
    const http = ev.http;
    delete http.response!.status_code;
    if (!hasKeys(http.response!)) delete http.response;
    if (!hasKeys(http)) delete ev.http;
  }
  timestampOr(ev, ms, ctx.receivedAt);
  return { ok: true, event: ev, raw };
}

export const envoyAccess: Format = {
  id: 'envoy.access',
  description: 'Envoy / Istio default text access log',
  kind: 'text',
  detect(line) {
    return line.charCodeAt(0) === 91 &&
      line.charCodeAt(1) === 50 &&
      line.charCodeAt(11) === 84 &&
      line.indexOf('] "') > 0
      ? 0.95
      : 0;
  },
  parse: parseText,
};

export const envoyJson: Format = {
  id: 'envoy.json',
  description: 'Envoy / Istio JSON access log (snake_case keys), declarative field map',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    return 'start_time' in json && 'response_code' in json && ('path' in json || 'method' in json) ? 0.95 : 0;
  },
  parse: parseJson,
};
