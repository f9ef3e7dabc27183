/**
 * AWS WAF v2 web ACL traffic logs (JSON, one object per line; `timestamp` in epoch ms).
 * The WAF sees only the request: no latency or bytes; a status only for custom responses.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  attackClass,
  hasKeys,
  headersFromPairs,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  nz,
  type Obj,
  outcomeOf,
  outcomeOfWaf,
  setExtra,
  str,
  timestampOr,
  uint,
  wafAction,
  wafEventType,
} from './util.ts';

function ruleIds(o: Obj): { ids: string[]; groupTerminating?: string } {
  const ids: string[] = [];
  let groupTerminating: string | undefined;
  const term = str(o.terminatingRuleId);
  if (term !== undefined && term !== 'Default_Action') ids.push(term);
  const addNonTerminating = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const r of list) {
      const id = isObj(r) ? str(r.ruleId) : undefined;
      if (id !== undefined && !ids.includes(id)) ids.push(id);
    }
  };
  addNonTerminating(o.nonTerminatingMatchingRules);
  if (Array.isArray(o.ruleGroupList)) {
    for (const g of o.ruleGroupList) {
      if (!isObj(g)) continue;
      if (isObj(g.terminatingRule)) {
        const id = str(g.terminatingRule.ruleId);
        if (id !== undefined) {
          groupTerminating ??= id;
          if (!ids.includes(id)) ids.push(id);
        }
      }
      addNonTerminating(g.nonTerminatingMatchingRules);
    }
  }
  if (Array.isArray(o.rateBasedRuleList)) {
    for (const r of o.rateBasedRuleList) {
      const id = isObj(r) ? (str(r.rateBasedRuleName) ?? str(r.rateBasedRuleId)) : undefined;
      if (id !== undefined && !ids.includes(id) && id === term) ids.push(id);
    }
  }
  return groupTerminating === undefined ? { ids } : { ids, groupTerminating };
}

function parse(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const req = o.httpRequest;
  if (!isObj(req)) return { ok: false, reason: 'aws.waf: missing httpRequest' };
  const action = wafAction(o.action);
  const headers = headersFromPairs(req.headers);
  const raw: RawRequest = {};
  const { ids, groupTerminating } = ruleIds(o);
  const status = uint(o.responseCodeSent);
  const labels = Array.isArray(o.labels)
    ? o.labels.map((l) => (isObj(l) ? str(l.name) : undefined)).filter((l) => l !== undefined)
    : [];
  const matchDetails = Array.isArray(o.terminatingRuleMatchDetails) ? o.terminatingRuleMatchDetails : [];
  const conditions = matchDetails.map((d) => (isObj(d) ? str(d.conditionType) : undefined));
  const term = str(o.terminatingRuleId);
  const aclArn = str(o.webaclId);
  // arn:aws:wafv2:region:acct:regional/webacl/<name>/<id>
  const aclName = aclArn?.split('/').at(-2);

  const observer: Obj = { vendor: 'AWS', product: 'WAF', type: 'waf' };
  if (aclName !== undefined && aclName !== '') observer.name = aclName;
  const http: Obj = {};
  const version = httpVersion(req.httpVersion);
  if (version !== undefined) http.version = version;
  const request: Obj = {};
  const requestId = str(req.requestId);
  if (requestId !== undefined) request.id = requestId;
  const m = method(req.httpMethod);
  if (m !== undefined) request.method = m;
  const bytes = uint(o.requestBodySize);
  if (bytes !== undefined) request.bytes = bytes;
  const referrer = nz(headers?.referer);
  if (referrer !== undefined) request.referrer = referrer;
  const mimeType = nz(headers?.['content-type']);
  if (mimeType !== undefined) request.mime_type = mimeType;
  if (hasKeys(request)) http.request = request;
  if (status !== undefined) http.response = { status_code: status };
  const waf: Obj = {};
  if (action !== undefined) waf.action = action;
  if (ids.length > 0) waf.rule_ids = ids;
  const attack = attackClass([...conditions, ...labels, term, groupTerminating]);
  if (attack !== undefined) waf.attack_class = attack;
  const ev: EventDraft = {
    event: {
      kind: ids.length > 0 || action === 'block' ? 'alert' : 'event',
      category: ['web', 'network'],
      type: wafEventType(action),
      action: action === undefined ? 'waf-unknown' : `waf-${action}`,
      outcome: status !== undefined ? outcomeOf(status) : outcomeOfWaf(action),
      module: 'aws',
    },
    observer,
  };
  if (hasKeys(http)) ev.http = http;
  ev.gatewatch = hasKeys(waf) ? { waf } : {};
  timestampOr(ev, int(o.timestamp), ctx.receivedAt);

  const clientIp = ipOrUndef(req.clientIp);
  const country = str(req.country);
  const asn = uint(o.clientAsn);
  if (clientIp !== undefined || country !== undefined || asn !== undefined) {
    const source: Obj = {};
    if (clientIp !== undefined) source.ip = clientIp;
    if (country !== undefined) source.geo = { country_iso_code: country };
    if (asn !== undefined) source.as = { number: asn };
    ev.source = source;
  }
  if (clientIp !== undefined) raw.peerIp = clientIp;
  if (headers !== undefined) {
    raw.headers = headers;
    if (headers['x-forwarded-for'] !== undefined) raw.forwardedFor = headers['x-forwarded-for'];
    const ua = headers['user-agent'];
    if (ua !== undefined && ua !== '') ev.user_agent = { original: ua };
  }

  const uri = str(req.uri) ?? '/';
  const args = str(req.args);
  const url: Obj = { original: args === undefined ? uri : `${uri}?${args}`, path: uri };
  if (args !== undefined) url.query = args;
  const domain = str(req.host) ?? headers?.host;
  if (domain !== undefined && domain !== '') url.domain = domain;
  const scheme = str(req.scheme)?.toLowerCase();
  if (scheme !== undefined) url.scheme = scheme;
  ev.url = url;
  if (term !== undefined && term !== 'Default_Action') {
    const rule: Obj = { id: term };
    const ruleset = str(o.terminatingRuleType);
    if (ruleset !== undefined) rule.ruleset = ruleset;
    if (groupTerminating !== undefined) rule.name = groupTerminating;
    ev.rule = rule;
  }
  const ja3 = str(o.ja3Fingerprint);
  const ja4 = str(o.ja4Fingerprint);
  if (ja3 !== undefined || ja4 !== undefined) {
    const client: Obj = {};
    if (ja3 !== undefined) client.ja3 = ja3;
    if (ja4 !== undefined) client.ja4 = ja4;
    ev.tls = { client };
  }

  setExtra(ev, 'webaclId', aclArn);
  setExtra(ev, 'httpSourceName', str(o.httpSourceName));
  setExtra(ev, 'httpSourceId', str(o.httpSourceId));
  setExtra(ev, 'labels', labels);
  const matched = matchDetails.filter(isObj).map((d) => ({
    conditionType: str(d.conditionType),
    location: str(d.location),
    matchedData: Array.isArray(d.matchedData)
      ? d.matchedData.filter((x) => typeof x === 'string')
      : undefined,
  }));
  setExtra(ev, 'terminatingRuleMatchDetails', matched);
  if (Array.isArray(o.rateBasedRuleList) && o.rateBasedRuleList.length > 0) {
    setExtra(ev, 'rateBasedRuleList', o.rateBasedRuleList);
  }
  if (isObj(o.captchaResponse)) setExtra(ev, 'captchaResponse', o.captchaResponse);
  if (isObj(o.challengeResponse)) setExtra(ev, 'challengeResponse', o.challengeResponse);
  return { ok: true, event: ev, raw };
}

export const awsWaf: Format = {
  id: 'aws.waf',
  description: 'AWS WAF v2 web ACL traffic log (JSON)',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json)) return 0;
    if (isObj(json.httpRequest) && ('webaclId' in json || 'terminatingRuleId' in json)) return 1;
    return 0;
  },
  parse,
};
