/**
 * Shared by the pull-source integration tests: realistic log lines that each become exactly
 * one event with its own url.path (so duplicates show as a path counted twice), a `gatewatch
 * ingest sources` child process to kill and restart, and the checks every source's test makes
 * (events by id, dead letters).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Client } from '@elastic/elasticsearch';
import { indexNames } from '../../../core/store/elasticsearch.ts';
import { eventually } from '../../../test/harness/eventually.ts';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** A time for line i of a run (one line per second from a fixed start). */
function at(i: number, base = Date.UTC(2026, 10, 23, 10, 0, 0)): Date {
  return new Date(base + i * 1000);
}

/** An AWS ALB access log line for /v1/<tag>/items/<i>. */
export function albLine(tag: string, i: number): string {
  const t = at(i).toISOString().replace('Z', '000Z');
  const ip = `203.0.${(i >> 8) & 255}.${i & 255}`;
  return `https ${t} app/api-alb/50dc6c495c0c9188 ${ip}:46532 10.0.1.5:8080 0.001 0.045 0.000 200 200 312 ${1000 + (i % 900)} "GET https://api.example.com:443/v1/${tag}/items/${i} HTTP/1.1" "pull-test/1.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-tg/73e2d6bc24d8a067 "Root=1-65a3f2e0-${pad(i, 24)}" "api.example.com" "-" 1 ${t} "forward" "-" "-" "10.0.1.5:8080" "200" "-" "-" TID_${pad(i, 16)}`;
}

/** An API Gateway JSON access log line (as CloudWatch Logs holds them) for /<tag>/pets/<i>. */
export function apiGatewayLine(tag: string, i: number): string {
  const d = at(i);
  const time = `${pad(d.getUTCDate())}/Nov/2026:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
  return JSON.stringify({
    requestId: `${tag}-${pad(i, 8)}-7b61-11e6-9a41-93e8deadbeef`,
    ip: `198.51.${(i >> 8) & 255}.${i & 255}`,
    caller: '-',
    user: '-',
    requestTime: time,
    httpMethod: 'GET',
    resourcePath: `/${tag}/pets/${i}`,
    status: '200',
    protocol: 'HTTP/1.1',
    responseLength: String(100 + (i % 50)),
  });
}

/** An Azure Front Door access log record (one line of PT1H.json) for /<tag>/orders/<i>. */
export function frontDoorLine(tag: string, i: number): string {
  return JSON.stringify({
    time: at(i).toISOString(),
    resourceId:
      '/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-EDGE/PROVIDERS/MICROSOFT.CDN/PROFILES/AFD-API',
    category: 'FrontDoorAccessLog',
    operationName: 'Microsoft.Cdn/Profiles/AccessLog/Write',
    properties: {
      trackingReference: `${tag}-${pad(i, 10)}`,
      httpMethod: 'GET',
      httpVersion: '1.1',
      requestUri: `https://api.example.com:443/${tag}/orders/${i}`,
      requestBytes: '312',
      responseBytes: String(1000 + (i % 500)),
      userAgent: 'pull-test/1.0',
      clientIp: `192.0.2.${i & 255}`,
      clientPort: '50123',
      socketIp: `192.0.2.${i & 255}`,
      timeTaken: '0.045',
      requestProtocol: 'HTTPS',
      httpStatusCode: '200',
      pop: 'AMS',
      cacheStatus: 'MISS',
    },
  });
}

/** A Kong http-log JSON record for /<tag>/carts/<i>. */
export function kongLine(tag: string, i: number): string {
  return JSON.stringify({
    request: {
      id: `${tag}-${pad(i, 12)}`,
      uri: `/${tag}/carts/${i}`,
      url: `https://api.example.com:8443/${tag}/carts/${i}`,
      querystring: {},
      method: 'GET',
      headers: { host: 'api.example.com', 'user-agent': 'pull-test/1.0' },
      size: 310,
    },
    upstream_uri: `/${tag}/carts/${i}`,
    response: { status: 200, headers: {}, size: 900 + (i % 100) },
    latencies: { kong: 1, proxy: 20, request: 21 },
    client_ip: `198.18.${(i >> 8) & 255}.${i & 255}`,
    started_at: at(i).getTime(),
    service: { name: 'carts' },
    route: { name: 'carts', paths: [`/${tag}/carts`] },
  });
}

/** Events in the context's indices whose url.path starts with /…/<tag>/ (or all), and the most any one path has. */
export async function eventCounts(
  es: Client,
  prefix: string,
  tag?: string,
): Promise<{ events: number; maxPerPath: number }> {
  const where = { ignore_unavailable: true, allow_no_indices: true };
  await es.indices.refresh({ index: `${prefix}-*`, ...where });
  const query = tag ? { wildcard: { 'url.path': `*/${tag}/*` } } : { match_all: {} };
  const r = await es.search({
    index: indexNames(prefix).eventsAlias,
    size: 0,
    track_total_hits: true,
    query,
    aggs: { paths: { terms: { field: 'url.path', size: 1, order: { _count: 'desc' } } } },
    ...where,
  });
  const total = typeof r.hits.total === 'number' ? r.hits.total : (r.hits.total?.value ?? 0);
  const buckets = (r.aggregations?.paths as { buckets?: { doc_count: number }[] } | undefined)?.buckets ?? [];
  return { events: total, maxPerPath: buckets[0]?.doc_count ?? 0 };
}

export async function waitForEvents(
  es: Client,
  prefix: string,
  tag: string,
  expected: number,
  timeoutMs = 90_000,
): Promise<{ events: number; maxPerPath: number }> {
  return eventually(
    () => eventCounts(es, prefix, tag),
    (c) => c.events >= expected,
    { timeoutMs, intervalMs: 250 },
  );
}

export interface DeadLetterSeen {
  reason: string;
  raw: string;
  stage: string;
}

export async function deadLetters(es: Client, prefix: string, source: string): Promise<DeadLetterSeen[]> {
  const where = { ignore_unavailable: true, allow_no_indices: true };
  await es.indices.refresh({ index: `${prefix}-*`, ...where });
  const r = await es.search<DeadLetterSeen>({
    index: indexNames(prefix).deadLetters,
    size: 100,
    query: { term: { source } },
    ...where,
  });
  return r.hits.hits.map((h) => h._source!);
}

/** `gatewatch ingest sources` with a configuration file, ready once it says so. */
export async function startSourcesProcess(
  configFile: string,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; output(): string }> {
  const child = spawn(process.execPath, ['cli/gatewatch.ts', '--config', configFile, 'ingest', 'sources'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const seen = await eventually(
    async () => out,
    (o) => o.includes('ingest sources ready') || child.exitCode !== null,
    { timeoutMs: 60_000 },
  );
  if (!seen.includes('ingest sources ready')) throw new Error(`ingest sources did not start:\n${seen}`);
  return { child, output: () => out };
}

export async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

/** `gatewatch replay <inputs> --json` into a fresh embedded store; its summary. */
export async function replayJson(
  inputs: string[],
  args: string[],
  env: Record<string, string> = {},
): Promise<{ records: number; events: number; deadLetters: number }> {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const db = join(mkdtempSync(join(tmpdir(), 'gw-replay-')), 'replay.sqlite');
  const child = spawn(
    process.execPath,
    ['cli/gatewatch.ts', 'replay', ...inputs, '--json', '--fresh', '--db', db, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`replay exited ${code}: ${err}`);
  return JSON.parse(out) as { records: number; events: number; deadLetters: number };
}
