/**
 * Cloudflare Logpush datasets `http_requests` and `firewall_events` (JSON, one object per
 * line). Fields are opt-in per job; timestamps are RFC 3339, unix seconds or unix nanoseconds
 * depending on the job's `timestamp_format` (handled by magnitude). `ClientIP` is the eyeball
 * address as seen by the Cloudflare edge.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  anyTimeToMs,
  applyUrl,
  attackClass,
  finite,
  hasKeys,
  headersFromObject,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  num,
  type Obj,
  outcomeOf,
  outcomeOfWaf,
  splitTarget,
  str,
  timestampOr,
  tlsVersion,
  uint,
  wafAction,
  wafEventType,
} from './util.ts';

const HTTP_MAPPED = new Set([
  'EdgeStartTimestamp',
  'EdgeEndTimestamp',
  'ClientIP',
  'ClientSrcPort',
  'ClientASN',
  'ClientCountry',
  'ClientRequestHost',
  'ClientRequestMethod',
  'ClientRequestURI',
  'ClientRequestPath',
  'ClientRequestProtocol',
  'ClientRequestScheme',
  'ClientRequestReferer',
  'ClientRequestUserAgent',
  'ClientRequestBytes',
  'ClientSSLProtocol',
  'ClientSSLCipher',
  'EdgeResponseStatus',
  'EdgeResponseBytes',
  'EdgeResponseContentType',
  'OriginResponseDurationMs',
  'OriginResponseTime',
  'RayID',
  'JA3Hash',
  'JA4',
  'SecurityAction',
  'SecurityRuleID',
  'SecurityRuleIDs',
  'SecurityRuleDescription',
  'WAFAction',
  'WAFRuleID',
  'WAFRuleMessage',
  'ZoneName',
  'RequestHeaders',
  'Cookies',
  'ResponseHeaders',
]);

function timestampMs(v: unknown): number | undefined {
  return anyTimeToMs(v);
}

function copyRest(o: Obj, mapped: ReadonlySet<string>, ev: EventDraft): void {
  let extra: Record<string, unknown> | undefined;
  for (const k of Object.keys(o)) {
    if (mapped.has(k)) continue;
    const v = o[k];
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    if (extra === undefined) {
      const gw = ev.gatewatch ?? {};
      ev.gatewatch = gw;
      extra = gw.extra ?? {};
      gw.extra = extra;
    }
    extra[k] = v;
  }
}

/** url.domain and url.scheme from the record: they replace what the target said, even when absent. */
function setHostScheme(url: NonNullable<EventDraft['url']>, o: Obj): void {
  const host = str(o.ClientRequestHost);
  if (host !== undefined) url.domain = host;
  else if (url.domain !== undefined) delete url.domain;
  const scheme = str(o.ClientRequestScheme);
  if (scheme !== undefined) url.scheme = scheme;
  else if (url.scheme !== undefined) delete url.scheme;
}

