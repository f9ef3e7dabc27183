/**
 * AWS API Gateway access logs (REST v1 and HTTP v2 APIs). Users write their own `$context`
 * templates, so JSON records go through a declarative field map per source; the default map
 * covers the console/CDK JSON templates and common extra keys. The console CLF template is
 * also understood. Every value is a string there, `-` when missing.
 */
import { applyFieldMap, compileFieldMap } from './fieldmap.ts';
import { clfPrefix } from './nginx.ts';
import type { EventDraft, FieldMap, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  applyUrl,
  hasKeys,
  httpVersion,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  type Obj,
  outcomeOf,
  parseClfTime,
  splitTarget,
  str,
  timestampOr,
  tokenize,
  uint,
} from './util.ts';

/** Key (as written in the user's template) → ECS field or special target. */
export const APIGATEWAY_DEFAULT_FIELD_MAP: FieldMap = {
  requestId: 'http.request.id',
  extendedRequestId: '@extra',
  ip: '@peer_ip',
  sourceIp: '@peer_ip',
  caller: '@extra',
  user: 'user.id',
  userArn: '@extra',
  requestTime: '@timestamp',
  requestTimeEpoch: '@timestamp',
  httpMethod: 'http.request.method',
  resourcePath: 'gatewatch.route',
  routeKey: '@route_key',
  path: '@path',
  status: 'http.response.status_code',
  protocol: '@protocol',
  responseLength: 'http.response.bytes',
  responseLatency: '@duration_ms',
  integrationLatency: '@upstream_latency_ms',
  integrationStatus: '@extra',
  userAgent: 'user_agent.original',
  domainName: 'url.domain',
  apiId: 'observer.name',
  stage: '@extra',
  apiKeyId: 'gatewatch.api_key.id',
  apiKey: '@credential:header:x-api-key',
  principalId: 'user.id',
  authorizerPrincipalId: 'user.id',
  sub: 'gatewatch.jwt.sub',
  claimsSub: 'gatewatch.jwt.sub',
  clientId: 'gatewatch.jwt.client_id',
  errorMessage: 'error.message',
  error: 'error.message',
  errorResponseType: 'error.code',
  responseType: 'error.code',
  xForwardedFor: '@forwarded_for',
  forwardedFor: '@forwarded_for',
  wafResponseCode: '@extra',
  webaclArn: '@extra',
};

function parseJson(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const map = compileFieldMap(
    ctx.source.fieldMap ?? APIGATEWAY_DEFAULT_FIELD_MAP,
    ctx.source.keepUnmapped ?? true,
  );
  const raw: RawRequest = {};
  const ev: EventDraft = {
    event: { kind: 'event', category: ['web'], type: ['access'], action: 'request', module: 'aws' },
    observer: { vendor: 'AWS', product: 'API Gateway', type: 'api-gateway' },
  };
  const { ms } = applyFieldMap(o, map, ev, raw);
  // REST templates log the route template (resourcePath) but not the concrete path.
  if (ev.url === undefined && ev.gatewatch?.route !== undefined) {
    ev.url = { original: ev.gatewatch.route, path: ev.gatewatch.route };
  }
  if (ev.source?.ip !== undefined) ev.source.address = ev.source.ip;
  const status = ev.http?.response?.status_code;
  ev.event!.outcome = outcomeOf(status);
  if (ev.error?.code === 'WAF_FILTERED') ev.gatewatch = { ...ev.gatewatch, waf: { action: 'block' } };
  timestampOr(ev, ms, ctx.receivedAt);
  return { ok: true, event: ev, raw };
}

function isUuidTail(line: string): boolean {
  const n = line.length;
  if (n < 40 || line.charCodeAt(n - 37) !== 32) return false;
  return (
    line.charCodeAt(n - 28) === 45 &&
    line.charCodeAt(n - 23) === 45 &&
    line.charCodeAt(n - 18) === 45 &&
    line.charCodeAt(n - 13) === 45
  );
}

/** `$context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime]
 * "$context.httpMethod $context.resourcePath $context.protocol" $context.status $context.responseLength
 * $context.requestId` */
function parseClf(line: string, ctx: ParseContext): ParseResult {
  const t = tokenize(line, 16);
  if (t === undefined || t.length !== 8) return { ok: false, reason: 'aws.apigateway: not the CLF template' };
  const raw: RawRequest = {};
  const req = str(t[4]) ?? '';
  const parts = req.split(' ');
  const status = uint(t[5]);
  const ip = ipOrUndef(t[0]);
  const ev: EventDraft = {
    event: {
      kind: 'event',
      category: ['web'],
      type: ['access'],
      action: 'request',
      module: 'aws',
      outcome: outcomeOf(status),
    },
    observer: { vendor: 'AWS', product: 'API Gateway', type: 'api-gateway' },
  };
  if (ip !== undefined) ev.source = { ip, address: ip };
  if (str(t[2]) !== undefined) ev.user = { id: t[2] };
  const http: Obj = {};
  const version = httpVersion(parts[2]);
  if (version !== undefined) http.version = version;
  const request: Obj = {};
  const id = str(t[7]);
  if (id !== undefined) request.id = id;
  const m = method(parts[0]);
  if (m !== undefined) request.method = m;
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined) response.status_code = status;
  const bytes = uint(t[6]);
  if (bytes !== undefined) response.bytes = bytes;
  if (hasKeys(response)) http.response = response;
  if (hasKeys(http)) ev.http = http;
  if (ip !== undefined) raw.peerIp = ip;
  const resource = str(parts[1]);
  if (resource !== undefined) {
    applyUrl(ev, splitTarget(resource));
    if (resource.includes('{')) ev.gatewatch = { route: resource };
  }
  if (str(t[1]) !== undefined) ev.gatewatch = { ...ev.gatewatch, extra: { caller: t[1] } };
  timestampOr(ev, parseClfTime(t[3] ?? ''), ctx.receivedAt);
  return { ok: true, event: ev, raw };
}

export const awsApiGateway: Format = {
  id: 'aws.apigateway',
  description: 'AWS API Gateway access log (JSON $context template via field map, or the CLF template)',
  kind: 'both',
  detect(line, json) {
    if (json === undefined) return clfPrefix(line) && isUuidTail(line) ? 0.9 : 0;
    if (!isObj(json)) return 0;
    const id = 'requestId' in json || 'extendedRequestId' in json;
    const m = 'httpMethod' in json || 'routeKey' in json || 'resourcePath' in json;
    return id && m ? 0.95 : 0;
  },
  parse(line, ctx) {
    if (ctx.json === undefined && line.charCodeAt(0) !== 123) return parseClf(line, ctx);
    return parseJson(line, ctx);
  },
};
