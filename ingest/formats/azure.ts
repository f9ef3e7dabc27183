/**
 * Azure diagnostic logs (JSON records; Event Hub / Storage deliveries wrap them in
 * `{"records":[…]}`, which the registry unwraps):
 * - Application Gateway: `ApplicationGatewayFirewallLog` (WAF) and `ApplicationGatewayAccessLog`.
 * - Front Door: `FrontDoorWebApplicationFirewallLog` / `FrontDoorAccessLog` (also the classic
 *   `Frontdoor…` spelling). `socketIP` is the direct peer; `clientIP` may come from XFF.
 * Times in seconds (`timeTaken`), statuses and ports often as strings.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  anyTimeToMs,
  applyUrl,
  attackClass,
  hasKeys,
  httpVersion,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  type Obj,
  outcomeOf,
  outcomeOfWaf,
  setExtra,
  splitTarget,
  sToMs,
  sToNs,
  str,
  timestampOr,
  tlsVersion,
  uint,
  wafAction,
  wafEventType,
} from './util.ts';

function category(o: Obj): string {
  return (str(o.category) ?? str(o.Category) ?? '').toLowerCase();
}

function props(o: Obj): Obj {
  return isObj(o.properties) ? o.properties : isObj(o.Properties) ? o.Properties : {};
}

/** The last path segment of the resource id (gateway or profile name). */
function resourceName(o: Obj): string | undefined {
  const id = str(o.resourceId) ?? str(o.ResourceId);
  if (id === undefined) return undefined;
  const slash = id.lastIndexOf('/');
  return slash < 0 ? id : id.slice(slash + 1).toLowerCase();
}

function clientSource(client: string, p: Obj): Obj {
  const port = uint(p.clientPort);
  return port === undefined ? { ip: client, address: client } : { ip: client, address: client, port };
}

function wafRecord(o: Obj, p: Obj, product: string, ctx: ParseContext): ParseResult {
  const raw: RawRequest = {};
  const action = wafAction(p.action);
  const ruleId = str(p.ruleId) ?? str(p.ruleName);
  const ruleName = str(p.message) ?? (isObj(p.details) ? str(p.details.msg) : undefined);
  const socket = ipOrUndef(p.socketIP ?? p.socketIp);
  const client = ipOrUndef(p.clientIp ?? p.clientIP);
  const details = isObj(p.details) ? p.details : undefined;
  const observer: Obj = { vendor: 'Microsoft', product, type: 'waf' };
  const name = resourceName(o);
  if (name !== undefined && name !== '') observer.name = name;
  const ev: EventDraft = {
    event: {
      kind: 'alert',
      category: ['web', 'network'],
      type: wafEventType(action),
      action: action === undefined ? 'waf-unknown' : `waf-${action}`,
      outcome: outcomeOfWaf(action),
      module: 'azure',
    },
    observer,
  } as EventDraft;
  if (client !== undefined) ev.source = clientSource(client, p);
  const requestId = str(p.transactionId) ?? str(p.trackingReference);
  if (requestId !== undefined) ev.http = { request: { id: requestId } };
  if (ruleId !== undefined) {
    const rule: Obj = { id: ruleId };
    if (ruleName !== undefined) rule.name = ruleName;
    const ruleset = str(p.ruleSetType) ?? str(p.policy);
    if (ruleset !== undefined) rule.ruleset = ruleset;
    ev.rule = rule;
  }
  const waf: Obj = {};
  if (action !== undefined) waf.action = action;
  if (ruleId !== undefined) waf.rule_ids = [ruleId];
  const attack = attackClass([str(p.ruleGroup), ruleId, ruleName, details ? str(details.file) : undefined]);
  if (attack !== undefined) waf.attack_class = attack;
  ev.gatewatch = hasKeys(waf) ? { waf } : {};
  timestampOr(ev, anyTimeToMs(o.time ?? o.timeStamp ?? p.timeStamp), ctx.receivedAt);
  const uri = str(p.requestUri);
  const host = str(p.hostname) ?? str(p.host);
  if (uri !== undefined) {
    const parts = splitTarget(uri);
    applyUrl(ev, parts);
    if (host !== undefined && parts.domain === undefined) ev.url!.domain ??= host;
  }
  // Front Door: socketIP is the peer and clientIP what it derived (possibly from XFF).
  if (socket !== undefined) {
    raw.peerIp = socket;
    if (client !== undefined && client !== socket) raw.forwardedFor = client;
  } else if (client !== undefined) raw.peerIp = client;
  setExtra(ev, 'ruleSetVersion', str(p.ruleSetVersion));
  setExtra(ev, 'ruleGroup', str(p.ruleGroup));
  setExtra(ev, 'policyMode', str(p.policyMode));
  setExtra(ev, 'policyId', str(p.policyId));
  setExtra(ev, 'engine', str(p.engine));
  if (details !== undefined) {
    const d: Record<string, unknown> = {};
    const message = str(details.message) ?? str(details.msg);
    if (message !== undefined && message.trim() !== '') d.message = message;
    const data = str(details.data);
    if (data !== undefined) d.data = data;
    const file = str(details.file);
    if (file !== undefined) d.file = file;
    if (Array.isArray(details.matches) && details.matches.length > 0) d.matches = details.matches;
    if (Object.keys(d).length > 0) setExtra(ev, 'details', d);
  }
  return { ok: true, event: ev, raw };
}

