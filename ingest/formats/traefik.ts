/**
 * Traefik JSON access log (`accessLog.format=json`). `Duration`/`OriginDuration` are
 * nanoseconds; headers appear as `request_<Name>` / `downstream_<Name>` keys when enabled.
 * `ClientHost` is the socket peer.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  anyTimeToMs,
  applyUrl,
  hasKeys,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  nz,
  type Obj,
  outcomeOf,
  setExtra,
  splitTarget,
  str,
  timestampOr,
  tlsVersion,
  uint,
} from './util.ts';

function parse(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const raw: RawRequest = {};
  const status = uint(o.DownstreamStatus) ?? uint(o.OriginStatus);
  const host = str(o.ClientHost);
  const ip = ipOrUndef(host);
  const duration = int(o.Duration);
  const origin = int(o.OriginDuration);
  let headers: Record<string, string> | undefined;
  let respType: string | undefined;
  for (const k in o) {
    if (k.startsWith('request_')) {
      const v = str(o[k]);
      if (v !== undefined) {
        headers ??= {};
        headers[k.slice(8).toLowerCase()] = v;
      }
    } else if (k === 'downstream_Content-Type') respType = str(o[k]);
  }
  const event: Obj = {
    kind: 'event',
    category: ['web'],
    type: ['access'],
    action: 'request',
    outcome: outcomeOf(status === 0 ? undefined : status),
    module: 'traefik',
  };
  if (duration !== undefined && duration >= 0) event.duration = duration;
  const observer: Obj = { vendor: 'Traefik Labs', product: 'Traefik', type: 'proxy' };
  const entryPoint = str(o.entryPointName);
  if (entryPoint !== undefined) observer.name = entryPoint;
  const ev: EventDraft = { event, observer } as EventDraft;
  if (host !== undefined) {
    const source: Obj = {};
    if (ip !== undefined) source.ip = ip;
    source.address = host;
    const port = uint(o.ClientPort);
    if (port !== undefined) source.port = port;
    ev.source = source;
  }
  const username = str(o.ClientUsername);
  if (username !== undefined) ev.user = { name: username };
  const http: Obj = {};
  const version = httpVersion(o.RequestProtocol);
  if (version !== undefined) http.version = version;
  const request: Obj = {};
  const m = method(o.RequestMethod);
  if (m !== undefined) request.method = m;
  const reqBytes = uint(o.RequestContentSize);
  if (reqBytes !== undefined) request.bytes = reqBytes;
  const reqId = nz(headers?.['x-request-id']);
  if (reqId !== undefined) request.id = reqId;
  const referrer = nz(headers?.referer);
  if (referrer !== undefined) request.referrer = referrer;
  const reqType = nz(headers?.['content-type']);
  if (reqType !== undefined) request.mime_type = reqType;
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined && status !== 0) response.status_code = status;
  const resBytes = uint(o.DownstreamContentSize);
  if (resBytes !== undefined) response.bytes = resBytes;
  if (respType !== undefined) response.mime_type = respType;
  if (hasKeys(response)) http.response = response;
  if (hasKeys(http)) ev.http = http;
  const ua = nz(headers?.['user-agent']);
  if (ua !== undefined) ev.user_agent = { original: ua };
  const serviceName = str(o.ServiceName);
  if (serviceName !== undefined) ev.service = { name: serviceName };
  if (str(o.TLSVersion) !== undefined) {
    const tls: Obj = {};
    const v = tlsVersion(o.TLSVersion);
    if (v !== undefined) tls.version = v;
    const cipher = str(o.TLSCipher);
    if (cipher !== undefined) tls.cipher = cipher;
    ev.tls = tls;
  }
  ev.gatewatch = origin !== undefined && origin >= 0 ? { upstream_latency_ms: origin / 1e6 } : {};
  timestampOr(ev, anyTimeToMs(o.StartUTC ?? o.time), ctx.receivedAt);
  const path = str(o.RequestPath);
  if (path !== undefined) {
    applyUrl(ev, splitTarget(path));
    const rh = str(o.RequestHost);
    if (rh !== undefined) ev.url!.domain = rh;
    const scheme = str(o.RequestScheme);
    if (scheme !== undefined) ev.url!.scheme = scheme;
    const port = uint(o.RequestPort);
    if (port !== undefined) ev.url!.port = port;
  }
  if (ip !== undefined) raw.peerIp = ip;
  if (headers !== undefined) {
    raw.headers = headers;
    if (headers['x-forwarded-for'] !== undefined) raw.forwardedFor = headers['x-forwarded-for'];
  }
  setExtra(ev, 'RouterName', str(o.RouterName));
  setExtra(ev, 'ServiceURL', str(o.ServiceURL));
  setExtra(ev, 'ServiceAddr', str(o.ServiceAddr));
  setExtra(ev, 'OriginStatus', uint(o.OriginStatus));
  setExtra(ev, 'RetryAttempts', uint(o.RetryAttempts));
  setExtra(ev, 'TraceId', str(o.TraceId));
  return { ok: true, event: ev, raw };
}

export const traefik: Format = {
  id: 'traefik.access',
  description: 'Traefik JSON access log',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    return 'RequestMethod' in json &&
      ('DownstreamStatus' in json || 'StartUTC' in json || 'ClientHost' in json)
      ? 1
      : 0;
  },
  parse,
};
