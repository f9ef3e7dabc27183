/**
 * REST API latency under load: incident listing over 100,000 stored incidents, measured
 * on loopback by a load generator in a second process, next to a ceiling (a bare Fastify
 * route returning a constant) measured the same way in the same run.
 *
 *   npm run bench:api            (ELASTICSEARCH_URL / REDIS_URL, else local servers are started)
 *   BENCH_INCIDENTS=100000 BENCH_RATE=500 BENCH_SECONDS=10 BENCH_WARMUP_SECONDS=45 BENCH_LIST_CONCURRENCY=2 node bench/api.ts
 *
 * Two measurements per target:
 * - open loop at a fixed arrival rate (BENCH_RATE req/s): latency is counted from each
 *   request's scheduled start, so a stall is not hidden (no coordinated omission);
 * - closed loop with BENCH_CONCURRENCY connections: the sustainable requests/s.
 * Each load run starts with one unmeasured second at the same load, so the generator's own JIT
 * warm-up and its connections' set-up are not reported as server latency.
 * Target: p99 < 25 ms at 500 req/s for listing.
 *
 * Next to latency, each row shows CPU per request: the API process (this process, where the
 * app runs), Elasticsearch (its node's process CPU) and the load generator (its child
 * process). On a small machine they share the cores, so their sum bounds the request rate.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
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
  /** Requests sent including the warm-up (CPU per request divides by this). */
  sent: number;
  errors: number;
  seconds: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** CPU ms the load generator itself used. */
  cpuMs: number;
}

/** CPU ms per request of each process, measured around one load run. */
interface CpuPerRequest {
  api: number;
  es: number;
  load: number;
}

// ---------------------------------------------------------------------------------------------
// Load generator (child process)

/**
 * A minimal HTTP/1.1 keep-alive client for the load generator: one request at a time per
 * connection, the response read to its Content-Length. The generator shares the machine with
 * the server, Elasticsearch and Redis, so it spends as little CPU as it can (Node's http.Agent
 * costs several times more per request). Up to `max` connections per origin; beyond that a
 * request waits for a free one (that wait counts in its latency).
 */
class RawHttpPool {
  private readonly idle: RawConnection[] = [];
  private readonly waiting: (() => void)[] = [];
  private open = 0;
  private readonly host: string;
  private readonly port: number;
  private readonly max: number;

  constructor(origin: URL, max: number) {
    this.host = origin.hostname;
    this.port = Number(origin.port);
    this.max = max;
  }

  /** The response status (0 when the connection failed or the reply was unreadable). */
  private takeIdle(): RawConnection | undefined {
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) {
      if (conn.reusable) return conn;
      conn.destroy();
      this.open--;
    }
    return undefined;
  }

  async get(path: string, headers: string): Promise<number> {
    let conn = this.takeIdle();
    if (!conn && this.open < this.max) {
      this.open++;
      conn = new RawConnection(this.host, this.port);
    }
    while (!conn) {
      await new Promise<void>((r) => this.waiting.push(r));
      conn = this.takeIdle();
      if (!conn && this.open < this.max) {
        this.open++;
        conn = new RawConnection(this.host, this.port);
      }
    }
    const status = await conn.request(`GET ${path} HTTP/1.1\r\nHost: ${this.host}\r\n${headers}\r\n`);
    if (conn.reusable) this.idle.push(conn);
    else {
      conn.destroy();
      this.open--;
    }
    this.waiting.shift()?.();
    return status;
  }

  close(): void {
    for (const c of this.idle) c.destroy();
  }
}

class RawConnection {
  reusable = true;
  private readonly socket: net.Socket;
  private head: Buffer[] = [];
  private remaining = -1;
  private status = 0;
  private done: ((status: number) => void) | undefined;

