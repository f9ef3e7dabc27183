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
  const ev: EventDraft = {
    event: {
      kind: 'event',
      category: ['web', 'network'],
      type: blocked ? ['access', 'denied'] : ['access'],
      action: 'request',
      outcome: status !== undefined ? outcomeOf(status) : outcomeOfWaf(action),
      module: 'cloudflare',
      duration:
        start !== undefined && end !== undefined && end >= start
          ? Math.round((end - start) * 1e6)
          : undefined,
    },
    observer: { vendor: 'Cloudflare', product: 'Cloudflare', type: 'cdn', name: str(o.ZoneName) },
    source:
      ip === undefined
        ? undefined
        : {
            ip,
            address: ip,
            port: uint(o.ClientSrcPort),
            geo:
              country === undefined || country === 'XX' || country === 'T1'
                ? undefined
                : { country_iso_code: country },
            as: asn === undefined || asn === 0 ? undefined : { number: asn },
          },
    http: {
      version: httpVersion(o.ClientRequestProtocol),
      request: {
        id: str(o.RayID),
        method: method(o.ClientRequestMethod),
        bytes: uint(o.ClientRequestBytes),
        referrer: str(o.ClientRequestReferer),
      },
      response: {
        status_code: status === 0 ? undefined : status,
        bytes: uint(o.EdgeResponseBytes),
        mime_type: str(o.EdgeResponseContentType),
      },
    },
    user_agent:
      str(o.ClientRequestUserAgent) === undefined ? undefined : { original: str(o.ClientRequestUserAgent) },
    tls:
      str(o.ClientSSLProtocol) === undefined || o.ClientSSLProtocol === 'none'
        ? undefined
        : {
            version: tlsVersion(o.ClientSSLProtocol),
            cipher: str(o.ClientSSLCipher),
            client: { ja3: str(o.JA3Hash), ja4: str(o.JA4) },
          },
    rule: ruleId === undefined ? undefined : { id: ruleId, name: ruleName },
    gatewatch: {
      upstream_latency_ms: originMs !== undefined && originMs >= 0 ? originMs : undefined,
      waf:
        action === undefined || action === 'unknown'
          ? undefined
          : {
              action,
              rule_ids: ruleIds.length > 0 ? ruleIds : undefined,
              attack_class: attackClass([ruleName]),
            },
    },
  };
  if (ev.tls === undefined && (str(o.JA3Hash) !== undefined || str(o.JA4) !== undefined)) {
    ev.tls = { client: { ja3: str(o.JA3Hash), ja4: str(o.JA4) } };
  }
  timestampOr(ev, start, ctx.receivedAt);
  const target = str(o.ClientRequestURI) ?? str(o.ClientRequestPath);
  if (target !== undefined) applyUrl(ev, splitTarget(target));
  if (ev.url !== undefined) {
    ev.url.domain = str(o.ClientRequestHost);
    ev.url.scheme = str(o.ClientRequestScheme);
  }
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
    source:
      ip === undefined
        ? undefined
        : {
            ip,
            address: ip,
            port: uint(o.ClientSrcPort),
            geo: country === undefined || country === 'XX' ? undefined : { country_iso_code: country },
            as:
              asn === undefined
                ? undefined
                : { number: asn, organization: asOrg === undefined ? undefined : { name: asOrg } },
          },
    http: {
      version: httpVersion(o.ClientRequestProtocol),
      request: {
        id: str(o.RayID),
        method: method(o.ClientRequestMethod),
        referrer:
          refHost === undefined
            ? undefined
            : `${str(o.ClientRefererScheme) ?? 'https'}://${refHost}${str(o.ClientRefererPath) ?? ''}${str(o.ClientRefererQuery) ?? ''}`,
      },
      response: status === undefined || status === 0 ? undefined : { status_code: status },
    },
    user_agent:
      str(o.ClientRequestUserAgent) === undefined ? undefined : { original: str(o.ClientRequestUserAgent) },
    rule:
      ruleId === undefined && description === undefined
        ? undefined
        : { id: ruleId, name: description, ruleset: source },
    gatewatch: {
      waf: {
        action,
        rule_ids: ruleId === undefined ? undefined : [ruleId],
        attack_class: attackClass([description, source]),
      },
    },
  };
  timestampOr(ev, timestampMs(o.Datetime), ctx.receivedAt);
  const path = str(o.ClientRequestPath);
  if (path !== undefined) {
    const q = str(o.ClientRequestQuery);
    applyUrl(ev, splitTarget(q === undefined ? path : `${path}${q.startsWith('?') ? '' : '?'}${q}`));
    ev.url!.domain = str(o.ClientRequestHost);
    ev.url!.scheme = str(o.ClientRequestScheme);
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
