/**
 * Kong Gateway log serializer output (file-log, http-log, tcp-log, syslog plugins): one JSON
 * object per request; http-log batches are JSON arrays (the registry splits arrays into records).
 * Latencies are milliseconds; `started_at` is epoch ms; `client_ip` is after Kong's realip.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  headersFromObject,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  msToNs,
  num,
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

  const ev: EventDraft = {
    event: {
      kind: 'event',
      category: ['web'],
      type: ['access'],
      action: source === 'kong' && status !== undefined && status >= 400 ? 'gateway-reject' : 'request',
      outcome: outcomeOf(status),
      module: 'kong',
      duration: msToNs(lat.request),
    },
    observer: { vendor: 'Kong', product: 'Kong Gateway', type: 'api-gateway', name: str(o.workspace_name) },
    source: clientIp === undefined ? undefined : { ip: clientIp, address: clientIp },
    url: {
      original: parts.original,
      path: parts.path,
      query: parts.query,
      scheme: parts.scheme,
      domain: parts.domain ?? headers?.host,
      port: parts.port,
    },
    http: {
      request: {
        id: str(req.id) ?? headers?.['x-kong-request-id'] ?? respHeaders?.['x-kong-request-id'],
        method: method(req.method),
        bytes: uint(req.size),
        referrer: headers?.referer,
        mime_type: headers?.['content-type'],
      },
      response: {
        status_code: status,
        bytes: uint(res.size),
        mime_type: respHeaders?.['content-type'],
      },
    },
    user_agent: headers?.['user-agent'] === undefined ? undefined : { original: headers['user-agent'] },
    user:
      consumer === undefined
        ? undefined
        : { id: str(consumer.custom_id) ?? str(consumer.id), name: str(consumer.username) },
    service: service === undefined ? undefined : { name: str(service.name) ?? str(service.host) },
    tls: tls === undefined ? undefined : { version: tlsVersion(tls.version), cipher: str(tls.cipher) },
    gatewatch: {
      consumer: consumer === undefined ? undefined : (str(consumer.username) ?? str(consumer.custom_id)),
      api_key: entity === undefined ? undefined : { id: str(entity.id) },
      upstream_latency_ms: proxyLat !== undefined && proxyLat >= 0 ? proxyLat : undefined,
    },
  };
  timestampOr(ev, int(o.started_at), ctx.receivedAt);
  if (clientIp !== undefined) raw.peerIp = clientIp;
  if (headers !== undefined) {
    raw.headers = headers;
    if (headers['x-forwarded-for'] !== undefined) raw.forwardedFor = headers['x-forwarded-for'];
    const v = httpVersion(headers[':version']);
    if (v !== undefined) ev.http!.version = v;
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
