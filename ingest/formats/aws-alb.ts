/**
 * AWS Application Load Balancer access logs: space-separated, quoted strings, times in seconds
 * (`-1` when not applicable). `client:port` is the immediate peer; ALB does not log
 * X-Forwarded-For. Trailing fields added by AWS later are ignored.
 */
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  applyUrl,
  dropEmptyUrl,
  hasKeys,
  ipOrUndef,
  num,
  type Obj,
  outcomeOf,
  parseIsoTime,
  parseRequestLine,
  setExtra,
  splitTarget,
  sToMs,
  str,
  timestampOr,
  tokenize,
  uint,
} from './util.ts';

const TYPES = new Set(['http', 'https', 'h2', 'grpcs', 'ws', 'wss']);

/** "1.2.3.4:5678", "[2001:db8::1]:443" or "2001:db8::1:443" (port always present). */
function splitAddr(s: string | undefined): { ip?: string; port?: number } | undefined {
  if (s === undefined || s === '-') return undefined;
  if (s.charCodeAt(0) === 91) {
    const close = s.indexOf(']');
    return { ip: ipOrUndef(s.slice(1, close)), port: uint(s.slice(close + 2)) };
  }
  const colon = s.lastIndexOf(':');
  if (colon < 0) return { ip: ipOrUndef(s) };
  return { ip: ipOrUndef(s.slice(0, colon)), port: uint(s.slice(colon + 1)) };
}

function parse(line: string, ctx: ParseContext): ParseResult {
  const t = tokenize(line, 64, false);
  if (t === undefined) return { ok: false, reason: 'aws.alb: unterminated quoted field' };
  if (t.length < 17) return { ok: false, reason: `aws.alb: expected at least 17 fields, got ${t.length}` };
  const client = splitAddr(t[3]);
  const target = splitAddr(t[4]);
  const reqTime = num(t[5]);
  const targetTime = num(t[6]);
  const respTime = num(t[7]);
  const status = uint(t[8]);
  const targetStatus = str(t[9]);
  const req = parseRequestLine(t[12]);
  const actions = str(t[22]);
  const raw: RawRequest = {};
  const duration =
    reqTime !== undefined &&
    targetTime !== undefined &&
    respTime !== undefined &&
    reqTime >= 0 &&
    targetTime >= 0 &&
    respTime >= 0
      ? Math.round((reqTime + targetTime + respTime) * 1e9)
      : undefined;
  const sslProtocol = str(t[15]);
  const wafRan = actions?.split(',').includes('waf') ?? false;

  const event: Obj = {
    kind: 'event',
    category: ['web', 'network'],
    type: ['access'],
    action: 'request',
    outcome: outcomeOf(status),
    module: 'aws',
  };
  if (duration !== undefined && Number.isFinite(duration)) event.duration = duration;
  const observer: Obj = { vendor: 'AWS', product: 'Application Load Balancer', type: 'load-balancer' };
  const name = str(t[2]);
  if (name !== undefined) observer.name = name;
  const ev: EventDraft = { event, observer } as EventDraft;
  if (client?.ip !== undefined) {
    const source: Obj = { ip: client.ip };
    if (client.port !== undefined) source.port = client.port;
    source.address = client.ip;
    ev.source = source;
  }
  if (target?.ip !== undefined) {
    ev.destination = target.port === undefined ? { ip: target.ip } : { ip: target.ip, port: target.port };
  }
  const http: Obj = {};
  if (req?.version !== undefined) http.version = req.version;
  const request: Obj = {};
  const requestId = str(t[17]);
  if (requestId !== undefined) request.id = requestId;
  if (req !== undefined) request.method = req.method;
  const reqBytes = uint(t[10]);
  if (reqBytes !== undefined) request.bytes = reqBytes;
  if (hasKeys(request)) http.request = request;
  const response: Obj = {};
  if (status !== undefined && status !== 0) response.status_code = status;
  const resBytes = uint(t[11]);
  if (resBytes !== undefined) response.bytes = resBytes;
  if (hasKeys(response)) http.response = response;
  if (hasKeys(http)) ev.http = http;
  const ua = str(t[13]);
  if (ua !== undefined) ev.user_agent = { original: ua };
  if (sslProtocol !== undefined) {
    const tls: Obj = {};
    const version = sslProtocol.replace(/^TLSv/, '');
    if (version !== '') tls.version = version;
    const cipher = str(t[14]);
    if (cipher !== undefined) tls.cipher = cipher;
    if (hasKeys(tls)) ev.tls = tls;
  }
  const gw: Obj = {};
  const upstream = targetTime !== undefined && targetTime >= 0 ? sToMs(targetTime) : undefined;
  if (upstream !== undefined) gw.upstream_latency_ms = upstream;
  // The target's own answer; "-" when the load balancer (or its WAF) answered itself.
  const targetCode = targetStatus === undefined ? undefined : uint(targetStatus);
  if (targetCode !== undefined && targetCode > 0) gw.upstream = { status_code: targetCode };
  if (wafRan && !actions!.includes('waf-failed')) {
    gw.waf = { action: status === 403 && targetStatus === undefined ? 'block' : 'allow' };
  }
  ev.gatewatch = gw;
  const error = str(t[24]);
  if (error !== undefined) ev.error = { message: error };
  timestampOr(ev, parseIsoTime(t[1] ?? ''), ctx.receivedAt);
  if (client?.ip !== undefined) raw.peerIp = client.ip;
  if (req !== undefined && req.target !== '-') {
    const parts = splitTarget(req.target);
    applyUrl(ev, parts);
    const domain = str(t[18]);
    // an empty host in an absolute target ("http:///p") is kept as no host
    if (domain !== undefined && ev.url !== undefined && parts.domain === undefined) ev.url.domain ??= domain;
    if (parts.original === '') dropEmptyUrl(ev);
  }

  setExtra(ev, 'type', t[0]);
  setExtra(ev, 'target_status_code', targetStatus);
  setExtra(ev, 'target_group_arn', str(t[16]));
  setExtra(ev, 'actions_executed', actions);
  setExtra(ev, 'matched_rule_priority', str(t[20]));
  setExtra(ev, 'redirect_url', str(t[23]));
  setExtra(ev, 'classification', str(t[27]));
  setExtra(ev, 'classification_reason', str(t[28]));
  setExtra(ev, 'conn_trace_id', str(t[29]));
  return { ok: true, event: ev, raw };
}

export const awsAlb: Format = {
  id: 'aws.alb',
  description: 'AWS Application Load Balancer access log (space-separated)',
  kind: 'text',
  detect(line) {
    const sp = line.indexOf(' ');
    if (sp < 2 || sp > 5 || !TYPES.has(line.slice(0, sp))) return 0;
    // the time field: 2024-01-05T10:00:00.123456Z
    return line.charCodeAt(sp + 5) === 45 && line.charCodeAt(sp + 11) === 84 ? 1 : 0;
  },
  parse,
};