function accessRecord(o: Obj, p: Obj, product: string, type: string, ctx: ParseContext): ParseResult {
  const raw: RawRequest = {};
  const status = uint(p.httpStatus ?? p.httpStatusCode);
  const socket = ipOrUndef(p.socketIp ?? p.socketIP);
  const client = ipOrUndef(p.clientIP ?? p.clientIp);
  const ssl = str(p.sslProtocol) ?? str(p.securityProtocol);
  const event: Obj = {
    kind: 'event',
    category: ['web'],
    type: ['access'],
    action: 'request',
    outcome: outcomeOf(status),
    module: 'azure',
  };
  const duration = sToNs(p.timeTaken);
  if (duration !== undefined) event.duration = duration;
  const observer: Obj = { vendor: 'Microsoft', product, type };
  const name = resourceName(o);
  if (name !== undefined && name !== '') observer.name = name;
  const ev: EventDraft = { event, observer } as EventDraft;
  if (client !== undefined) ev.source = clientSource(client, p);
  const http: Obj = {};
  const version = httpVersion(p.httpVersion);
  if (version !== undefined) http.version = version;
  const request: Obj = {};
  const requestId = str(p.transactionId) ?? str(p.trackingReference);
  if (requestId !== undefined) request.id = requestId;
  const m = method(p.httpMethod);
  if (m !== undefined) request.method = m;
  const reqBytes = uint(p.receivedBytes ?? p.requestBytes);
  if (reqBytes !== undefined) request.bytes = reqBytes;
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined) response.status_code = status;
  const resBytes = uint(p.sentBytes ?? p.responseBytes);
  if (resBytes !== undefined) response.bytes = resBytes;
  if (hasKeys(response)) http.response = response;
  if (hasKeys(http)) ev.http = http;
  const ua = str(p.userAgent);
  if (ua !== undefined) ev.user_agent = { original: ua };
  if (ssl !== undefined) {
    const tls: Obj = {};
    const v = tlsVersion(ssl);
    if (v !== undefined) tls.version = v;
    const cipher = str(p.sslCipher) ?? str(p.securityCipher);
    if (cipher !== undefined) tls.cipher = cipher;
    ev.tls = tls;
  }
  const upstream = sToMs(p.serverResponseLatency);
  ev.gatewatch = upstream === undefined ? {} : { upstream_latency_ms: upstream };
  const errorCode = str(p.errorInfo ?? p.ErrorInfo);
  if (errorCode !== undefined && p.errorInfo !== 'NoError' && p.ErrorInfo !== 'NoError') {
    ev.error = { code: errorCode };
  }
  timestampOr(ev, anyTimeToMs(o.time ?? o.timeStamp), ctx.receivedAt);
  const uri = str(p.originalRequestUriWithArgs) ?? str(p.requestUri);
  if (uri !== undefined) {
    const q = str(p.requestQuery);
    const parts = splitTarget(q !== undefined && !uri.includes('?') ? `${uri}?${q}` : uri);
    applyUrl(ev, parts);
    const host = str(p.originalHost) ?? str(p.host) ?? str(p.hostName);
    if (host !== undefined && parts.domain === undefined) ev.url!.domain ??= host;
  }
  if (socket !== undefined) {
    raw.peerIp = socket;
    if (client !== undefined && client !== socket) raw.forwardedFor = client;
  } else if (client !== undefined) raw.peerIp = client;
  setExtra(ev, 'serverRouted', str(p.serverRouted));
  setExtra(ev, 'serverStatus', str(p.serverStatus));
  setExtra(ev, 'WAFMode', str(p.WAFMode));
  setExtra(ev, 'pop', str(p.pop));
  setExtra(ev, 'cacheStatus', str(p.cacheStatus));
  setExtra(ev, 'routingRuleName', str(p.routingRuleName));
  setExtra(ev, 'httpStatusDetails', str(p.httpStatusDetails));
  setExtra(ev, 'ruleName', str(p.ruleName));
  return { ok: true, event: ev, raw };
}

export const azureAppGateway: Format = {
  id: 'azure.application_gateway',
  description: 'Azure Application Gateway WAF (ApplicationGatewayFirewallLog) and access logs (JSON)',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    const c = category(json);
    const op = str(json.operationName) ?? '';
    return c.startsWith('applicationgateway') || op.startsWith('ApplicationGateway') ? 1 : 0;
  },
  parse(line, ctx) {
    const o = jsonObject(line, ctx.json);
    if (typeof o === 'string') return { ok: false, reason: o };
    const c = category(o);
    const op = str(o.operationName) ?? '';
    const p = props(o);
    if (c.includes('firewall') || op === 'ApplicationGatewayFirewall')
      return wafRecord(o, p, 'Application Gateway WAF', ctx);
    if (c.includes('access') || op === 'ApplicationGatewayAccess') {
      return accessRecord(o, p, 'Application Gateway', 'load-balancer', ctx);
    }
    return { ok: false, reason: `azure.application_gateway: unsupported category "${c}"` };
  },
};

export const azureFrontDoor: Format = {
  id: 'azure.frontdoor',
  description: 'Azure Front Door WAF and access logs (JSON, classic and Standard/Premium)',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    return category(json).startsWith('frontdoor') ? 1 : 0;
  },
  parse(line, ctx) {
    const o = jsonObject(line, ctx.json);
    if (typeof o === 'string') return { ok: false, reason: o };
    const c = category(o);
    const p = props(o);
    if (c.includes('firewall')) return wafRecord(o, p, 'Front Door WAF', ctx);
    if (c.includes('access')) return accessRecord(o, p, 'Front Door', 'cdn', ctx);
    return { ok: false, reason: `azure.frontdoor: unsupported category "${c}"` };
  },
};
