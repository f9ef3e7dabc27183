/**
 * REST API latency under load: incident listing over 100,000 stored incidents, measured
 * on loopback by a load generator in a second process, next to a ceiling (a bare Fastify
 * route returning a constant) measured the same way in the same run.
 *
 *   npm run bench:api            (ELASTICSEARCH_URL / REDIS_URL, else local servers are started)
 *   BENCH_INCIDENTS=100000 BENCH_RATE=500 BENCH_SECONDS=10 node bench/api.ts
 *
 * Two measurements per target:
 * - open loop at a fixed arrival rate (BENCH_RATE req/s): latency is counted from each
 *   request's scheduled start, so a stall is not hidden (no coordinated omission);
 * - closed loop with BENCH_CONCURRENCY connections: the sustainable requests/s.
 * Target: p99 < 25 ms at 500 req/s for listing.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { buildApp, installApiIndices } from '../api/app.ts';
import { makeIncident } from '../api/testing/fixtures.ts';
import { InMemoryIngestAdmin } from '../api/testing/ports.ts';
import { loadConfig } from '../core/config/load.ts';
import { bulkWrite, createEsClient, indexNames } from '../core/store/elasticsearch.ts';
import { ElasticsearchEventSearchPort, EngineDetectionPort } from '../detections/api-adapters.ts';
import { ElasticsearchIncidentRepository, installIncidentIndex } from '../detections/incidents/repository.ts';

interface LoadResult {
  mode: 'open' | 'closed';
  requests: number;
  errors: number;
  seconds: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

// ---------------------------------------------------------------------------------------------
// Load generator (child process)

async function generate(
  urls: string[],
  token: string,
  mode: 'open' | 'closed',
  rate: number,
  seconds: number,
  concurrency: number,
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(concurrency, 64) });
  const latencies: number[] = [];
  let errors = 0;
  let n = 0;
  const once = (url: string) =>
    new Promise<boolean>((resolve) => {
      const req = http.get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
    });
  const start = performance.now();
  const end = start + seconds * 1000;
  if (mode === 'open') {
    const interval = 1000 / rate;
    const inflight: Promise<void>[] = [];
    for (let i = 0; ; i++) {
      const scheduled = start + i * interval;
      if (scheduled >= end) break;
      const wait = scheduled - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const url = urls[n++ % urls.length]!;
      inflight.push(
        once(url).then((ok) => {
          latencies.push(performance.now() - scheduled);
          if (!ok) errors++;
        }),
      );
    }
    await Promise.all(inflight);
  } else {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          const ok = await once(urls[n++ % urls.length]!);
          latencies.push(performance.now() - t0);
          if (!ok) errors++;
        }
      }),
    );
  }
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return {
    mode,
    requests: latencies.length,
    errors,
    seconds: elapsed,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
  };
}

if (process.argv[2] === '--load') {
  process.on(
    'message',
    async (m: {
      urls: string[];
      token: string;
      mode: 'open' | 'closed';
      rate: number;
      seconds: number;
      concurrency: number;
    }) => {
      const result = await generate(m.urls, m.token, m.mode, m.rate, m.seconds, m.concurrency);
      process.send!(result, () => process.exit(0));
    },
  );
} else {
  await main();
}

function runLoad(
  urls: string[],
  token: string,
  mode: 'open' | 'closed',
  rate: number,
  seconds: number,
  concurrency: number,
) {
  return new Promise<LoadResult>((resolve, reject) => {
    const child = fork(new URL(import.meta.url).pathname, ['--load'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolve(m as LoadResult));
    child.once('error', reject);
    child.send({ urls, token, mode, rate, seconds, concurrency });
  });
}

// ---------------------------------------------------------------------------------------------
// Orchestration

async function main() {
  const count = Number(process.env.BENCH_INCIDENTS ?? 100_000);
  const rate = Number(process.env.BENCH_RATE ?? 500);
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
  const stops: (() => Promise<void>)[] = [];
  let esUrl = process.env.ELASTICSEARCH_URL;
  let redisUrl = process.env.REDIS_URL;
  if (!esUrl || !redisUrl) {
    const { startElasticsearch } = await import('../test/harness/elasticsearch.ts');
    const { startRedisServer } = await import('../test/harness/redis.ts');
    if (!esUrl) {
      const es = await startElasticsearch();
      stops.push(() => es.dispose());
      esUrl = es.url;
    }
    if (!redisUrl) {
      const r = await startRedisServer();
      stops.push(() => r.dispose());
      redisUrl = r.url;
    }
  }
  const prefix = `gw-bench-${randomBytes(3).toString('hex')}`;
  const config = loadConfig({
    env: {},
    overrides: {
      elasticsearch: { url: esUrl, indexPrefix: prefix },
      redis: { url: redisUrl, prefix, requireNoEviction: false },
      api: { host: '127.0.0.1', port: 0, rateLimitPerMinute: 10_000_000 },
    },
  });
  const es = createEsClient(config.elasticsearch);
  const redis = new Redis(redisUrl);
  const ceiling = Fastify({ logger: false });
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  try {
    await installIncidentIndex(es, prefix);
    const index = indexNames(prefix).incidents;
    const loadStart = performance.now();
    for (let i = 0; i < count; i += 5000) {
      const batch = Array.from({ length: Math.min(5000, count - i) }, (_, k) => makeIncident(i + k));
      const r = await bulkWrite(
        es,
        batch.map((doc) => ({ op: 'index' as const, index, id: doc.id, doc })),
      );
      if (r.rejected || r.retryable) throw new Error('bulk load failed');
    }
    await es.indices.refresh({ index });
    await es.indices.forcemerge({ index, max_num_segments: 1 });
    const stored = (await es.count({ index })).count;
    console.log(`stored ${stored} incidents in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`);

    app = await buildApp({
      config,
      es,
      redis,
      ports: {
        incidents: new ElasticsearchIncidentRepository(es, prefix),
        detection: new EngineDetectionPort({ es, prefix }),
        events: new ElasticsearchEventSearchPort(es, prefix),
        ingest: new InMemoryIngestAdmin(),
      },
    });
    await installApiIndices(app);
    const { token } = await app.gatewatch.keys.create('viewer', 'bench', 'bench');
    const apiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    ceiling.get('/constant', async () => ({ ok: true }));
    const ceilingUrl = await ceiling.listen({ host: '127.0.0.1', port: 0 });

    const listing = [
      `${apiUrl}/api/v1/incidents?limit=50`,
      `${apiUrl}/api/v1/incidents?limit=50&status=new&severity=high&severity=critical`,
      `${apiUrl}/api/v1/incidents?limit=50&sort=severity`,
      `${apiUrl}/api/v1/incidents?limit=50&entity=203.0.113.7`,
    ];
    // Warm up caches (key, JIT, Elasticsearch query caches).
    await runLoad(listing, token, 'closed', 0, 3, 4);

    const rows: [string, LoadResult][] = [];
    rows.push([
      'ceiling: bare Fastify constant',
      await runLoad([`${ceilingUrl}/constant`], token, 'open', rate, seconds, 0),
    ]);
    rows.push([
      'ceiling: bare Fastify constant',
      await runLoad([`${ceilingUrl}/constant`], token, 'closed', 0, seconds, concurrency),
    ]);
    rows.push([
      'GET /api/v1/incidents (4 query mixes)',
      await runLoad(listing, token, 'open', rate, seconds, 0),
    ]);
    rows.push([
      'GET /api/v1/incidents (4 query mixes)',
      await runLoad(listing, token, 'closed', 0, seconds, concurrency),
    ]);

    const f = (x: number) => x.toFixed(2).padStart(8);
    console.log(
      `\n${count} incidents, loopback, load generator in a second process; open loop at ${rate} req/s, closed loop with ${concurrency} connections, ${seconds} s each\n`,
    );
    console.log(
      `${'target'.padEnd(40)} ${'mode'.padEnd(14)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p90 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} errors`,
    );
    for (const [name, r] of rows) {
      const mode = r.mode === 'open' ? `open ${rate}/s` : `closed x${concurrency}`;
      console.log(
        `${name.padEnd(40)} ${mode.padEnd(14)} ${f(r.requests / r.seconds)} ${f(r.p50)} ${f(r.p90)} ${f(r.p99)} ${f(r.max)} ${r.errors}`,
      );
    }
    const target = rows[2]![1];
    console.log(
      `\nlisting p99 at ${rate} req/s: ${target.p99.toFixed(2)} ms (target < 25 ms): ${target.p99 < 25 && target.errors === 0 ? 'PASS' : 'FAIL'}`,
    );
    if (!(target.p99 < 25 && target.errors === 0)) process.exitCode = 1;
  } finally {
    await app?.close();
    await ceiling.close();
    await es.indices
      .delete({ index: `${prefix}*`, ignore_unavailable: true, allow_no_indices: true })
      .catch(() => undefined);
    await es.indices.deleteIndexTemplate({ name: `${prefix}*` }).catch(() => undefined);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await es.close();
    for (const s of stops) await s().catch(() => undefined);
  }
}
