/**
 * Issue 18.7, the secrets corpus: secrets in query strings, headers, cookies, bodies, path
 * segments, WAF messages and malformed lines, in every log format Gatewatch parses, pushed the
 * way shippers send them (NDJSON, an Elasticsearch _bulk from a Beats-like shipper, syslog over
 * TCP, a tailed file) to the real `gatewatch ingest sources` and `gatewatch ingest worker`
 * processes. Afterwards no secret — as is, URL-encoded, JSON-escaped or base64 — may be found in
 * an Elasticsearch document (events, dead letters, anything under the prefix), a Redis key or
 * value, Redis's append-only file or snapshot (a dedicated redis-server, snapshots uncompressed
 * so their bytes can be searched), or what the processes printed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { integrationContext } from '../test/harness/context.ts';
import { eventually } from '../test/harness/eventually.ts';
import { captureTail, freePort, stopProcessGroup } from '../test/harness/processes.ts';
import { type RedisServer, startRedisServer } from '../test/harness/redis.ts';
import { createNormalizer } from './pipeline/normalize.ts';

const ROOT = resolve(import.meta.dirname, '..');
const ctx = integrationContext('secrets-corpus');
const TOKEN = 'corpus-push-token-0123456789';

// ---------------------------------------------------------------------------------------------
// The corpus: each secret is distinctive, so that any trace of it can be searched for.

const secrets: string[] = [];
/** A secret of this shape, remembered for the search. */
function secret(value: string): string {
  secrets.push(value);
  return value;
}
const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
function jwt(sub: string, tag: string): string {
  const signature = secret(Buffer.from(`signature-of-${tag}-0123456789`).toString('base64url'));
  const token = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub, iss: 'https://idp.example' })}.${signature}`;
  return secret(token);
}
function basic(user: string, password: string): string {
  secret(password);
  return secret(Buffer.from(`${user}:${password}`).toString('base64'));
}

const kongJwt = jwt('kong-user-1', 'kong');
const kong = JSON.stringify({
  request: {
    id: 'c0rpus-kong-1',
    uri: `/v1/orders?apikey=${secret('kongQueryKey-abcdef123')}&page=2`,
    url: 'https://api.example.com/v1/orders',
    querystring: { apikey: 'kongQueryKey-abcdef123', page: '2' },
    method: 'GET',
    headers: {
      host: 'api.example.com',
      authorization: `Bearer ${kongJwt}`,
      'x-api-key': secret('kongHeaderKey-0123456789'),
      cookie: `session=${secret('kongSessionCookie987')}; theme=dark`,
      'user-agent': 'okhttp/4.12.0',
    },
    size: 312,
  },
  response: {
    status: 200,
    headers: { 'set-cookie': `refresh=${secret('kongSetCookieValue55')}; Path=/; HttpOnly` },
    size: 90,
  },
  latencies: { kong: 2, proxy: 30, request: 33 },
  client_ip: '203.0.113.31',
  started_at: 1_767_261_600_000,
  consumer: { username: 'mobile-app' },
});
const kongBasic = JSON.stringify({
  request: {
    id: 'c0rpus-kong-2',
    uri: '/v1/profile',
    method: 'GET',
    headers: { host: 'api.example.com', authorization: `Basic ${basic('erin', 'kongBasicPassw0rd')}` },
  },
  response: { status: 401 },
  latencies: { kong: 1, proxy: -1, request: 2 },
  client_ip: '203.0.113.32',
  started_at: 1_767_261_601_000,
});
const nginxAccess = `203.0.113.33 - - [01/Jan/2026:10:00:02 +0000] "GET /password-reset/${jwt('reset-user', 'path')}?access_token=${secret('nginxQueryToken-55aa')} HTTP/1.1" 200 512 "https://app.example/?sid=${secret('refererSid-778899')}" "Mozilla/5.0"`;
const nginxJson = JSON.stringify({
  time: '2026-01-01T10:00:03+00:00',
  remote_addr: '203.0.113.34',
  request_id: 'c0rpus-ngx-json',
  method: 'POST',
  host: 'api.example.com',
  uri: '/v1/login',
  args: `page=1&access_token=${secret('nginxJsonArgsToken-66')}`,
  status: 401,
  body_bytes_sent: 20,
  request_time: 0.01,
  ua: 'python-requests/2.31',
  request_body: JSON.stringify({ username: 'frank', password: secret('nginxJsonBodyPass!1') }),
});
const nginxIngress = `10.244.0.1 - - [01/Jan/2026:10:00:04 +0000] "GET /api/v2/reports?api_key=${secret('ingressQueryKey-7788')} HTTP/1.1" 200 4521 "-" "okhttp/4.12.0" 312 0.043 [reports-8080] [] 10.244.1.17:8080 4521 0.042 200 c0rpus0ingress`;
const alb = `https 2026-01-01T10:00:05.123456Z app/api-alb/50dc6c495c0c9188 203.0.113.35:46532 10.0.1.5:8080 0.001 0.045 0.000 200 200 312 1890 "GET https://api.example.com:443/v1/export?api_key=${secret('sk_live_51CorpusAlbKey0123')} HTTP/1.1" "curl/8.5" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-tg/73e2d6bc24d8a067 "Root=1-65a3f2e0-0d4c6b1a2f3e4d5c6b7a8901" "api.example.com" "-" 1 2026-01-01T10:00:05.076000Z "forward" "-" "-" "10.0.1.5:8080" "200" "-" "-" TID_c0rpus`;
const waf = JSON.stringify({
  timestamp: 1_767_261_606_000,
  formatVersion: 1,
  webaclId: 'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api-acl/c0rpus',
  terminatingRuleId: 'Default_Action',
  terminatingRuleType: 'REGULAR',
  action: 'ALLOW',
  httpSourceName: 'ALB',
  httpSourceId: 'c0rpus',
  ruleGroupList: [],
  rateBasedRuleList: [],
  nonTerminatingMatchingRules: [],
  httpRequest: {
    clientIp: '203.0.113.36',
    country: 'NL',
    headers: [
      { name: 'Host', value: 'api.example.com' },
      { name: 'Authorization', value: `Basic ${basic('grace', 'wafBasicPassw0rd')}` },
      { name: 'X-Api-Key', value: secret('wafHeaderApiKey-4455') },
      { name: 'Cookie', value: `JSESSIONID=${secret('wafJsessionValue-12')}` },
    ],
    uri: '/v1/items',
    args: `token=${secret('wafArgsToken-998877')}`,
    httpVersion: 'HTTP/1.1',
    httpMethod: 'GET',
    requestId: 'c0rpus-waf',
  },
});
const apigw = JSON.stringify({
  requestId: 'c0rpus-apigw',
  ip: '203.0.113.37',
  requestTime: '01/Jan/2026:10:00:07 +0000',
  httpMethod: 'GET',
  resourcePath: '/pets/{petId}',
  status: '200',
  protocol: 'HTTP/1.1',
  responseLength: '148',
  apiKeyId: 'c0rpusKeyId',
  apiKey: secret('apigwRawApiKey-0011223344'),
});
const envoyAccess = `[2026-01-01T10:00:08.123Z] "GET /download/report.csv?X-Amz-Credential=${secret('AKIACORPUSENVOY00001')}%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=${secret('a1b2c3d4e5f60718293a4b5c6d7e8f90c0rpus')} HTTP/1.1" 200 - 0 1834 45 43 "203.0.113.38" "curl/8.5" "c0rpus-envoy" "api.example.com" "10.0.1.5:8080"`;
const envoyJson = JSON.stringify({
  start_time: '2026-01-01T10:00:09.000Z',
  method: 'GET',
  path: `/api/v2/catalog?token=${secret('envoyJsonPathToken-33')}`,
  protocol: 'HTTP/1.1',
  response_code: 200,
  response_flags: '-',
  bytes_received: 0,
  bytes_sent: 10,
  duration: 5,
  x_forwarded_for: '203.0.113.39',
  user_agent: 'okhttp/4.12.0',
  request_id: 'c0rpus-envoy-json',
  authority: 'api.example.com',
  upstream_host: '10.244.1.5:8080',
  authorization: `Bearer ${secret('envoyOpaqueBearer-445566')}`,
});
const traefik = JSON.stringify({
  ClientAddr: '203.0.113.40:52311',
  ClientHost: '203.0.113.40',
  DownstreamStatus: 200,
  Duration: 1234567,
  RequestHost: 'api.example.com',
  RequestMethod: 'GET',
  RequestPath: `/v1/invoices?signature=${secret('traefikQuerySig-101010')}`,
  RequestProtocol: 'HTTP/2.0',
  RequestScheme: 'https',
  RouterName: 'invoices@file',
  StartUTC: '2026-01-01T10:00:10Z',
  entryPointName: 'websecure',
  'request_User-Agent': 'okhttp/4.12.0',
  request_Authorization: `Bearer ${jwt('traefik-user', 'traefik')}`,
  request_Cookie: `sid=${secret('traefikSidCookie-2020')}`,
  'downstream_Set-Cookie': `auth=${secret('traefikSetCookie-3030')}; Path=/`,
  level: 'info',
  msg: '',
  time: '2026-01-01T10:00:10Z',
});
const cloudflare = JSON.stringify({
  ClientIP: '203.0.113.41',
  ClientRequestHost: 'api.example.com',
  ClientRequestMethod: 'POST',
  ClientRequestURI: `/v1/accounts?api_key=${secret('cfUriApiKey-40404040')}`,
  ClientRequestPath: '/v1/accounts',
  ClientRequestProtocol: 'HTTP/2',
  ClientRequestUserAgent: 'okhttp/4.12.0',
  EdgeStartTimestamp: '2026-01-01T10:00:11.000Z',
  EdgeEndTimestamp: '2026-01-01T10:00:11.050Z',
  EdgeResponseStatus: 200,
  RayID: 'c0rpus0cf',
  RequestHeaders: { authorization: `Bearer ${secret('cfHeaderBearer-505050')}` },
  Cookies: { __session: secret('cfCookieSession-606060') },
});
const cfFirewall = JSON.stringify({
  Action: 'block',
  ClientIP: '203.0.113.42',
  ClientRequestHost: 'api.example.com',
  ClientRequestMethod: 'GET',
  ClientRequestPath: '/wp-login.php',
  ClientRequestProtocol: 'HTTP/1.1',
  ClientRequestQuery: `?password=${secret('cfFirewallQueryPw-70')}`,
  ClientRequestScheme: 'https',
  ClientRequestUserAgent: 'zgrab/0.x',
  Datetime: '2026-01-01T10:00:12Z',
  EdgeResponseStatus: 403,
  Kind: 'firewall',
  RayID: 'c0rpus0cffw',
  RuleID: 'c0rpus',
  Source: 'firewallCustom',
});
const appGateway = JSON.stringify({
  resourceId: '/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/APPGW',
  operationName: 'ApplicationGatewayFirewall',
  category: 'ApplicationGatewayFirewallLog',
  time: '2026-01-01T10:00:13.0000000Z',
  properties: {
    instanceId: 'appgw_1',
    clientIp: '203.0.113.43',
    requestUri: `/api/login?client_secret=${secret('azureClientSecret-8080')}`,
    ruleSetType: 'OWASP_CRS',
    ruleSetVersion: '3.2',
    ruleId: '942100',
    message: 'SQL Injection Attack Detected via libinjection',
    action: 'Blocked',
    details: {
      message: 'Warning. detected SQLi using libinjection',
      data: `Matched Data: s&1c found within ARGS:password: ${secret("' or 1=1-- azurePw90")}`,
      file: 'rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf',
    },
    hostname: 'api.example.com',
    transactionId: 'c0rpus-appgw',
  },
});
const frontDoor = JSON.stringify({
  time: '2026-01-01T10:00:14.0000000Z',
  resourceId: '/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CDN/PROFILES/AFD',
  category: 'FrontDoorWebApplicationFirewallLog',
  operationName: 'Microsoft.Cdn/Profiles/Write',
  properties: {
    clientIP: '203.0.113.44',
    clientPort: '42111',
    socketIP: '203.0.113.44',
    requestUri: `https://api.example.com:443/api/v1/session?access_token=${secret('frontDoorToken-121212')}`,
    ruleName: 'Microsoft_DefaultRuleSet-2.1-SQLI-942100',
    policy: 'apiWafPolicy',
    action: 'Block',
    host: 'api.example.com',
    trackingReference: 'c0rpus-afd',
    policyMode: 'prevention',
    details: {
      matches: [
        { matchVariableName: 'PostParamValue:password', matchVariableValue: secret("' or 1=1 frontDoorPw") },
      ],
      msg: 'SQL Injection',
      data: '',
    },
  },
});
const modsecV3 = JSON.stringify({
  transaction: {
    client_ip: '203.0.113.45',
    time_stamp: 'Thu Jan  1 10:00:15 2026',
    server_id: 'c0rpus',
    client_port: 51000,
    host_ip: '10.0.0.2',
    host_port: 443,
    unique_id: 'c0rpus-modsec-v3',
    request: {
      method: 'POST',
      http_version: 1.1,
      uri: '/login',
      headers: { Host: 'shop.example', Cookie: `PHPSESSID=${secret('modsecPhpSession-1313')}` },
      body: `username=hank&password=${secret('modsecV3FormPass-14')}`,
    },
    response: {
      http_code: 403,
      headers: { 'Set-Cookie': `session=${secret('modsecSetCookie-1515')}; Path=/` },
    },
    messages: [
      {
        message: 'SQL Injection Attack Detected via libinjection',
        details: {
          match: `Matched "Operator \`DetectSQLi' with parameter \`' against variable \`ARGS:password' (Value: \`modsecV3FormPass-14' )`,
          ruleId: '942100',
          data: 'Matched Data: s&1c found within ARGS:password: modsecV3FormPass-14',
          severity: '2',
          tags: ['attack-sqli'],
        },
      },
    ],
  },
});
const modsecV2 = JSON.stringify({
  transaction: {
    time: '01/Jan/2026:10:00:16.000000 +0000',
    transaction_id: 'c0rpus-modsec-v2',
    remote_address: '203.0.113.46',
    remote_port: 40022,
    local_address: '10.0.0.3',
    local_port: 80,
  },
  request: {
    request_line: 'POST /api/session HTTP/1.1',
    headers: { Host: 'www.example.com', 'Content-Type': 'application/json' },
    body: [JSON.stringify({ user: 'ivy', password: secret('modsecV2JsonPass-16') })],
  },
  response: { protocol: 'HTTP/1.1', status: 403, headers: {} },
  audit_data: {
    messages: [
      '[id "942100"] [msg "SQL Injection"] [data "Matched Data: 2Js found within ARGS:json.password: modsecV2JsonPass-16"] [severity "CRITICAL"] [tag "attack-sqli"]',
    ],
    action: { intercepted: true, phase: 2 },
  },
});
const coraza = JSON.stringify({
  transaction: {
    timestamp: '2026/01/01 10:00:17',
    unix_timestamp: 1_767_261_617_000_000_000,
    id: 'c0rpus-coraza',
    client_ip: '203.0.113.47',
    client_port: 40000,
    host_ip: '10.0.0.2',
    host_port: 80,
    request: {
      method: 'POST',
      uri: '/signup',
      http_version: '1.1',
      headers: { 'content-type': ['multipart/form-data; boundary=c0rpus'] },
      body: `--c0rpus\r\nContent-Disposition: form-data; name="email"\r\n\r\njack@example.com\r\n--c0rpus\r\nContent-Disposition: form-data; name="new_password"\r\n\r\n${secret('corazaMultipartPw-17')}\r\n--c0rpus--\r\n`,
    },
    response: { status: 200 },
    producer: { connector: 'coraza-caddy', rule_engine: 'On' },
  },
  messages: [],
});
const cloudfrontFile = [
  '#Version: 1.0',
  '#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken',
  `2026-01-01\t10:00:18\tAMS1-C1\t2390\t203.0.113.48\tGET\td1.cloudfront.net\t/api/v1/catalog\t200\t-\tcurl/8.5\ttoken=${secret('cloudfrontQueryToken-18')}\tsession=${secret('cloudfrontCookie-1919')};%20theme=dark\tMiss\tc0rpus-cf\tshop.example.com\thttps\t412\t0.081`,
];
/** Lines no format parses: they become dead letters. */
const malformed = [
  `GET /api/orders?api_key=${secret('sk_live_51CorpusDeadLetter0')}&page=2 -- no log format looks like this`,
  `{"headers":{"authorization":"Bearer ${jwt('dead-letter', 'dead')}"}, "truncated`,
  `<<< upstream error: key ${secret('AKIACORPUSDEADLETTER')} token ${secret('ghp_corpusDeadLetterGithub0123456789ab')} hook ${secret('xoxb-3000000001-corpusdeadletter')} >>>`,
  `user=kim&password=${secret('deadLetterFormPass-20')}&remember=1`,
];

