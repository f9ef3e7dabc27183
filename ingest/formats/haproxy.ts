/**
 * HAProxy HTTP log (`option httplog`, the default HTTP format of HAProxy 1.5 to 3.x):
 *
 *   client:port [accept date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes CC CS flags \
 *     actconn/feconn/beconn/srvconn/retries srv_queue/backend_queue {req captures} {resp captures} "request line"
 *
 * as HAProxy writes it to stdout/a file (`log stdout format raw`), or behind a syslog header
 * (`<134>` priority, RFC 3164 `Mmm dd hh:mm:ss host haproxy[pid]: `, RFC 5424, or an rsyslog
 * ISO timestamp). HAProxy 1.x names the timers Tq/Tw/Tc/Tr/Tt; the shape is the same.
 *
 * - The accept date has no time zone: it is read as UTC (run HAProxy with TZ=UTC, or use the
 *   syslog header's zone in your pipeline).
 * - Captured headers are positional. A source's `fieldMap` may name them:
 *   `{ "capture.request.0": "@header:host", "capture.request.2": "@header:x-api-key" }` (any
 *   field-map target). Without one they are recognised by their content: an `Authorization`
 *   value (`Basic …`, `Bearer …`), the Host (first `host[:port]`), the User-Agent, an
 *   X-Forwarded-For list; any other token-like value is treated as a credential (fingerprinted
 *   and redacted, never stored in clear), anything else is kept under `gatewatch.extra`.
 * - HAProxy escapes `"`, `#`, `{`, `|`, `}` and control characters in captures and the request
 *   line as `#XX`; they are decoded.
 * - `gatewatch.upstream.status_code` is set when a server answered (a server was chosen, its
 *   response time Tr is known and HAProxy did not end the session itself).
 * - Lines HAProxy logs about itself ("Proxy fe started.", "Server be/s1 is DOWN") are skipped.
 */
import { applyFieldMap, compileFieldMap } from './fieldmap.ts';
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import {
  applyUrl,
  canonicalIPv4,
  child,
  childList,
  dropEmptyUrl,
  int,
  ipOrUndef,
  type Obj,
  outcomeOf,
  parseClfTime,
  parseRequestLine,
  setExtra,
  splitTarget,
  timestampOr,
} from './util.ts';

/** Syslog headers in front of the HAProxy message (all optional). */
const SYSLOG_PREFIX =
  /^(?:<\d{1,3}>)?(?:1 \S+ \S+ \S+ \S+ \S+ (?:-|\[(?:[^\]\\]|\\.)*\])+ |(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?:\S+ )?[\w./-]+(?:\[\d+\])?: )?/;

const HTTP_LOG =
  /^(\S+):(\d+) \[(\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)?)\] (\S+) ([^/\s]+)\/(\S+) (-?\d+)\/(-?\d+)\/(-?\d+)\/(-?\d+)\/\+?(-?\d+) (-?\d+) \+?(-?\d+) (\S+) (\S+) (\S{4}) (\d+)\/(\d+)\/(\d+)\/(\d+)\/\+?(\d+) (\d+)\/(\d+)(?: \{([^}]*)\})?(?: \{([^}]*)\})? "(.*)"$/;

