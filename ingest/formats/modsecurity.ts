/**
 * ModSecurity / Coraza JSON audit logs, one transaction per line:
 * - ModSecurity v3 (libmodsecurity): `{"transaction":{…, "messages":[…]}}`, `time_stamp`
 *   like "Fri Jan  5 10:00:00 2024", `http_version` a number.
 * - ModSecurity v2 (Apache, yajl): `transaction`, `request.request_line`, `audit_data.messages`
 *   as strings with `[id "…"] [msg "…"]` parts.
 * - Coraza v3 JSON: `transaction{…}` with `unix_timestamp` (ns) and top-level `messages`.
 * The client IP is the socket peer; there is no latency or identity.
 */
import { requestBodyFields } from './request-body.ts';
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  applyUrl,
  attackClass,
  dropEmptyUrl,
  epochToMs,
  hasKeys,
  headersFromObject,
  httpVersion,
  int,
  ipOrUndef,
  isObj,
  jsonObject,
  method,
  num,
  nz,
  type Obj,
  outcomeOf,
  parseClfTime,
  parseRequestLine,
  setExtra,
  splitHostPort,
  splitTarget,
  str,
  timestampOr,
  uint,
} from './util.ts';

interface Msg {
  id?: string;
  msg?: string;
  severity?: number;
  tags: string[];
  data?: string;
}

const SEVERITY: Record<string, number> = {
  EMERGENCY: 0,
  ALERT: 1,
  CRITICAL: 2,
  ERROR: 3,
  WARNING: 4,
  NOTICE: 5,
  INFO: 6,
  DEBUG: 7,
};

/** Attack classes that describe a payload (they win over reputation and protocol findings). */
const PAYLOAD_CLASSES = new Set(['sqli', 'xss', 'rce', 'lfi', 'rfi', 'ssrf']);

/** Rules that only report the anomaly-score outcome, not an attack. */
const SUMMARY_RULES = new Set(['949110', '959100', '980130', '980140', '980170', '980100', '949111']);

function sev(v: unknown): number | undefined {
  const n = num(v);
  if (n !== undefined) return Math.trunc(n);
  const s = str(v);
  return s === undefined ? undefined : SEVERITY[s.toUpperCase()];
}