function parseHttp(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const raw: RawRequest = {};
  const status = uint(o.EdgeResponseStatus);
  const start = timestampMs(o.EdgeStartTimestamp);
  const end = timestampMs(o.EdgeEndTimestamp);
  const ip = ipOrUndef(o.ClientIP);
  const action = wafAction(o.SecurityAction ?? o.WAFAction);
  const ruleIds = Array.isArray(o.SecurityRuleIDs)
    ? o.SecurityRuleIDs.map(str).filter((x) => x !== undefined)
    : [];
  const ruleId = str(o.SecurityRuleID) ?? str(o.WAFRuleID) ?? ruleIds[0];
  if (ruleId !== undefined && !ruleIds.includes(ruleId)) ruleIds.unshift(ruleId);
  const country = str(o.ClientCountry)?.toUpperCase();
  const asn = uint(o.ClientASN);
  const originMs =
    num(o.OriginResponseDurationMs) ??
    (num(o.OriginResponseTime) !== undefined ? num(o.OriginResponseTime)! / 1e6 : undefined);
  const ruleName = str(o.SecurityRuleDescription) ?? str(o.WAFRuleMessage);
  const blocked = action === 'block' || action === 'challenge' || action === 'captcha';
  const event: Obj = {
    kind: 'event',
    category: ['web', 'network'],
    type: blocked ? ['access', 'denied'] : ['access'],
    action: 'request',
    outcome: status !== undefined ? outcomeOf(status) : outcomeOfWaf(action),
    module: 'cloudflare',
  };
  if (start !== undefined && end !== undefined && end >= start) {
    const duration = finite(Math.round((end - start) * 1e6));
    if (duration !== undefined) event.duration = duration;
  }
  const observer: Obj = { vendor: 'Cloudflare', product: 'Cloudflare', type: 'cdn' };
  const zone = str(o.ZoneName);
  if (zone !== undefined) observer.name = zone;
  const ev: EventDraft = { event, observer } as EventDraft;
  if (ip !== undefined) {
    const source: Obj = { ip, address: ip };
    const port = uint(o.ClientSrcPort);
    if (port !== undefined) source.port = port;
    if (country !== undefined && country !== 'XX' && country !== 'T1')
      source.geo = { country_iso_code: country };
    if (asn !== undefined && asn !== 0) source.as = { number: asn };
    ev.source = source;
  }
  const http: Obj = {};
  const version = httpVersion(o.ClientRequestProtocol);
  if (version !== undefined) http.version = version;
  const request: Obj = {};
  const rayId = str(o.RayID);
  if (rayId !== undefined) request.id = rayId;
  const m = method(o.ClientRequestMethod);
  if (m !== undefined) request.method = m;
  const reqBytes = uint(o.ClientRequestBytes);
  if (reqBytes !== undefined) request.bytes = reqBytes;
  const referrer = str(o.ClientRequestReferer);
  if (referrer !== undefined) request.referrer = referrer;
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined && status !== 0) response.status_code = status;
  const resBytes = uint(o.EdgeResponseBytes);
  if (resBytes !== undefined) response.bytes = resBytes;
  const mimeType = str(o.EdgeResponseContentType);
  if (mimeType !== undefined) response.mime_type = mimeType;
  if (hasKeys(response)) http.response = response;
  if (hasKeys(http)) ev.http = http;
  const ua = str(o.ClientRequestUserAgent);
  if (ua !== undefined) ev.user_agent = { original: ua };
  const ja3 = str(o.JA3Hash);
  const ja4 = str(o.JA4);
  const tlsClient =
    ja3 === undefined && ja4 === undefined
      ? undefined
      : ja4 === undefined
        ? { ja3 }
        : ja3 === undefined
          ? { ja4 }
          : { ja3, ja4 };
  if (str(o.ClientSSLProtocol) !== undefined && o.ClientSSLProtocol !== 'none') {
    const tls: Obj = {};
    const v = tlsVersion(o.ClientSSLProtocol);
    if (v !== undefined) tls.version = v;
    const cipher = str(o.ClientSSLCipher);
    if (cipher !== undefined) tls.cipher = cipher;
    if (tlsClient !== undefined) tls.client = tlsClient;
    ev.tls = tls;
  }
  if (ruleId !== undefined)
    ev.rule = ruleName === undefined ? { id: ruleId } : { id: ruleId, name: ruleName };
  const gw: Obj = {};
  if (originMs !== undefined && originMs >= 0) gw.upstream_latency_ms = originMs;
  if (action !== undefined && action !== 'unknown') {
    const waf: Obj = { action };
    if (ruleIds.length > 0) waf.rule_ids = ruleIds;
    const attack = attackClass([ruleName]);
    if (attack !== undefined) waf.attack_class = attack;
    gw.waf = waf;
  }
  ev.gatewatch = gw;
  if (ev.tls === undefined && tlsClient !== undefined) ev.tls = { client: tlsClient };
  timestampOr(ev, start, ctx.receivedAt);
  const target = str(o.ClientRequestURI) ?? str(o.ClientRequestPath);
  if (target !== undefined) applyUrl(ev, splitTarget(target));
  if (ev.url !== undefined) setHostScheme(ev.url, o);
  if (ip !== undefined) raw.peerIp = ip;
  const headers = headersFromObject(o.RequestHeaders);
  if (headers !== undefined) {
    raw.headers = headers;
    if (headers['x-forwarded-for'] !== undefined) raw.forwardedFor = headers['x-forwarded-for'];
  }
  if (isObj(o.Cookies)) {
    const parts: string[] = [];
    for (const k of Object.keys(o.Cookies)) {
      const v = str(o.Cookies[k]);
      if (v !== undefined) parts.push(`${k}=${v}`);
    }
    if (parts.length > 0) raw.cookies = parts.join('; ');
  }
  copyRest(o, HTTP_MAPPED, ev);
  return { ok: true, event: ev, raw };
}

const FW_MAPPED = new Set([
  'Datetime',
  'Action',
  'Source',
  'RuleID',
  'Description',
  'RayID',
  'ClientIP',
  'ClientASN',
  'ClientASNDescription',
  'ClientCountry',
  'ClientRequestHost',
  'ClientRequestMethod',
  'ClientRequestPath',
  'ClientRequestQuery',
  'ClientRequestProtocol',
  'ClientRequestScheme',
  'ClientRequestUserAgent',
  'ClientRefererHost',
  'ClientRefererPath',
  'ClientRefererQuery',
  'ClientRefererScheme',
  'EdgeResponseStatus',
  'OriginResponseStatus',
  'ClientSrcPort',
]);