/** What HAProxy logs about itself through the same log target (start, stop, health checks). */
const ADMIN_LINE =
  /^(?:Proxy \S+ (?:started|stopped|reached)|Stopping (?:frontend|backend|proxy) \S+ in \d+ ms|(?:Server|Backup Server) \S+\/\S+ is (?:UP|DOWN|going DOWN)|Health check for (?:backup )?server \S+\/\S+ |backend \S+ has no server available|Connect from \S+ to \S+ \()/;

const OBSERVER = { vendor: 'HAProxy Technologies', product: 'HAProxy', type: 'proxy' } as const;

function payloadOf(line: string): string {
  const m = SYSLOG_PREFIX.exec(line);
  return m === null || m[0] === '' ? line : line.slice(m[0].length);
}

/** Undo HAProxy's `#XX` escaping. */
function unescapeHash(s: string): string {
  return s.indexOf('#') < 0
    ? s
    : s.replace(/#([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const AUTH_SCHEME = /^(?:Basic|Bearer|Digest|Negotiate|NTLM|Token|ApiKey|AWS4-HMAC-SHA256|HOBA|Mutual)\s+\S/i;
/** A User-Agent: "Mozilla/…", a product/version token with a dotted version, or a comment. */
const USER_AGENT = /^Mozilla\/|^[A-Za-z][\w.+-]*\/\d+(?:\.\d+)+[\w.+#-]*(?:\s|$)|\(/;
const TOKEN = /^[A-Za-z0-9._~+/=-]{16,}$/;

function isIpList(v: string): boolean {
  const parts = v.split(',').map((p) => p.trim());
  return (
    parts.length > 0 &&
    parts.every((p) => canonicalIPv4(p) >= 0 || (p.split(':').length > 2 && ipOrUndef(p) !== undefined))
  );
}

/** Captured request headers, named by the source's map or recognised by their content. */
function applyCaptures(ev: EventDraft, raw: RawRequest, values: string[], ctx: ParseContext): void {
  const map = ctx.source.fieldMap;
  if (map !== undefined) {
    const rec: Obj = {};
    values.forEach((v, i) => {
      if (v !== '') rec[`capture.request.${i}`] = v;
    });
    applyFieldMap(rec, compileFieldMap(map, false), ev, raw);
    return;
  }
  let sawHost = false;
  let sawUa = false;
  values.forEach((v, i) => {
    if (v === '') return;
    if (AUTH_SCHEME.test(v)) {
      child(raw, 'headers').authorization = v;
    } else if (!sawHost && HOST.test(v) && (v.includes('.') || v.includes(':') || v === 'localhost')) {
      sawHost = true;
      child(raw, 'headers').host = v;
    } else if (isIpList(v)) {
      child(raw, 'headers')['x-forwarded-for'] = v;
      raw.forwardedFor = v;
    } else if (!sawUa && USER_AGENT.test(v)) {
      sawUa = true;
      ev.user_agent = { original: v };
    } else if (TOKEN.test(v)) {
      // an unnamed token-like header value (an API key capture, a session id): a credential
      childList(raw, 'credentials').push({ name: `request_capture_${i}`, value: v, location: 'header' });
    } else setExtra(ev, `request_capture_${i}`, v);
  });
}

function parse(line: string, ctx: ParseContext): ParseResult {
  const payload = payloadOf(line);
  const m = HTTP_LOG.exec(payload);
  if (m === null) {
    if (ADMIN_LINE.test(payload)) return { ok: false, reason: 'haproxy: not a request log line', skip: true };
    return { ok: false, reason: 'haproxy: not an HTTP log line (option httplog)' };
  }
  const [, client, cport, date, frontend, backend, server, tR, tw, tc, tr, ta, st, bytes, , , flags] = m;
  const reqCaptures = m[24];
  const resCaptures = m[25];
  const requestLine = unescapeHash(m[26]!);
  const status = int(st);
  const raw: RawRequest = {};
  const ev: EventDraft = {
    event: {
      kind: 'event',
      category: ['web'],
      type: ['access'],
      action: 'request',
      outcome: outcomeOf(status !== undefined && status > 0 ? status : undefined),
      module: 'haproxy',
    },
    observer: { ...OBSERVER, name: frontend! },
  };
  const total = int(ta);
  if (total !== undefined && total >= 0) ev.event!.duration = total * 1_000_000;
  const ip = ipOrUndef(client);
  const port = int(cport);
  ev.source = ip === undefined ? { address: client! } : { ip, address: client! };
  if (port !== undefined) ev.source.port = port;
  if (ip !== undefined) raw.peerIp = ip;
  const http: Obj = {};
  const req = requestLine === '<BADREQ>' ? undefined : parseRequestLine(requestLine);
  if (req?.version !== undefined) http.version = req.version;
  if (req !== undefined) http.request = { method: req.method };
  const size = int(bytes);
  const response: Obj = {};
  if (status !== undefined && status > 0) response.status_code = status;
  if (size !== undefined && size >= 0) response.bytes = size;
  if (Object.keys(response).length > 0) http.response = response;
  if (Object.keys(http).length > 0) ev.http = http;
  timestampOr(ev, parseClfTime(date!), ctx.receivedAt);
  if (req !== undefined) {
    applyUrl(ev, splitTarget(req.target));
    if (req.target === '') dropEmptyUrl(ev);
  } else setExtra(ev, 'request', requestLine);
  if (backend !== undefined) ev.service = { name: backend };
  const serverMs = int(tr);
  const gw = child(ev, 'gatewatch');
  if (serverMs !== undefined && serverMs >= 0) gw.upstream_latency_ms = serverMs;
  const ended = flags!.charAt(0);
  if (
    server !== '<NOSRV>' &&
    serverMs !== undefined &&
    serverMs >= 0 &&
    status !== undefined &&
    status > 0 &&
    !'PRILDK'.includes(ended)
  ) {
    gw.upstream = { status_code: status };
  }
  if (reqCaptures !== undefined) applyCaptures(ev, raw, reqCaptures.split('|').map(unescapeHash), ctx);
  const host = raw.headers?.host;
  if (host !== undefined) {
    const colon = host.lastIndexOf(':');
    const name = colon > 0 && !host.endsWith(']') ? host.slice(0, colon) : host;
    if (name !== '' && ev.url !== undefined && ev.url.domain === undefined) ev.url.domain = name;
  }
  if (resCaptures !== undefined && resCaptures !== '')
    setExtra(ev, 'response_captures', resCaptures.split('|').map(unescapeHash));
  setExtra(ev, 'frontend', frontend);
  setExtra(ev, 'backend', backend);
  setExtra(ev, 'server', server);
  setExtra(ev, 'termination_state', flags);
  setExtra(ev, 'timers', `${tR}/${tw}/${tc}/${tr}/${ta}`);
  if (Object.keys(gw).length === 0) delete ev.gatewatch;
  return { ok: true, event: ev, raw };
}

export const haproxyHttp: Format = {
  id: 'haproxy.http',
  description:
    'HAProxy HTTP log (option httplog; raw or behind a syslog header; with or without header captures)',
  kind: 'text',
  detect(line) {
    const payload = payloadOf(line);
    if (HTTP_LOG.test(payload)) return 0.95;
    return ADMIN_LINE.test(payload) ? 0.6 : 0;
  },
  parse,
};