/** "Fri Jan  5 10:00:00 2024" (asctime, server local time; taken as UTC). */
function parseAsctime(s: string): number | undefined {
  const m = /^\w{3} (\w{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})$/.exec(s.trim());
  if (!m) return undefined;
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(
    m[1]!,
  );
  if (mon < 0) return undefined;
  return Date.UTC(Number(m[6]), mon, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
}

/** Coraza "2024/01/05 10:00:00". */
function parseSlashTime(s: string): number | undefined {
  const m = /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)/.exec(s);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** `[name "value"]` parts of a v2 message, compiled once (global: lastIndex reset per use). */
const PART_RES = new Map(
  ['id', 'msg', 'severity', 'tag', 'data'].map((name) => [
    name,
    new RegExp(`\\[${name} "((?:[^"\\\\]|\\\\.){0,2000})"\\]`, 'g'),
  ]),
);

function v2Message(s: string): Msg {
  const part = (name: string) => {
    const re = PART_RES.get(name)!;
    re.lastIndex = 0;
    const out: string[] = [];
    for (let m = re.exec(s); m !== null && out.length < 32; m = re.exec(s)) out.push(m[1]!);
    return out;
  };
  return {
    id: part('id')[0],
    msg: part('msg')[0],
    severity: sev(part('severity')[0]),
    tags: part('tag'),
    data: part('data')[0],
  };
}

function objMessage(m: unknown): Msg | undefined {
  if (typeof m === 'string') return v2Message(m);
  if (!isObj(m)) return undefined;
  const d = isObj(m.details) ? m.details : isObj(m.data) ? m.data : {};
  const tags = Array.isArray(d.tags) ? d.tags.map(str).filter((x) => x !== undefined) : [];
  return {
    id: str(d.ruleId) ?? str(d.id),
    msg: str(m.message) ?? str(d.msg),
    severity: sev(d.severity),
    tags,
    data: str(d.data),
  };
}

function parse(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const tx: Obj = isObj(o.transaction) ? o.transaction : {};
  if (!isObj(o.transaction)) return { ok: false, reason: 'modsecurity: missing transaction object' };
  const v2 = isObj(o.audit_data) || 'remote_address' in tx;
  const coraza = !v2 && ('unix_timestamp' in tx || (isObj(tx.producer) && 'rule_engine' in tx.producer));
  const req: Obj = isObj(tx.request) ? tx.request : isObj(o.request) ? o.request : {};
  const res: Obj = isObj(tx.response) ? tx.response : isObj(o.response) ? o.response : {};
  const audit: Obj = isObj(o.audit_data) ? o.audit_data : {};
  const rawMsgs = Array.isArray(tx.messages)
    ? tx.messages
    : Array.isArray(o.messages)
      ? o.messages
      : Array.isArray(audit.messages)
        ? audit.messages
        : [];
  const msgs = rawMsgs.map(objMessage).filter((m) => m !== undefined);
  const raw: RawRequest = {};
  const status = uint(res.http_code ?? res.status);
  const ip = ipOrUndef(tx.client_ip ?? tx.remote_address);
  const headers = headersFromObject(req.headers);
  const ids: string[] = [];
  for (const m of msgs) if (m.id !== undefined && !ids.includes(m.id)) ids.push(m.id);
  // The rule that says what the attack was: a payload rule (SQLi, XSS, RCE, …) before a
  // reputation or protocol one (sqlmap's requests hit 913100 "scanner" and 942100 "SQLi").
  const ruleHits = msgs.filter((m) => m.id !== undefined && !SUMMARY_RULES.has(m.id));
  const main =
    ruleHits.find((m) => PAYLOAD_CLASSES.has(attackClass([...m.tags, m.msg]) ?? '')) ??
    ruleHits[0] ??
    msgs[0];
  const action = isObj(audit.action) ? audit.action : undefined;
  // ModSecurity v3 says nothing of an interruption: a rule hit with a 403 (or the CRS blocking
  // evaluation) under an enforcing engine is a block; under DetectionOnly nothing is blocked,
  // whatever the application answered.
  const engineMode =
    (isObj(tx.producer) ? str(tx.producer.secrules_engine) : undefined) ?? str(audit.engine_mode);
  const detectionOnly = engineMode !== undefined && /^detection/i.test(engineMode);
  const intercepted =
    !detectionOnly &&
    (action?.intercepted === true ||
      tx.is_interrupted === true ||
      (msgs.length > 0 && (status === 403 || ids.includes('949110') || ids.includes('959100'))));
  const waf = msgs.length > 0 ? (intercepted ? 'block' : 'log') : undefined;
  const severities = msgs.map((m) => m.severity).filter((s) => s !== undefined);
  const engine = coraza ? 'Coraza' : 'ModSecurity';
  const event: Obj = {
    kind: msgs.length > 0 ? 'alert' : 'event',
    category: ['web', 'network'],
    type: waf === 'block' ? ['access', 'denied'] : ['access'],
    action: waf === undefined ? 'request' : `waf-${waf}`,
    outcome: status !== undefined ? outcomeOf(status) : waf === 'block' ? 'failure' : 'unknown',
    module: coraza ? 'coraza' : 'modsecurity',
  };
  if (severities.length > 0) event.severity = Math.min(...severities);
  const observer: Obj = { vendor: coraza ? 'OWASP' : 'OWASP', product: engine, type: 'waf' };
  const serverId = str(tx.server_id);
  if (serverId !== undefined) observer.name = serverId;
  const ev: EventDraft = { event, observer } as EventDraft;
  if (ip !== undefined) {
    const port = uint(tx.client_port ?? tx.remote_port);
    ev.source = port === undefined ? { ip, address: ip } : { ip, address: ip, port };
  }
  const destIp = ipOrUndef(tx.host_ip ?? tx.local_address);
  if (destIp !== undefined) {
    const port = uint(tx.host_port ?? tx.local_port);
    ev.destination = port === undefined ? { ip: destIp } : { ip: destIp, port };
  }
  // time
  let ms: number | undefined;
  if (coraza) {
    const u = num(tx.unix_timestamp);
    ms = u !== undefined ? epochToMs(u) : parseSlashTime(str(tx.timestamp) ?? '');
  } else if (v2) ms = parseClfTime(str(tx.time) ?? '');
  else ms = parseAsctime(str(tx.time_stamp) ?? '');
  // request target
  const rl = parseRequestLine(str(req.request_line));
  const m = rl?.method ?? method(req.method);
  const version0 =
    rl?.version ??
    httpVersion(
      typeof req.http_version === 'number' ? String(req.http_version) : (req.http_version ?? req.protocol),
    );
  const version = version0 === '2.0' ? '2' : version0;
  const respHeaders = headersFromObject(res.headers);
  const respType = nz(respHeaders?.['content-type']);
  const request: Obj = {};
  const requestId = str(tx.unique_id) ?? str(tx.id) ?? str(tx.transaction_id);
  if (requestId !== undefined) request.id = requestId;
  const referrer = nz(headers?.referer);
  if (referrer !== undefined) request.referrer = referrer;
  const reqType = nz(headers?.['content-type']);
  if (reqType !== undefined) request.mime_type = reqType;
  if (m !== undefined) request.method = m;
  const http: Obj = {};
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined && status !== 0) response.status_code = status;
  if (respType !== undefined) response.mime_type = respType;
  if (hasKeys(response)) http.response = response;
  if (version !== undefined) http.version = version;
  if (hasKeys(http)) ev.http = http;
  const ua = nz(headers?.['user-agent']);
  if (ua !== undefined) ev.user_agent = { original: ua };
  if (main?.id !== undefined)
    ev.rule = main.msg === undefined ? { id: main.id } : { id: main.id, name: main.msg };
  if (waf !== undefined) {
    const w: Obj = { action: waf };
    if (ids.length > 0) w.rule_ids = ids;
    const attack = attackClass([...(main?.tags ?? []), main?.msg, ...msgs.flatMap((x) => x.tags)]);
    if (attack !== undefined) w.attack_class = attack;
    ev.gatewatch = { waf: w };
  } else ev.gatewatch = {};
  timestampOr(ev, ms, ctx.receivedAt);
  const target = rl?.target ?? str(req.uri);
  if (target !== undefined) {
    const parts = splitTarget(target);
    applyUrl(ev, parts);
    if (headers?.host !== undefined && parts.domain === undefined && headers.host !== '') {
      // "api.example.com:8080": the domain without the port, as every other format has it
      const hp = splitHostPort(headers.host);
      if (hp.host !== '') ev.url!.domain ??= hp.host;
      if (hp.port !== undefined) ev.url!.port ??= hp.port;
    }
    if (target === '') dropEmptyUrl(ev);
  }
  if (ip !== undefined) raw.peerIp = ip;
  // Audit part C logs the request body: its secrets are scrubbed, a login's user name is kept.
  const body = requestBodyFields(str(req.body), headers?.['content-type']);
  if (body !== undefined) {
    raw.loggedValues = body.values;
    if (body.user !== undefined) ev.user = { name: body.user };
  }
  if (headers !== undefined) {
    raw.headers = headers;
    if (headers['x-forwarded-for'] !== undefined) raw.forwardedFor = headers['x-forwarded-for'];
  }
  if (respHeaders?.['set-cookie'] !== undefined)
    raw.secretsInOriginal = respHeaders['set-cookie'].split(', ');
  setExtra(
    ev,
    'messages',
    msgs.slice(0, 16).map((x) => ({
      id: x.id,
      msg: x.msg,
      severity: x.severity,
      data: x.data?.slice(0, 512),
      tags: x.tags.length > 0 ? x.tags : undefined,
    })),
  );
  if (isObj(tx.producer)) setExtra(ev, 'producer', tx.producer);
  if (action !== undefined) setExtra(ev, 'action', action);
  setExtra(ev, 'engine_mode', str(audit.engine_mode));
  const anomaly = int(isObj(tx.anomaly_score) ? undefined : tx.anomaly_score);
  setExtra(ev, 'anomaly_score', anomaly);
  return { ok: true, event: ev, raw };
}

export const modsecurityAudit: Format = {
  id: 'modsecurity.audit',
  description: 'ModSecurity v2/v3 and Coraza JSON audit log',
  kind: 'json',
  detect(_line, json) {
    if (!isObj(json) || !isObj(json.transaction)) return 0;
    const tx = json.transaction;
    if ('client_ip' in tx || 'remote_address' in tx) return 1;
    return isObj(json.audit_data) ? 1 : 0;
  },
  parse,
};