  constructor(host: string, port: number) {
    // Replies are read into one reused buffer: a Buffer per chunk would be external memory that
    // drives the generator into old-space collections, whose pauses it would report as latency.
    this.socket = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(256 * 1024),
        callback: (n: number, buf: Uint8Array) => {
          this.onData((buf as Buffer).subarray(0, n));
          return true;
        },
      },
    });
    const fail = () => {
      this.reusable = false;
      this.finish(0);
    };
    this.socket.on('error', fail);
    this.socket.on('close', fail);
  }

  request(bytes: string): Promise<number> {
    return new Promise((resolve) => {
      this.done = resolve;
      this.head = [];
      this.remaining = -1;
      this.socket.write(bytes);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private finish(status: number) {
    const done = this.done;
    this.done = undefined;
    done?.(status);
  }

  private onData(chunk: Buffer) {
    if (this.remaining < 0) {
      // The chunk's bytes are overwritten by the next read: a partial head is copied.
      const buffered = this.head.length === 0 ? chunk : Buffer.concat([...this.head, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) {
        this.head.push(Buffer.from(chunk));
        return;
      }
      this.head = [];
      const header = buffered.subarray(0, end).toString('latin1');
      this.status = Number(header.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(header);
      if (!length || /\r\nconnection:\s*close/i.test(header)) this.reusable = false;
      if (!length) return this.finish(0);
      this.remaining = Number(length[1]) - (buffered.length - end - 4);
    } else {
      this.remaining -= chunk.length;
    }
    if (this.remaining === 0) this.finish(this.status);
    else if (this.remaining < 0) {
      // More bytes than announced: not a reply this client can trust.
      this.reusable = false;
      this.finish(0);
    }
  }
}

/** Load before each measurement, not counted in latency. */
const WARMUP_MS = 1000;

async function generate(
  urls: string[],
  token: string,
  mode: 'open' | 'closed',
  rate: number,
  seconds: number,
  concurrency: number,
): Promise<LoadResult> {
  const pools = new Map<string, RawHttpPool>();
  const targets = urls.map((u) => {
    const url = new URL(u);
    const pool = pools.get(url.origin) ?? new RawHttpPool(url, Math.max(concurrency, 64));
    pools.set(url.origin, pool);
    return { pool, path: `${url.pathname}${url.search}` };
  });
  const headers = `Authorization: Bearer ${token}\r\n`;
  let errors = 0;
  let n = 0;
  const once = async (i: number) => {
    const target = targets[i % targets.length]!;
    return (await target.pool.get(target.path, headers)) === 200;
  };
  /** One phase of load; its latencies, or none when it is the warm-up. */
  const phase = async (ms: number, measured: boolean): Promise<number[]> => {
    const latencies: number[] = [];
    const record = (from: number, ok: boolean) => {
      if (!measured) return;
      latencies.push(performance.now() - from);
      if (!ok) errors++;
    };
    const begin = performance.now();
    const end = begin + ms;
    if (mode === 'open') {
      const interval = 1000 / rate;
      // No promise kept per request: the generator's own garbage collection pauses would be
      // measured as server latency.
      let outstanding = 0;
      let drained: (() => void) | undefined;
      for (let i = 0; ; i++) {
        const scheduled = begin + i * interval;
        if (scheduled >= end) break;
        const wait = scheduled - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        // A timer may fire a little early: latency then counts from the actual send.
        const from = Math.min(scheduled, performance.now());
        outstanding++;
        void once(n++).then((ok) => {
          record(from, ok);
          if (--outstanding === 0) drained?.();
        });
      }
      if (outstanding > 0) await new Promise<void>((r) => (drained = r));
    } else {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            const t0 = performance.now();
            record(t0, await once(n++));
          }
        }),
      );
    }
    return latencies;
  };
  const cpu0 = process.cpuUsage();
  // Unmeasured warm-up at the same load: this process's own JIT and the connections' set-up
  // are not the server's latency. Its requests count in CPU per request (see `sent`).
  await phase(WARMUP_MS, false);
  const start = performance.now();
  const latencies = await phase(seconds * 1000, true);
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  for (const pool of pools.values()) pool.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return {
    mode,
    requests: latencies.length,
    sent: n,
    errors,
    seconds: elapsed,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    cpuMs: (cpu.user + cpu.system) / 1000,
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
      // A young generation large enough that the generator's short-lived garbage never reaches
      // old-space collections, whose pauses it would report as latency.
      execArgv: [...process.execArgv, '--max-semi-space-size=64'],
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
  // Interrupted (Ctrl-C): stop the servers this bench started instead of leaving them running.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      void Promise.allSettled(stops.map((stop) => stop())).finally(() => process.exit(130));
    });
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

    const listConcurrency = Number(process.env.BENCH_LIST_CONCURRENCY ?? 2);
    const incidents = new ElasticsearchIncidentRepository(es, prefix, { listConcurrency });
    app = await buildApp({
      config,
      es,
      redis,
      ports: {
        incidents,
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

    const esCpuMs = async () => {
      const r = await es.nodes.stats({ node_id: '_local', metric: 'process' });
      return Object.values(r.nodes)[0]?.process?.cpu?.total_in_millis ?? Number.NaN;
    };
    const measured = async (run: () => Promise<LoadResult>): Promise<[LoadResult, CpuPerRequest]> => {
      const api0 = process.cpuUsage();
      const es0 = await esCpuMs();
      const r = await run();
      const api = process.cpuUsage(api0);
      const es1 = await esCpuMs();
      return [
        r,
        {
          api: (api.user + api.system) / 1000 / r.sent,
          es: (es1 - es0) / r.sent,
          load: r.cpuMs / r.sent,
        },
      ];
    };

    const listing = [
      `${apiUrl}/api/v1/incidents?limit=50`,
      `${apiUrl}/api/v1/incidents?limit=50&status=new&severity=high&severity=critical`,
      `${apiUrl}/api/v1/incidents?limit=50&sort=severity`,
      `${apiUrl}/api/v1/incidents?limit=50&entity=203.0.113.7`,
    ];
    // Warm up (key cache, both JITs, Elasticsearch caches): a node the bench has just started
    // spends its first minute compiling, which a running deployment has long done (with 15 s
    // instead of 45, Elasticsearch's CPU per listing was twice as high and p99 twice as long).
    const warmup = Number(process.env.BENCH_WARMUP_SECONDS ?? 45);
    const warmed = await runLoad(listing, token, 'closed', 0, warmup, concurrency);
    console.log(`warm-up: ${warmed.requests} listing requests in ${warmup} s`);

    const rows: [string, LoadResult, CpuPerRequest][] = [];
    const row = async (name: string, run: () => Promise<LoadResult>) => {
      rows.push([name, ...(await measured(run))]);
    };
    await row('ceiling: bare Fastify constant', () =>
      runLoad([`${ceilingUrl}/constant`], token, 'open', rate, seconds, 0),
    );
    await row('ceiling: bare Fastify constant', () =>
      runLoad([`${ceilingUrl}/constant`], token, 'closed', 0, seconds, concurrency),
    );
    await row('GET /api/v1/incidents (4 query mixes)', () =>
      runLoad(listing, token, 'open', rate, seconds, 0),
    );
    await row('GET /api/v1/incidents (4 query mixes)', () =>
      runLoad(listing, token, 'closed', 0, seconds, concurrency),
    );

    const f = (x: number) => x.toFixed(2).padStart(8);
    console.log(
      `\n${count} incidents, loopback, load generator in a second process; open loop at ${rate} req/s, closed loop with ${concurrency} connections, ${seconds} s each\n`,
    );
    console.log(
      `${'target'.padEnd(40)} ${'mode'.padEnd(14)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p90 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} errors   CPU ms/request: api + es + load = total`,
    );
    const c = (x: number) => x.toFixed(3);
    for (const [name, r, cpu] of rows) {
      const mode = r.mode === 'open' ? `open ${rate}/s` : `closed x${concurrency}`;
      console.log(
        `${name.padEnd(40)} ${mode.padEnd(14)} ${f(r.requests / r.seconds)} ${f(r.p50)} ${f(r.p90)} ${f(r.p99)} ${f(r.max)} ${String(r.errors).padEnd(8)} ${c(cpu.api)} + ${c(cpu.es)} + ${c(cpu.load)} = ${c(cpu.api + cpu.es + cpu.load)}`,
      );
    }
    const { asked, sent, requests } = incidents.searches.counts;
    console.log(
      `\nlisting searches: ${asked} asked, ${sent} sent to Elasticsearch (identical waiting searches share one answer) in ${requests} requests (concurrent ones leave together as one _msearch)`,
    );
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