/** Every form a secret may take in stored or printed text. */
function forms(value: string): string[] {
  return [
    ...new Set([
      value,
      encodeURIComponent(value),
      encodeURIComponent(value).replace(/%20/g, '+'),
      JSON.stringify(value).slice(1, -1),
      JSON.stringify(JSON.stringify(value).slice(1, -1)).slice(1, -1),
    ]),
  ];
}

function findSecrets(text: string): string[] {
  return secrets.filter((s) => forms(s).some((f) => text.includes(f)));
}

// ---------------------------------------------------------------------------------------------
// The processes

interface Proc {
  child: ChildProcess;
  output: () => string;
  tail: () => string;
}

const procs: Proc[] = [];
function startProcess(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, ['cli/gatewatch.ts', ...args], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let all = '';
  child.stdout!.on('data', (c: Buffer) => {
    all += c.toString('utf8');
  });
  child.stderr!.on('data', (c: Buffer) => {
    all += c.toString('utf8');
  });
  const p = { child, output: () => all, tail: captureTail(child) };
  procs.push(p);
  return p;
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<void> {
  const response = await fetch(url, { method: 'POST', body, headers });
  expect(response.status, `${url}: ${await response.clone().text()}`).toBeLessThan(300);
}

function sendSyslogTcp(port: number, messages: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      for (const m of messages) socket.write(`<134>1 2026-01-01T10:00:19Z edge nginx - - - ${m}\n`);
      socket.end();
    });
    socket.on('close', () => done());
    socket.on('error', fail);
  });
}

