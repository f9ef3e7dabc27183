/**
 * Traefik JSON access log (`accessLog.format=json`). `Duration`/`OriginDuration` are
 * nanoseconds; headers appear as `request_<Name>` / `downstream_<Name>` keys when enabled.
 * `ClientHost` is the socket peer.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  anyTimeToMs,
  applyUrl,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
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
  const ev: EventDraft = {
    event: {
      kind: 'event',
      category: ['web'],
      type: ['access'],
      action: 'request',
      outcome: outcomeOf(status === 0 ? undefined : status),
      module: 'traefik',
      duration: duration !== undefined && duration >= 0 ? duration : undefined,
    },
    observer: { vendor: 'Traefik Labs', product: 'Traefik', type: 'proxy', name: str(o.entryPointName) },
    source: host === undefined ? undefined : { ip, address: host, port: uint(o.ClientPort) },
    user: str(o.ClientUsername) === undefined ? undefined : { name: str(o.ClientUsername) },
    http: {
      version: httpVersion(o.RequestProtocol),
      request: {
        method: method(o.RequestMethod),
        bytes: uint(o.RequestContentSize),
        id: headers?.['x-request-id'],
        referrer: headers?.referer,
        mime_type: headers?.['content-type'],
      },
      response: {
        status_code: status === 0 ? undefined : status,
        bytes: uint(o.DownstreamContentSize),
        mime_type: respType,
      },
    },
    user_agent: headers?.['user-agent'] === undefined ? undefined : { original: headers['user-agent'] },
    service: str(o.ServiceName) === undefined ? undefined : { name: str(o.ServiceName) },
    tls:
      str(o.TLSVersion) === undefined
        ? undefined
        : { version: tlsVersion(o.TLSVersion), cipher: str(o.TLSCipher) },
    gatewatch: { upstream_latency_ms: origin !== undefined && origin >= 0 ? origin / 1e6 : undefined },
  };
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