function parseFirewall(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const raw: RawRequest = {};
  const action = wafAction(o.Action);
  const ip = ipOrUndef(o.ClientIP);
  const country = str(o.ClientCountry)?.toUpperCase();
  const asn = uint(o.ClientASN);
  const asOrg = str(o.ClientASNDescription);
  const status = uint(o.EdgeResponseStatus);
  const ruleId = str(o.RuleID);
  const description = str(o.Description);
  const source = str(o.Source);
  const refHost = str(o.ClientRefererHost);
  const ev: EventDraft = {
    event: {
      kind: 'alert',
      category: ['web', 'network'],
      type: wafEventType(action),
      action: action === undefined ? 'waf-unknown' : `waf-${action}`,
      outcome: outcomeOfWaf(action),
      module: 'cloudflare',
    },
    observer: { vendor: 'Cloudflare', product: 'Cloudflare WAF', type: 'waf' },
  };
  if (ip !== undefined) {
    const src: Obj = { ip, address: ip };
    const port = uint(o.ClientSrcPort);
    if (port !== undefined) src.port = port;
    if (country !== undefined && country !== 'XX') src.geo = { country_iso_code: country };
    if (asn !== undefined)
      src.as = asOrg === undefined ? { number: asn } : { number: asn, organization: { name: asOrg } };
    ev.source = src;
  }
  const http: Obj = {};
  const version = httpVersion(o.ClientRequestProtocol);
  if (version !== undefined) http.version = version;
  const request: Obj = {};
  const rayId = str(o.RayID);
  if (rayId !== undefined) request.id = rayId;
  const m = method(o.ClientRequestMethod);
  if (m !== undefined) request.method = m;
  if (refHost !== undefined) {
    request.referrer = `${str(o.ClientRefererScheme) ?? 'https'}://${refHost}${str(o.ClientRefererPath) ?? ''}${str(o.ClientRefererQuery) ?? ''}`;
  }
  if (hasKeys(request)) http.request = request;
  if (status !== undefined && status !== 0) http.response = { status_code: status };
  if (hasKeys(http)) ev.http = http;
  const ua = str(o.ClientRequestUserAgent);
  if (ua !== undefined) ev.user_agent = { original: ua };
  if (ruleId !== undefined || description !== undefined) {
    const rule: Obj = {};
    if (ruleId !== undefined) rule.id = ruleId;
    if (description !== undefined) rule.name = description;
    if (source !== undefined) rule.ruleset = source;
    ev.rule = rule;
  }
  const waf: Obj = {};
  if (action !== undefined) waf.action = action;
  if (ruleId !== undefined) waf.rule_ids = [ruleId];
  const attack = attackClass([description, source]);
  if (attack !== undefined) waf.attack_class = attack;
  ev.gatewatch = hasKeys(waf) ? { waf } : {};
  timestampOr(ev, timestampMs(o.Datetime), ctx.receivedAt);
  const path = str(o.ClientRequestPath);
  if (path !== undefined) {
    const q = str(o.ClientRequestQuery);
    applyUrl(ev, splitTarget(q === undefined ? path : `${path}${q.startsWith('?') ? '' : '?'}${q}`));
    setHostScheme(ev.url!, o);
  }
  if (ip !== undefined) raw.peerIp = ip;
  const origin = int(o.OriginResponseStatus);
  if (origin !== undefined && origin > 0) {
    const gw = ev.gatewatch ?? {};
    gw.extra = { OriginResponseStatus: origin };
    ev.gatewatch = gw;
  }
  copyRest(o, FW_MAPPED, ev);
  return { ok: true, event: ev, raw };
}

export const cloudflareHttpRequests: Format = {
  id: 'cloudflare.http_requests',
  description: 'Cloudflare Logpush http_requests dataset (JSON)',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    if ('ClientRequestHost' in json || 'EdgeStartTimestamp' in json || 'EdgeResponseStatus' in json) {
      return 'Datetime' in json && 'Action' in json ? 0.5 : 1;
    }
    return 0;
  },
  parse: parseHttp,
};

export const cloudflareFirewallEvents: Format = {
  id: 'cloudflare.firewall_events',
  description: 'Cloudflare Logpush firewall_events dataset (JSON)',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    return 'Action' in json &&
      ('Datetime' in json || 'Source' in json) &&
      ('RayID' in json || 'ClientIP' in json)
      ? 0.95
      : 0;
  },
  parse: parseFirewall,
};
