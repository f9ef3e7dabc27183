/**
 * Kong Gateway log serializer output (file-log, http-log, tcp-log, syslog plugins): one JSON
 * object per request; http-log batches are JSON arrays (the registry splits arrays into records).
 * Latencies are milliseconds; `started_at` is epoch ms; `client_ip` is after Kong's realip.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  hasKeys,
  headersFromObject,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  msToNs,
  num,
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
  const req: Obj = isObj(o.request) ? o.request : {};
  const res: Obj = isObj(o.response) ? o.response : {};
  if (!isObj(o.request)) return { ok: false, reason: 'kong: missing request object' };
  const lat: Obj = isObj(o.latencies) ? o.latencies : {};
  const status = uint(res.status);
  const headers = headersFromObject(req.headers);
  const respHeaders = headersFromObject(res.headers);
  const consumer = isObj(o.consumer) ? o.consumer : undefined;
  const entity = isObj(o.authenticated_entity) ? o.authenticated_entity : undefined;
  const route = isObj(o.route) ? o.route : undefined;
  const service = isObj(o.service) ? o.service : undefined;
  const tls = isObj(req.tls) ? req.tls : undefined;
  const clientIp = ipOrUndef(o.client_ip);
  const raw: RawRequest = {};
  const source = str(o.source);
  const proxyLat = num(lat.proxy);

  // request.uri is path+query as received; request.url the full URL.
  const uri = str(req.uri) ?? '/';
  const parts = splitTarget(str(req.url) ?? uri);
  if (parts.query === undefined) {
    const q = splitTarget(uri).query;
    if (q !== undefined) parts.query = q;
  }
  parts.original = uri;

  const duration = msToNs(lat.request);
  const event: Obj = {
    kind: 'event',
    category: ['web'],
    type: ['access'],
    action: source === 'kong' && status !== undefined && status >= 400 ? 'gateway-reject' : 'request',
    outcome: outcomeOf(status),
    module: 'kong',
  };
  if (duration !== undefined) event.duration = duration;
  const observer: Obj = { vendor: 'Kong', product: 'Kong Gateway', type: 'api-gateway' };
  const workspaceName = str(o.workspace_name);
  if (workspaceName !== undefined) observer.name = workspaceName;
  const ev: EventDraft = { event, observer } as EventDraft;
  if (clientIp !== undefined) ev.source = { ip: clientIp, address: clientIp };

  const url: Obj = { original: parts.original };
  if (parts.path !== undefined) url.path = parts.path;
  if (parts.query !== undefined) url.query = parts.query;
  if (parts.scheme !== undefined) url.scheme = parts.scheme;
  const domain = parts.domain ?? headers?.host;
  if (domain !== undefined && domain !== '') url.domain = domain;
  if (parts.port !== undefined) url.port = parts.port;
  ev.url = url;

  const request: Obj = {};
  const reqId = str(req.id) ?? headers?.['x-kong-request-id'] ?? respHeaders?.['x-kong-request-id'];
  if (reqId !== undefined && reqId !== '') request.id = reqId;
  const m = method(req.method);
  if (m !== undefined) request.method = m;
  const reqBytes = uint(req.size);
  if (reqBytes !== undefined) request.bytes = reqBytes;
  const referrer = nz(headers?.referer);
  if (referrer !== undefined) request.referrer = referrer;
  const reqType = nz(headers?.['content-type']);
  if (reqType !== undefined) request.mime_type = reqType;
  const response: Obj = {};
  if (status !== undefined) response.status_code = status;
  const resBytes = uint(res.size);
  if (resBytes !== undefined) response.bytes = resBytes;
  const resType = nz(respHeaders?.['content-type']);
  if (resType !== undefined) response.mime_type = resType;
  const version = headers === undefined ? undefined : httpVersion(headers[':version']);
  if (hasKeys(request) || hasKeys(response) || version !== undefined) {
    const http: Obj = {};
    if (hasKeys(request)) http.request = request;
    if (hasKeys(response)) http.response = response;
    ev.http = http;
  }
  const ua = nz(headers?.['user-agent']);
  if (ua !== undefined) ev.user_agent = { original: ua };
  if (consumer !== undefined) {
    const id = str(consumer.custom_id) ?? str(consumer.id);
    const name = str(consumer.username);
    if (id !== undefined || name !== undefined) {
      const user: Obj = {};
      if (id !== undefined) user.id = id;
      if (name !== undefined) user.name = name;
      ev.user = user;
    }
  }
  if (service !== undefined) {
    const name = str(service.name) ?? str(service.host);
    if (name !== undefined) ev.service = { name };
  }
  if (tls !== undefined) {
    const v = tlsVersion(tls.version);
    const cipher = str(tls.cipher);
    if (v !== undefined || cipher !== undefined) {
      const t: Obj = {};
      if (v !== undefined) t.version = v;
      if (cipher !== undefined) t.cipher = cipher;
      ev.tls = t;
    }
  }
  const gw: Obj = {};
  if (consumer !== undefined) {
    const c = str(consumer.username) ?? str(consumer.custom_id);
    if (c !== undefined) gw.consumer = c;
  }
  if (entity !== undefined) {
    const id = str(entity.id);
    if (id !== undefined) gw.api_key = { id };
  }
  if (proxyLat !== undefined && proxyLat >= 0) gw.upstream_latency_ms = proxyLat;
  ev.gatewatch = gw;
  timestampOr(ev, int(o.started_at), ctx.receivedAt);
  if (clientIp !== undefined) raw.peerIp = clientIp;
  if (headers !== undefined) {
    raw.headers = headers;
    if (headers['x-forwarded-for'] !== undefined) raw.forwardedFor = headers['x-forwarded-for'];
    if (version !== undefined) ev.http!.version = version;
  }
  // The query string object duplicates the URL query: nothing to add, but its values are scrubbed
  // from the original by the redaction transform through url.query.
  setExtra(ev, 'source', source);
  setExtra(ev, 'route_name', route === undefined ? undefined : str(route.name));
  setExtra(ev, 'route_id', route === undefined ? undefined : str(route.id));
  setExtra(ev, 'upstream_uri', str(o.upstream_uri));
  setExtra(ev, 'upstream_status', str(o.upstream_status));
  setExtra(ev, 'latency_kong_ms', num(lat.kong));
  setExtra(ev, 'tries', Array.isArray(o.tries) ? o.tries.length : undefined);
  setExtra(ev, 'workspace', str(o.workspace));
  return { ok: true, event: ev, raw };
}

export const kong: Format = {
  id: 'kong.http_log',
  description: 'Kong Gateway file-log / http-log / tcp-log JSON (object, or array batch)',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json) || !isObj(json.request)) return 0;
    if ('latencies' in json && ('started_at' in json || 'client_ip' in json)) return 1;
    return 'upstream_uri' in json ? 0.8 : 0;
  },
  parse,
};
