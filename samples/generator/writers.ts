/**
 * Writers from the generator's request model to real log formats:
 * - Kong Gateway file-log / http-log JSON (the authenticated API, api.shop.example),
 * - AWS ALB access logs with AWS WAF integration (the storefront, www.shop.example),
 * - AWS WAF v2 web ACL logs (the ACL in front of Kong, logging filter: BLOCK/COUNT only).
 */
import { Rng } from './prng.ts';
import type { Req } from './types.ts';

const ACCOUNT = '123456789012';
const ALB = 'app/shop-www-prod/50dc6c495c0c9188';
const TG = `arn:aws:elasticloadbalancing:us-east-1:${ACCOUNT}:targetgroup/www-storefront/73e2d6bc24d8a067`;
const CERT = `arn:aws:acm:us-east-1:${ACCOUNT}:certificate/4b2c8f1e-9d4a-4e7b-a0c3-2f6d8e1b5a97`;
const ACL = `arn:aws:wafv2:us-east-1:${ACCOUNT}:regional/webacl/api-prod/a1b2c3d4-5678-90ab-cdef-0123456789ab`;

/** Kong routes and upstream services by path prefix. */
const KONG_ROUTES: [RegExp, string, string][] = [
  [/^\/api\/v1\/(login|logout|password)/, 'auth', 'identity-svc'],
  [/^\/oauth\//, 'oauth', 'identity-svc'],
  [/^\/api\/v1\/(users|me)/, 'users', 'accounts-svc'],
  [/^\/api\/v1\/orders/, 'orders', 'orders-svc'],
  [/^\/api\/v1\/(products|inventory)/, 'catalog', 'catalog-svc'],
  [/^\/api\/v1\/(cart|checkout)/, 'checkout', 'checkout-svc'],
  [/^\/api\/v1\/reports/, 'reports', 'reporting-svc'],
];

function uuidFrom(rng: Rng): string {
  const h = rng.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The id of the Kong credential (key-auth) of a generated key, as Kong logs it. */
export function kongCredentialId(keyId: string): string {
  return stableUuid(`cred:${keyId}`);
}

const stableIds = new Map<string, string>();
function stableUuid(name: string): string {
  let id = stableIds.get(name);
  if (id === undefined) {
    id = uuidFrom(new Rng(`uuid:${name}`));
    stableIds.set(name, id);
  }
  return id;
}

function queryObject(q: string | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  if (!q) return o;
  for (const part of q.split('&')) {
    const eq = part.indexOf('=');
    o[eq < 0 ? part : part.slice(0, eq)] = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
  }
  return o;
}

export function kongLine(r: Req, rng: Rng): string {
  const uri = r.query ? `${r.path}?${r.query}` : r.path;
  const [, routeName, serviceName] = KONG_ROUTES.find(([re]) => re.test(r.path)) ?? [
    null,
    'default',
    'monolith',
  ];
  const headers: Record<string, string> = {
    host: r.host,
    'user-agent': r.ua,
    accept: 'application/json',
  };
  if (r.method === 'POST' || r.method === 'PUT')
    headers['content-type'] = r.contentType ?? 'application/json';
  if (r.basic)
    headers.authorization = `Basic ${Buffer.from(`${r.basic.user}:${r.basic.password}`).toString('base64')}`;
  if (r.apiKey?.in === 'header') headers['x-api-key'] = r.apiKey.raw;
  if (r.session) headers.cookie = `sid=${r.session}; lang=en`;
  const reqId = rng.hex(32);
  const kongMs = rng.int(0, 3);
  const fromKong = r.status === 401 && r.apiKey !== undefined && r.consumer === undefined;
  const rec: Record<string, unknown> = {
    request: {
      method: r.method,
      uri,
      url: `https://${r.host}:443${uri}`,
      size: r.bytesIn,
      querystring: queryObject(r.query),
      headers,
      tls: { version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' },
    },
    upstream_uri: fromKong ? '' : uri.replace(/^\/api\/v1/, ''),
    response: {
      status: r.status,
      size: r.bytesOut,
      headers: { 'content-type': 'application/json', 'x-kong-request-id': reqId },
    },
    route: { id: stableUuid(`route:${routeName}`), name: routeName },
    service: {
      id: stableUuid(`service:${serviceName}`),
      name: serviceName,
      host: `${serviceName}.internal`,
      port: 8080,
      protocol: 'http',
    },
    latencies: {
      kong: kongMs,
      proxy: fromKong ? -1 : Math.max(1, r.latencyMs - kongMs),
      request: r.latencyMs,
    },
    client_ip: r.ip,
    started_at: r.t,
    workspace: stableUuid('workspace:default'),
    workspace_name: 'default',
    source: fromKong ? 'kong' : 'upstream',
  };
  if (r.consumer) {
    rec.consumer = {
      id: r.consumer.id,
      username: r.consumer.username,
      ...(r.consumer.customId ? { custom_id: r.consumer.customId } : {}),
    };
    if (r.apiKey) rec.authenticated_entity = { id: kongCredentialId(r.apiKey.id) };
  }
  return JSON.stringify(rec);
}

function isoMicros(t: number, rng: Rng): string {
  return new Date(t).toISOString().replace('Z', `${String(rng.int(0, 999)).padStart(3, '0')}Z`);
}

export function albLine(r: Req, rng: Rng): string {
  const blocked = r.albWaf === 'block';
  const port = rng.int(1024, 65535);
  const target = `10.0.${rng.int(1, 3)}.${rng.int(10, 250)}:8080`;
  const uri = r.query ? `${r.path}?${r.query}` : r.path;
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const reqTime = blocked ? '-1' : secs(rng.int(0, 2));
  const tgtTime = blocked ? '-1' : secs(r.latencyMs);
  const respTime = blocked ? '-1' : '0.000';
  const created = new Date(r.t - (blocked ? 0 : r.latencyMs)).toISOString().replace('Z', '000Z');
  const trace = `Root=1-${Math.floor(r.t / 1000).toString(16)}-${rng.hex(24)}`;
  const actions = blocked ? 'waf' : r.albWaf === 'allow' ? 'waf,forward' : 'forward';
  const q = (s: string) => `"${s.replace(/"/g, '%22')}"`;
  return [
    'h2',
    isoMicros(r.t, rng),
    ALB,
    `${r.ip}:${port}`,
    blocked ? '-' : target,
    reqTime,
    tgtTime,
    respTime,
    String(r.status),
    blocked ? '-' : String(r.status),
    String(r.bytesIn),
    String(r.bytesOut),
    q(`${r.method} https://${r.host}:443${uri} HTTP/2.0`),
    q(r.ua),
    'TLS_AES_128_GCM_SHA256',
    'TLSv1.3',
    TG,
    q(trace),
    q(r.host),
    q(CERT),
    blocked ? '0' : '1',
    created,
    q(actions),
    q('-'),
    q('-'),
    q(blocked ? '-' : target),
    q(blocked ? '-' : String(r.status)),
    q('-'),
    q('-'),
    `TID_${rng.hex(32)}`,
  ].join(' ');
}

export function wafLine(r: Req, rng: Rng): string {
  const w = r.waf!;
  const headers = [
    { name: 'host', value: r.host },
    { name: 'user-agent', value: r.ua },
    { name: 'accept', value: 'application/json' },
  ];
  if (r.method === 'POST') headers.push({ name: 'content-type', value: 'application/json' });
  if (r.basic) {
    headers.push({
      name: 'authorization',
      value: `Basic ${Buffer.from(`${r.basic.user}:${r.basic.password}`).toString('base64')}`,
    });
  }
  if (r.apiKey?.in === 'header') headers.push({ name: 'x-api-key', value: r.apiKey.raw });
  const managed = w.ruleType === 'MANAGED_RULE_GROUP';
  const rec: Record<string, unknown> = {
    timestamp: r.t,
    formatVersion: 1,
    webaclId: ACL,
    terminatingRuleId: w.ruleId,
    terminatingRuleType: w.ruleType,
    action: w.action,
    terminatingRuleMatchDetails: w.conditionType
      ? [{ conditionType: w.conditionType, location: r.query ? 'QUERY_STRING' : 'BODY', matchedData: null }]
      : [],
    httpSourceName: 'ALB',
    httpSourceId: `${ACCOUNT}-app/api-prod/8e1c2b9a7f3d4e60`,
    ruleGroupList: managed
      ? [
          {
            ruleGroupId: `AWS#${w.ruleId}`,
            terminatingRule: {
              ruleId: w.labels[0]?.split(':').at(-1) ?? w.ruleId,
              action: w.action,
              ruleMatchDetails: null,
            },
            nonTerminatingMatchingRules: [],
            excludedRules: null,
            customerConfig: null,
          },
        ]
      : [],
    rateBasedRuleList:
      w.ruleType === 'RATE_BASED'
        ? [
            {
              rateBasedRuleId: stableUuid(`rbr:${w.ruleId}`),
              rateBasedRuleName: w.ruleId,
              limitKey: 'CUSTOMKEYS',
              maxRateAllowed: 100,
              evaluationWindowSec: '300',
              customValues: [{ key: 'JA3_FINGERPRINT', name: 'ja3', value: r.ja3 ?? '' }],
            },
          ]
        : [],
    nonTerminatingMatchingRules: [],
    requestHeadersInserted: null,
    responseCodeSent: r.status > 0 ? r.status : null,
    httpRequest: {
      clientIp: r.ip,
      country: w.country,
      headers,
      uri: r.path,
      args: r.query ?? '',
      httpVersion: 'HTTP/2.0',
      httpMethod: r.method,
      requestId: `1-${Math.floor(r.t / 1000).toString(16)}-${rng.hex(24)}`,
      fragment: '',
      scheme: 'https',
      host: r.host,
    },
    labels: w.labels.map((name) => ({ name })),
    requestBodySize: r.bytesIn,
    requestBodySizeInspectedByWAF: r.bytesIn,
    ja3Fingerprint: r.ja3 ?? '',
  };
  if (!r.ja3) delete rec.ja3Fingerprint;
  return JSON.stringify(rec);
}

export function render(r: Req, rng: Rng): string {
  switch (r.fmt) {
    case 'kong.http_log':
      return kongLine(r, rng);
    case 'aws.alb':
      return albLine(r, rng);
    case 'aws.waf':
      return wafLine(r, rng);
  }
}