async function redisContents(client: Redis): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', '500');
    cursor = next;
    for (const key of keys) {
      out.push(key);
      const type = await client.type(key);
      if (type === 'string') out.push((await client.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await client.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await client.lrange(key, 0, -1)));
      else if (type === 'set') out.push(JSON.stringify(await client.smembers(key)));
      else if (type === 'zset') out.push(JSON.stringify(await client.zrange(key, '0', '-1')));
      else if (type === 'stream') out.push(JSON.stringify(await client.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

function filesUnder(dir: string): { names: string[]; text: string } {
  const names: string[] = [];
  const parts: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        names.push(name);
        parts.push(readFileSync(path).toString('latin1'));
      }
    }
  };
  walk(dir);
  return { names, text: parts.join('\n') };
}

// ---------------------------------------------------------------------------------------------

describe('the secrets corpus', () => {
  let redis: RedisServer;
  let client: Redis;
  const logs = mkdtempSync(join(tmpdir(), 'gw-corpus-'));

  beforeAll(async () => {
    redis = await startRedisServer({ extraArgs: ['--rdbcompression', 'no'] });
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => stopProcessGroup(p.child)));
    client?.disconnect();
    await redis?.dispose();
    await ctx.cleanup();
  });

  it('leaves no secret in Elasticsearch, Redis, its files or process output', async () => {
    const httpPort = await freePort();
    const syslogPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ELASTICSEARCH_URL: ctx.elasticsearchUrl,
      REDIS_URL: redis.url,
      GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: ctx.prefix,
      GATEWATCH_REDIS__PREFIX: ctx.prefix,
      GATEWATCH_INGEST__HTTP_PORT: String(httpPort),
      GATEWATCH_INGEST__SYSLOG_PORT: String(syslogPort),
      GATEWATCH_INGEST__SOURCES: JSON.stringify([
        { name: 'gateway', type: 'http', tokens: [TOKEN] },
        { name: 'syslog', type: 'syslog' },
        { name: 'files', type: 'file', paths: [join(logs, '*.log')] },
      ]),
    };
    // the corpus as Gatewatch reads it: each line parses, or is a dead letter, as intended
    const direct = createNormalizer(
      loadConfig({ env: {}, overrides: { ingest: { fingerprintSecret: 'x'.repeat(16) } } }),
    );
    const pushed = [
      kong,
      kongBasic,
      waf,
      apigw,
      envoyJson,
      traefik,
      cloudflare,
      cfFirewall,
      appGateway,
      frontDoor,
      modsecV3,
      modsecV2,
      coraza,
      nginxJson,
    ];
    const shipped = [
      nginxAccess,
      alb,
      envoyAccess,
      nginxIngress,
      kong.replace('c0rpus-kong-1', 'c0rpus-kong-3'),
    ];
    const syslogged = [nginxAccess.replace('203.0.113.33', '203.0.113.49')];
    const parseable = [...pushed, ...shipped, ...syslogged];
    for (const line of parseable) {
      const r = direct(line, { source: 'check', receivedAt: 0, records: [] });
      expect(r.ok && r.events.length === 1 && r.failures.length === 0, line.slice(0, 80)).toBe(true);
    }
    for (const line of malformed)
      expect(direct(line, { source: 'check', receivedAt: 0, records: [] }).ok).toBe(false);

    const sources = startProcess(['ingest', 'sources'], env);
    const worker = startProcess(['ingest', 'worker'], env);
    for (const [p, ready] of [
      [sources, 'ingest sources ready'],
      [worker, 'ingest worker ready'],
    ] as const) {
      const out = await eventually(
        async () => p.output(),
        (o) => o.includes(ready) || p.child.exitCode !== null,
        {
          timeoutMs: 90_000,
        },
      );
      expect(out, p.tail()).toContain(ready);
    }

    const base = `http://127.0.0.1:${httpPort}`;
    // NDJSON push, as `gatewatch replay --to` and scripts send it
    await post(`${base}/ingest/gateway`, `${[...pushed, malformed[0]!, malformed[1]!].join('\n')}\n`, {
      authorization: `Bearer ${TOKEN}`,
      'content-type': 'application/x-ndjson',
    });
    // an Elasticsearch _bulk from a Beats-like shipper: the line in `message` (JSON in JSON)
    const bulk = [...shipped, malformed[2]!]
      .flatMap((line) => [
        JSON.stringify({ create: { _index: 'filebeat' } }),
        JSON.stringify({ '@timestamp': '2026-01-01T10:00:20Z', message: line }),
      ])
      .join('\n');
    await post(`${base}/_bulk`, `${bulk}\n`, {
      authorization: `Basic ${Buffer.from(`elastic:${TOKEN}`).toString('base64')}`,
      'content-type': 'application/x-ndjson',
    });
    await sendSyslogTcp(syslogPort, [...syslogged, malformed[3]!]);
    writeFileSync(join(logs, 'cloudfront.log'), `${cloudfrontFile.join('\n')}\n`);

    const events = parseable.length + 1; // + the CloudFront line of the tailed file
    expect(
      await eventually(
        () => ctx.countEvents(),
        (n) => n >= events,
        { timeoutMs: 90_000 },
      ),
      `${sources.tail()}\n${worker.tail()}`,
    ).toBe(events);
    const names = indexNames(ctx.prefix);
    const deadLetters = async () => {
      await ctx.es.indices.refresh({ index: names.deadLetters, ignore_unavailable: true });
      return (await ctx.es.count({ index: names.deadLetters, ignore_unavailable: true })).count;
    };
    expect(await eventually(deadLetters, (n) => n >= malformed.length, { timeoutMs: 60_000 })).toBe(
      malformed.length,
    );
    const queue = `${ctx.prefix}:ingest-raw`;
    await eventually(
      async () => (await client.llen(`${queue}:wait`)) + (await client.llen(`${queue}:active`)),
      (n) => n === 0,
      { timeoutMs: 60_000 },
    );

    // Elasticsearch: every document under the prefix (events, dead letters, settings, …)
    await ctx.es.indices.refresh({ index: `${ctx.prefix}-*` });
    const docs = await ctx.es.search({ index: `${ctx.prefix}-*`, size: 1000, query: { match_all: {} } });
    expect(docs.hits.hits.length).toBeGreaterThanOrEqual(events + malformed.length);
    const stored = JSON.stringify(
      docs.hits.hits.map((h) => ({ index: h._index, id: h._id, source: h._source })),
    );
    expect(findSecrets(stored)).toEqual([]);
    // … and what the secrets were replaced by still serves the detections
    expect(stored).toContain('[REDACTED]');
    const withKeys = docs.hits.hits.filter(
      (h) =>
        (h._source as { gatewatch?: { api_key?: { fingerprint?: string } } }).gatewatch?.api_key?.fingerprint,
    );
    expect(withKeys.length).toBeGreaterThanOrEqual(8);
    expect(stored).toContain('"sub":"kong-user-1"');
    expect(stored).toContain('"name":"erin"');

    // Redis: every key and value, then the append-only file and a snapshot
    const contents = await redisContents(client);
    expect(findSecrets(contents)).toEqual([]);
    await client.call('SAVE');
    const files = filesUnder(redis.dir);
    expect(files.names).toContain('dump.rdb');
    expect(files.names.some((n) => n.endsWith('.aof'))).toBe(true);
    expect(files.text).toContain('[REDACTED:'); // the corpus did pass through these files
    expect(findSecrets(files.text)).toEqual([]);

    // what the processes printed: where the fingerprint secret is, never a secret nor the key
    const printed = `${sources.output()}\n${worker.output()}`;
    expect(printed).toContain(`fingerprint secret:`);
    expect(printed).toContain(`Elasticsearch index ${names.settings}`);
    expect(findSecrets(printed)).toEqual([]);
    const key = await ctx.es.get<{ secret: string }>({ index: names.settings, id: 'fingerprint-secret' });
    expect(printed).not.toContain(key._source!.secret);
  });
});
