/**
 * npm run soak — Gatewatch running for a while, as it runs for months: generated gateway traffic
 * at a steady rate through the distributed mode (the real processes: `ingest sources` with its
 * HTTP endpoint, an `ingest worker`, a `detect worker` with every built-in rule, the API), with
 * retention shortened to minutes so the lifecycle deletes as much as ingest writes. Every minute
 * it prints the memory of every process (Gatewatch's, Elasticsearch's JVM, Redis), Redis's own
 * memory, the number of indices and the disk they use; at the end whether each stayed flat
 * after the warm-up (exit status 1 if one kept growing).
 *
 *   npm run soak                       # one hour, 200 events/s, events kept 10 minutes
 *   npm run soak -- --minutes 20 --retention 5m --rate 300
 *
 * Loopback only and bounded: traffic stops after --minutes, then everything it started stops.
 * Elasticsearch and Redis are started for the run (like the test harness), so the disk and
 * memory figures are the soak's own; --use-env takes ELASTICSEARCH_URL / REDIS_URL instead.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { durationMs } from '../core/config/load.ts';
import { type ElasticsearchNode, startElasticsearch } from '../test/harness/elasticsearch.ts';
import { freePort } from '../test/harness/processes.ts';
import { startRedisServer } from '../test/harness/redis.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    rate: { type: 'string', default: '200' },
    retention: { type: 'string', default: '10m' },
    'sample-every': { type: 'string', default: '60' },
    'use-env': { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const retention = values.retention!;
const sampleEveryMs = Number(values['sample-every']) * 1000;
if (!(minutes > 0 && minutes <= 24 * 60) || !(rate > 0 && rate <= 5000) || !/^[0-9]+[smh]$/.test(retention)) {
  console.error('soak: --minutes 1..1440, --rate 1..5000 (events/s), --retention like 5m or 1h');
  process.exit(2);
}
// Steady state needs the retention to have passed once, plus a rollover and a lifecycle pass.
const warmupMs = Math.min((minutes * 60_000) / 2, durationMs(retention) + 5 * 60_000);

const stops: (() => Promise<void>)[] = [];
const children: { name: string; child: ChildProcess }[] = [];
let stopping = false;
async function stopAll(): Promise<void> {
  stopping = true;
  for (const { child } of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));

let esNode: ElasticsearchNode | undefined;
let esUrl = values['use-env'] ? process.env.ELASTICSEARCH_URL : undefined;
let redisUrl = values['use-env'] ? process.env.REDIS_URL : undefined;
if (!esUrl) {
  esNode = await startElasticsearch({ heapMb: 768 });
  stops.push(() => esNode!.dispose());
  esUrl = esNode.url;
}
if (!redisUrl) {
  const redis = await startRedisServer();
  stops.push(() => redis.dispose());
  redisUrl = redis.url;
}
const es = new Client({ node: esUrl, requestTimeout: 60_000 });
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
const prefix = `soak${Date.now().toString(36)}`;
const token = `soak-token-${prefix}-0123456789`;
const [httpPort, apiPort] = [await freePort(), await freePort()];
const env: Record<string, string> = {
  PATH: process.env.PATH ?? '',
  ELASTICSEARCH_URL: esUrl,
  REDIS_URL: redisUrl,
  GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: prefix,
  GATEWATCH_REDIS__PREFIX: prefix,
  GATEWATCH_INGEST__HTTP_HOST: '127.0.0.1',
  GATEWATCH_INGEST__HTTP_PORT: String(httpPort),
  GATEWATCH_INGEST__SOURCES: JSON.stringify([{ name: 'soak', type: 'http', tokens: [token] }]),
  GATEWATCH_API__HOST: '127.0.0.1',
  GATEWATCH_API__PORT: String(apiPort),
  GATEWATCH_RETENTION__EVENTS: retention,
  GATEWATCH_RETENTION__DEAD_LETTERS: retention,
  GATEWATCH_RETENTION__RULE_RUNS: retention,
  GATEWATCH_RETENTION__INCIDENTS: retention,
  GATEWATCH_RETENTION__INVENTORY: retention,
  GATEWATCH_RETENTION__AUDIT: retention,
  GATEWATCH_LIFECYCLE__INTERVAL: '1m',
  GATEWATCH_LIFECYCLE__ROLLOVER_AGE: '2m',
  GATEWATCH_LIFECYCLE__SEAL_AFTER: '1m',
};

function startProcess(name: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['cli/gatewatch.ts', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const keep = (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l.trim()) tail.push(l);
    tail.splice(0, Math.max(0, tail.length - 20));
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.once('exit', (code, signal) => {
    if (!stopping) {
      console.error(`soak: ${name} exited (${code ?? signal}) during the run:\n${tail.join('\n')}`);
      void stopAll().finally(() => process.exit(1));
    }
  });
  children.push({ name, child });
  return child;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`soak: ${what} not ready within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const keyRun = spawnSync(
  process.execPath,
  ['cli/gatewatch.ts', 'keys', 'create', '--role', 'viewer', '--name', 'soak', '--json'],
  {
    env,
    encoding: 'utf8',
  },
);
const apiToken = (JSON.parse(keyRun.stdout.trim().split('\n').at(-1) ?? '{}') as { token?: string }).token;
if (!apiToken) throw new Error(`soak: could not create an API key: ${keyRun.stderr}`);
startProcess('ingest sources', ['ingest', 'sources']);
startProcess('ingest worker', ['ingest', 'worker']);
startProcess('detect worker', ['detect', 'worker']);
startProcess('api', ['serve']);
await waitFor('the HTTP endpoint', async () => (await fetch(`http://127.0.0.1:${httpPort}/health`)).ok);
await waitFor('the API', async () => (await fetch(`http://127.0.0.1:${apiPort}/health/live`)).ok);

// Traffic: nginx access lines of a shop API, timestamped now, from 2,000 clients; a 401 burst
// from one client every few minutes (detections, incidents); one unreadable line in 2,000
// (dead letters).
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function clf(at: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(at.getUTCDate())}/${MONTHS[at.getUTCMonth()]}/${at.getUTCFullYear()}:${p(at.getUTCHours())}:${p(at.getUTCMinutes())}:${p(at.getUTCSeconds())} +0000`;
}
let n = 0;
function line(at: Date): string {
  n++;
  if (n % 2000 === 0) return `\u0001 garbage ${n}`;
  const minute = Math.floor(at.getTime() / 60_000);
  const burst = minute % 4 === 0 && n % 10 === 0;
  const ip = burst ? `203.0.113.${minute % 250}` : `10.${(n >> 8) & 15}.${n & 255}.${(n * 7) % 250}`;
  const path = burst
    ? '/api/v1/login'
    : ['/api/v1/orders/', '/api/v1/products/', '/api/v1/cart/'][n % 3] + String(n % 5000);
  const status = burst ? 401 : n % 50 === 0 ? 404 : 200;
  return `${ip} - - [${clf(at)}] "${burst ? 'POST' : 'GET'} ${path} HTTP/1.1" ${status} ${200 + (n % 3000)} "-" "soak-client/${n % 40}"`;
}

let sent = 0;
let refused = 0;
let failed = 0;
const started = Date.now();
const endAt = started + minutes * 60_000;
const traffic = (async () => {
  const tickMs = 250;
  for (let tick = 0; Date.now() < endAt && !stopping; tick++) {
    const due = started + tick * tickMs;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const now = new Date();
    const body = Array.from({ length: Math.round((rate * tickMs) / 1000) }, () => line(now)).join('\n');
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/ingest/soak`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body,
      });
      await res.arrayBuffer();
      if (res.status === 202) sent += body.split('\n').length;
      else if (res.status === 429) refused++;
      else failed++;
    } catch {
      failed++;
    }
  }
})();

// Samples.
interface Sample {
  minute: number;
  rss: Record<string, number>;
  redisUsed: number;
  indices: number;
  eventIndices: number;
  storeBytes: number;
  dataDirBytes: number | null;
  events: number;
  queue: number;
  warnings: number;
}
const samples: Sample[] = [];
const mib = (b: number) => (b / 1024 / 1024).toFixed(0);

function rssOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function duBytes(path: string): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    try {
      if (entry.isDirectory()) total += duBytes(p);
      else total += statSync(p).blocks * 512;
    } catch {
      // a segment merged away meanwhile
    }
  }
  return total;
}

const esPid = Object.values(
  (
    (await es.nodes.info({ node_id: '_local', metric: ['process'] })) as {
      nodes: Record<string, { process?: { id?: number } }>;
    }
  ).nodes,
)[0]?.process?.id;
const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);

async function sample(): Promise<Sample> {
  const rss: Record<string, number> = {};
  for (const { name, child } of children) rss[name] = rssOf(child.pid);
  rss.elasticsearch = rssOf(esPid);
  rss.redis = rssOf(redisPid);
  const cat = await es.cat.indices({
    index: `${prefix}-*`,
    format: 'json',
    bytes: 'b',
    h: ['index', 'store.size', 'docs.count'],
  });
  const rows = cat as { index: string; 'store.size': string; 'docs.count': string }[];
  const status = await fetch(`http://127.0.0.1:${apiPort}/api/v1/status`, {
    headers: { authorization: `Bearer ${apiToken}` },
  })
    .then((r) => r.json() as Promise<{ queues: { ingest: { waiting: number } | null }; warnings: unknown[] }>)
    .catch(() => undefined);
  return {
    minute: Math.round((Date.now() - started) / 6_000) / 10,
    rss,
    redisUsed: Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0),
    indices: rows.length,
    eventIndices: rows.filter((r) => r.index.startsWith(`${prefix}-events-`)).length,
    storeBytes: rows.reduce((s, r) => s + Number(r['store.size'] ?? 0), 0),
    dataDirBytes: esNode ? duBytes(esNode.dataPath) : null,
    events: rows
      .filter((r) => r.index.startsWith(`${prefix}-events-`))
      .reduce((s, r) => s + Number(r['docs.count'] ?? 0), 0),
    queue: status?.queues.ingest?.waiting ?? -1,
    warnings: status?.warnings.length ?? -1,
  };
}

const names = () => [...children.map((c) => c.name), 'elasticsearch', 'redis'];
console.log(
  `soak: ${minutes} min at ${rate} events/s, retention ${retention}, lifecycle every 1m (rollover 2m), warm-up ${Math.round(warmupMs / 60_000)} min; prefix ${prefix}${esNode ? `, Elasticsearch data ${esNode.dataPath}` : ''}`,
);
console.log(
  [
    'min',
    ...names().map((n) => `${n} MiB`),
    'redis used MiB',
    'indices',
    'events idx',
    'events',
    'store MiB',
    'data dir MiB',
    'queued',
    'warnings',
  ].join(' | '),
);
const print = (s: Sample) =>
  console.log(
    [
      s.minute.toFixed(1).padStart(5),
      ...names().map((n) => mib(s.rss[n] ?? 0)),
      mib(s.redisUsed),
      s.indices,
      s.eventIndices,
      s.events,
      mib(s.storeBytes),
      s.dataDirBytes === null ? '—' : mib(s.dataDirBytes),
      s.queue,
      s.warnings,
    ].join(' | '),
  );
while (Date.now() < endAt) {
  await new Promise((r) => setTimeout(r, Math.min(sampleEveryMs, Math.max(0, endAt - Date.now()))));
  const s = await sample();
  samples.push(s);
  print(s);
}
await traffic;

// Flat after warm-up: the last third of the samples after it against the first third.
const steady = samples.filter((s) => s.minute * 60_000 >= warmupMs);
const third = Math.max(1, Math.floor(steady.length / 3));
const early = steady.slice(0, third);
const late = steady.slice(-third);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const verdicts: string[] = [];
let flat = steady.length >= 3;
const check = (
  what: string,
  pick: (s: Sample) => number,
  allowRatio: number,
  allowAbs: number,
  unit = 'MiB',
) => {
  const a = median(early.map(pick));
  const b = median(late.map(pick));
  const ok = b <= a * (1 + allowRatio) + allowAbs;
  if (!ok) flat = false;
  const show = (v: number) => (unit === 'MiB' ? `${mib(v)} MiB` : String(v));
  verdicts.push(`${ok ? 'flat   ' : 'GROWING'}  ${what}: ${show(a)} → ${show(b)}`);
};
for (const name of names()) check(`${name} memory`, (s) => s.rss[name] ?? 0, 0.2, 32 * 1024 * 1024);
check('Redis used memory', (s) => s.redisUsed, 0.2, 8 * 1024 * 1024);
check('indices', (s) => s.indices, 0, 3, '');
check('store size', (s) => s.storeBytes, 0.3, 16 * 1024 * 1024);
if (esNode) check('Elasticsearch data directory', (s) => s.dataDirBytes ?? 0, 0.3, 32 * 1024 * 1024);
console.log(
  `\nsoak: ${sent} events sent in ${minutes} min (${(sent / minutes / 60).toFixed(0)}/s), ${refused} requests pushed back (429), ${failed} failed`,
);
console.log(
  `after the warm-up (${steady.length} samples, median of the first third against the last third):`,
);
for (const v of verdicts) console.log(`  ${v}`);
if (steady.length < 3) console.log('  too short to judge: run longer than twice the warm-up');
redis.disconnect();
await es.close();
await stopAll();
process.exit(flat ? 0 : 1);
