/**
 * AWS WAF v2 web ACL traffic logs (JSON, one object per line; `timestamp` in epoch ms).
 * The WAF sees only the request: no latency or bytes; a status only for custom responses.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  attackClass,
  headersFromPairs,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
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

  const ev: EventDraft = {
    event: {
      kind: ids.length > 0 || action === 'block' ? 'alert' : 'event',
      category: ['web', 'network'],
      type: wafEventType(action),
      action: action === undefined ? 'waf-unknown' : `waf-${action}`,
      outcome: status !== undefined ? outcomeOf(status) : outcomeOfWaf(action),
      module: 'aws',
    },
    observer: { vendor: 'AWS', product: 'WAF', type: 'waf', name: aclName },
    http: {
      version: httpVersion(req.httpVersion),
      request: {
        id: str(req.requestId),
        method: method(req.httpMethod),
        bytes: uint(o.requestBodySize),
        referrer: headers?.referer,
        mime_type: headers?.['content-type'],
      },
      response: status === undefined ? undefined : { status_code: status },
    },
    gatewatch: {
      waf: {
        action,
        rule_ids: ids.length > 0 ? ids : undefined,
        attack_class: attackClass([...conditions, ...labels, term, groupTerminating]),
      },
    },
  };
  timestampOr(ev, int(o.timestamp), ctx.receivedAt);

  const clientIp = ipOrUndef(req.clientIp);
  const country = str(req.country);
  const asn = uint(o.clientAsn);
  ev.source = {
    ip: clientIp,
    geo: country === undefined ? undefined : { country_iso_code: country },
    as: asn === undefined ? undefined : { number: asn },
  };
  if (clientIp !== undefined) raw.peerIp = clientIp;
  if (headers !== undefined) {
    raw.headers = headers;
    if (headers['x-forwarded-for'] !== undefined) raw.forwardedFor = headers['x-forwarded-for'];
    if (headers['user-agent'] !== undefined) ev.user_agent = { original: headers['user-agent'] };
  }

  const uri = str(req.uri) ?? '/';
  const args = str(req.args);
  ev.url = {
    original: args === undefined ? uri : `${uri}?${args}`,
    path: uri,
    query: args,
    domain: str(req.host) ?? headers?.host,
    scheme: str(req.scheme)?.toLowerCase(),
  };
  if (term !== undefined && term !== 'Default_Action') {
    ev.rule = { id: term, ruleset: str(o.terminatingRuleType), name: groupTerminating };
  }
  const ja3 = str(o.ja3Fingerprint);
  const ja4 = str(o.ja4Fingerprint);
  if (ja3 !== undefined || ja4 !== undefined) ev.tls = { client: { ja3, ja4 } };

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
