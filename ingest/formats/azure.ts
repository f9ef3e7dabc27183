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

function wafRecord(o: Obj, p: Obj, product: string, ctx: ParseContext): ParseResult {
  const raw: RawRequest = {};
  const action = wafAction(p.action);
  const ruleId = str(p.ruleId) ?? str(p.ruleName);
  const ruleName = str(p.message) ?? (isObj(p.details) ? str(p.details.msg) : undefined);
  const socket = ipOrUndef(p.socketIP ?? p.socketIp);
  const client = ipOrUndef(p.clientIp ?? p.clientIP);
  const details = isObj(p.details) ? p.details : undefined;
  const ev: EventDraft = {
    event: {
      kind: 'alert',
      category: ['web', 'network'],
      type: wafEventType(action),
      action: action === undefined ? 'waf-unknown' : `waf-${action}`,
      outcome: outcomeOfWaf(action),
      module: 'azure',
    },
    observer: { vendor: 'Microsoft', product, type: 'waf', name: resourceName(o) },
    source: client === undefined ? undefined : { ip: client, address: client, port: uint(p.clientPort) },
    http: { request: { id: str(p.transactionId) ?? str(p.trackingReference) } },
    rule:
      ruleId === undefined
        ? undefined
        : { id: ruleId, name: ruleName, ruleset: str(p.ruleSetType) ?? str(p.policy) },
    gatewatch: {
      waf: {
        action,
        rule_ids: ruleId === undefined ? undefined : [ruleId],
        attack_class: attackClass([
          str(p.ruleGroup),
          ruleId,
          ruleName,
          details ? str(details.file) : undefined,
        ]),
      },
    },
  };
  timestampOr(ev, anyTimeToMs(o.time ?? o.timeStamp ?? p.timeStamp), ctx.receivedAt);
  const uri = str(p.requestUri);
  if (uri !== undefined) applyUrl(ev, splitTarget(uri));
  const host = str(p.hostname) ?? str(p.host);
  if (host !== undefined && ev.url !== undefined) ev.url.domain ??= host;
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
  const ev: EventDraft = {
    event: {
      kind: 'event',
      category: ['web'],
      type: ['access'],
      action: 'request',
      outcome: outcomeOf(status),
      module: 'azure',
      duration: sToNs(p.timeTaken),
    },
    observer: { vendor: 'Microsoft', product, type, name: resourceName(o) },
    source: client === undefined ? undefined : { ip: client, address: client, port: uint(p.clientPort) },
    http: {
      version: httpVersion(p.httpVersion),
      request: {
        id: str(p.transactionId) ?? str(p.trackingReference),
        method: method(p.httpMethod),
        bytes: uint(p.receivedBytes ?? p.requestBytes),
      },
      response: { status_code: status, bytes: uint(p.sentBytes ?? p.responseBytes) },
    },
    user_agent: str(p.userAgent) === undefined ? undefined : { original: str(p.userAgent) },
    tls:
      ssl === undefined
        ? undefined
        : { version: tlsVersion(ssl), cipher: str(p.sslCipher) ?? str(p.securityCipher) },
    gatewatch: { upstream_latency_ms: sToMs(p.serverResponseLatency) },
    error:
      str(p.errorInfo ?? p.ErrorInfo) === undefined || p.errorInfo === 'NoError' || p.ErrorInfo === 'NoError'
        ? undefined
        : { code: str(p.errorInfo ?? p.ErrorInfo) },
  };
  timestampOr(ev, anyTimeToMs(o.time ?? o.timeStamp), ctx.receivedAt);
  const uri = str(p.originalRequestUriWithArgs) ?? str(p.requestUri);
  if (uri !== undefined) {
    const q = str(p.requestQuery);
    applyUrl(ev, splitTarget(q !== undefined && !uri.includes('?') ? `${uri}?${q}` : uri));
    const host = str(p.originalHost) ?? str(p.host) ?? str(p.hostName);
    if (host !== undefined) ev.url!.domain ??= host;
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
