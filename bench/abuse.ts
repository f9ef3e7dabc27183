/**
 * bench:abuse — what an outsider can make the processes spend, measured on the real processes
 * (`gatewatch ingest sources`, `gatewatch serve`) over loopback:
 *
 *   push-unauthenticated  receiver memory while 16 clients push 30 MB bodies with a wrong token
 *   push-bytes            Redis memory and answers while authenticated clients push large bodies
 *                         and no worker drains the queue
 *   preview               API memory during four concurrent rule previews over stored events
 *   responsiveness        the longest /health/live answer while the API parses the largest rule
 *                         it accepts (and a viewer's largest event filter)
 *
 *   npm run bench:abuse [-- --only push-bytes,preview]
 *
 * Figures are printed next to the same process at rest (its ceiling in this run). Every load
 * is bounded in count and time and stays on loopback. Uses ELASTICSEARCH_URL when set (else
 * starts one like the test harness); always starts its own Redis, so its memory is this run's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { ApiKeyStore } from '../api/auth/keys.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { startElasticsearch } from '../test/harness/elasticsearch.ts';
import { freePort } from '../test/harness/processes.ts';
import { startRedisServer } from '../test/harness/redis.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'push-requests': { type: 'string', default: '40' },
    'preview-events': { type: 'string', default: '200000' },
  },
});
const only = values.only ? new Set(values.only.split(',')) : undefined;
const wanted = (name: string) => !only || only.has(name);

const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;

const stops: (() => Promise<void>)[] = [];
const esUrl =
  process.env.ELASTICSEARCH_URL ??
  (await (async () => {
    const node = await startElasticsearch({ heapMb: 1024 });
    stops.push(() => node.dispose());
    return node.url;
  })());
const redisServer = await startRedisServer();
stops.push(() => redisServer.dispose());
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void Promise.allSettled(stops.map((stop) => stop())).finally(() => process.exit(130));
  });
const es = new Client({ node: esUrl, requestTimeout: 120_000 });
const run = `abuse${Date.now().toString(36)}`;
const TOKEN = 'tok-abuse-bench-0123456789abcdef';

/** Resident memory of a process now (bytes), from /proc. */
function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Sample a process's resident memory every 20 ms until stopped; the peak seen. */
function sampleRss(pid: number) {
  let peak = rss(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rss(pid));
    } catch {
      // exited
    }
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** Start a gatewatch command as its own process; resolves once it printed `ready`. */
async function startProcess(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['cli/gatewatch.ts', ...args], {
    env: { ...process.env, ...env, GATEWATCH_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stops.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${args.join(' ')} not ready in 120 s:\n${out}`)),
      120_000,
    );
    const take = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}):\n${out}`)));
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * POST a body of `bytes` in 1 MB chunks, as a shipper would; resolves with the status, or with
 * how the connection ended when the server closed it before reading everything.
 */
function push(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: (i: number) => Buffer,
  chunks: number,
): Promise<string> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { ...headers, 'content-length': String(chunks * MB) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      },
    );
    req.on('error', (err) => resolve(`closed (${(err as NodeJS.ErrnoException).code ?? err.message})`));
    let i = 0;
    const write = () => {
      while (i < chunks) {
        const ok = req.write(body(i++));
        if (!ok) return void req.once('drain', write);
      }
      req.end();
    };
    write();
  });
}

const tally = (answers: string[]) =>
  Object.entries(Object.groupBy(answers, (a) => a))
    .map(([k, v]) => `${v!.length}× ${k}`)
    .join(', ');

/** An nginx line padded to about 1 KB. */
const line = (i: number) =>
  `203.0.113.${i % 250} - - [23/Nov/2026:10:00:00 +0000] "GET /api/items/${i}?pad=${'x'.repeat(900)} HTTP/1.1" 200 10 "-" "abuse/1.0"\n`;
const chunkOfLines = (seed: number) => {
  const one = line(seed);
  const whole = one.repeat(Math.floor(MB / one.length));
  return Buffer.from(`${whole}${'z'.repeat(MB - whole.length - 1)}\n`);
};

async function receiver(prefix: string, extra: Record<string, string> = {}) {
  const port = await freePort();
  const child = await startProcess(
    ['ingest', 'sources'],
    {
      ELASTICSEARCH_URL: esUrl,
      REDIS_URL: redisServer.url,
      GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: prefix,
      GATEWATCH_REDIS__PREFIX: prefix,
      GATEWATCH_INGEST__HTTP_PORT: String(port),
      GATEWATCH_INGEST__SOURCES: JSON.stringify([{ name: 'edge', type: 'http', tokens: [TOKEN] }]),
      ...extra,
    },
    /ingest sources ready/,
  );
  return { child, port };
}

const results: string[] = [];

if (wanted('push-unauthenticated')) {
  const { child, port } = await receiver(`${run}-unauth`);
  await new Promise((r) => setTimeout(r, 1000));
  const atRest = rss(child.pid!);
  const sampler = sampleRss(child.pid!);
  const started = performance.now();
  const answers = await Promise.all(
    Array.from({ length: 16 }, (_, n) =>
      push(port, '/ingest/edge', { authorization: `Bearer wrong-token-${n}` }, () => chunkOfLines(n), 30),
    ),
  );
  const secs = (performance.now() - started) / 1000;
  const peak = sampler.stop();
  await stopProcess(child);
  results.push(
    `push-unauthenticated: 16 × 30 MB with a wrong token → ${tally(answers)} in ${secs.toFixed(1)} s; ` +
      `receiver RSS ${mb(atRest)} at rest, peak ${mb(peak)} (+${mb(peak - atRest)})`,
  );
}

if (wanted('push-bytes')) {
  const prefix = `${run}-bytes`;
  const { child, port } = await receiver(prefix);
  const redis = new Redis(redisServer.url);
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
  const before = await used();
  const atRest = rss(child.pid!);
  const sampler = sampleRss(child.pid!);
  let redisPeak = before;
  const redisTimer = setInterval(() => void used().then((u) => (redisPeak = Math.max(redisPeak, u))), 100);
  const requests = Number(values['push-requests']);
  const answers: string[] = [];
  // 28 lines of 1 MB per request: one queue job each (of a 2,000-job high-water mark), 4 at a time.
  const bigLine = (n: number, i: number) => {
    const head = `203.0.113.${n % 250} - - [23/Nov/2026:10:00:00 +0000] "GET /api/items/${n}-${i}?pad=`;
    const tail = ' HTTP/1.1" 200 1 "-" "x"\n';
    return Buffer.from(`${head}${'y'.repeat(MB - head.length - tail.length)}${tail}`);
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let n = next++; n < requests; n = next++) {
        answers.push(
          await push(port, '/ingest/edge', { authorization: `Bearer ${TOKEN}` }, (i) => bigLine(n, i), 28),
        );
      }
    }),
  );
  clearInterval(redisTimer);
  const after = await used();
  redisPeak = Math.max(redisPeak, after);
  const peak = sampler.stop();
  await stopProcess(child);
  const keys = await redis.keys(`${prefix}:*`);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  redis.disconnect();
  results.push(
    `push-bytes: ${requests} × 28 MB (one job each), no worker → ${tally(answers)}; ` +
      `Redis used_memory ${mb(before)} before, ${mb(redisPeak)} peak (+${mb(redisPeak - before)}); ` +
      `receiver RSS ${mb(atRest)} at rest, peak ${mb(peak)}`,
  );
}

async function api(prefix: string) {
  const port = await freePort();
  const env = {
    ELASTICSEARCH_URL: esUrl,
    REDIS_URL: redisServer.url,
    GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: prefix,
    GATEWATCH_REDIS__PREFIX: prefix,
    GATEWATCH_API__PORT: String(port),
    GATEWATCH_API__RATE_LIMIT_PER_MINUTE: '100000',
  };
  const child = await startProcess(['serve'], env, /listening on/);
  const keys = new ApiKeyStore(es, prefix);
  await keys.install();
  const analyst = (await keys.create('analyst', 'bench', 'bench')).token;
  const viewer = (await keys.create('viewer', 'bench', 'bench')).token;
  return { child, base: `http://127.0.0.1:${port}`, analyst, viewer };
}

if (wanted('preview')) {
  const prefix = `${run}-preview`;
  await installCoreTemplates(es, { prefix });
  const total = Number(values['preview-events']);
  const start = Date.parse('2026-11-23T10:00:00Z');
  const index = indexNames(prefix).eventsIndexFor(new Date(start).toISOString());
  for (let at = 0; at < total; at += 5000) {
    const operations = Array.from({ length: Math.min(5000, total - at) }, (_, k) => {
      const i = at + k;
      return [
        { create: { _index: index, _id: `ev-${i}` } },
        {
          '@timestamp': new Date(start + (i % 3_600_000)).toISOString(),
          event: { id: `ev-${i}`, kind: 'event', dataset: 'nginx.access' },
          source: { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
          url: { path: `/api/items/${i}` },
          http: { request: { method: 'GET' }, response: { status_code: 200 } },
        },
      ];
    }).flat();
    await es.bulk({ operations });
  }
  await es.indices.refresh({ index });
  const { child, base, analyst } = await api(prefix);
  const rule = `rule every-client {
  title "Every client"
  severity low
  where http.response.status_code == 200
  threshold {
    group by source.ip, url.path
    window 1h
    metric requests = count()
    having requests >= 1
  }
  incident {
    entities ip: source.ip
  }
}
`;
  const preview = () =>
    fetch(`${base}/api/v1/rules/preview`, {
      method: 'POST',
      headers: { authorization: `Bearer ${analyst}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: rule, from: '2026-11-23T09:00:00Z', to: '2026-11-23T12:00:00Z' }),
      signal: AbortSignal.timeout(300_000),
    }).then(
      async (r) => {
        await r.arrayBuffer();
        return String(r.status);
      },
      (err: Error) => `failed (${err.name})`,
    );
  await new Promise((r) => setTimeout(r, 1000));
  const atRest = rss(child.pid!);
  const sampler = sampleRss(child.pid!);
  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: 4 }, preview));
  const secs = (performance.now() - started) / 1000;
  const peak = sampler.stop();
  await stopProcess(child);
  await es.indices.delete({ index: `${prefix}*`, ignore_unavailable: true, allow_no_indices: true });
  results.push(
    `preview: 4 concurrent previews over ${total} events (one group each) → ${tally(answers)} in ${secs.toFixed(1)} s; ` +
      `API RSS ${mb(atRest)} at rest, peak ${mb(peak)} (+${mb(peak - atRest)})`,
  );
}

if (wanted('responsiveness')) {
  const prefix = `${run}-resp`;
  await installCoreTemplates(es, { prefix });
  const { child, base, analyst, viewer } = await api(prefix);
  /** Longest /health/live answer while `work` runs (probes back to back, each timed). */
  const worstLiveness = async (work: () => Promise<string>) => {
    let done = false;
    let worst = 0;
    let probes = 0;
    const probing = (async () => {
      while (!done) {
        const t = performance.now();
        await fetch(`${base}/health/live`).then((r) => r.arrayBuffer());
        worst = Math.max(worst, performance.now() - t);
        probes++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const t = performance.now();
    const answer = await work();
    const secs = (performance.now() - t) / 1000;
    done = true;
    await probing;
    return { worst, probes, answer, secs };
  };
  const idle = await worstLiveness(async () => {
    await new Promise((r) => setTimeout(r, 1000));
    return 'idle';
  });
  // The largest rule text the API accepts (262,144 characters), made of unknown names (each
  // looked up for a "did you mean"): names of 4,000 characters (refused at once since names
  // are capped) and of 200 (under the cap: the largest rule that is checked in full).
  const ruleOf = (nameLength: number) => {
    const ident = (n: number) => `f${n}_${'a'.repeat(nameLength)}`;
    let where = ident(0);
    for (let n = 1; where.length < 261_000; n++) where += ` == 1 or ${ident(n)}`;
    return `rule big {\n  title "t"\n  severity low\n  where ${where} == 1\n}\n`.slice(0, 262_144);
  };
  const validateRule = (text: string) =>
    worstLiveness(() =>
      fetch(`${base}/api/v1/rules/validate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${analyst}`, 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
        signal: AbortSignal.timeout(600_000),
      }).then((r) =>
        r.arrayBuffer().then((b) => `${r.status}, ${(b.byteLength / 1024 / 1024).toFixed(1)} MB`),
      ),
    );
  const bigRule = ruleOf(4000);
  const validate = await validateRule(bigRule);
  const validate200 = await validateRule(ruleOf(200));
  const filter = `${'x'.repeat(16_000)}.ip == "1.2.3.4"`.slice(0, 16_384);
  const search = await worstLiveness(() =>
    fetch(`${base}/api/v1/events/search`, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ filter, from: '2026-11-23T00:00:00Z', to: '2026-11-24T00:00:00Z' }),
      signal: AbortSignal.timeout(600_000),
    }).then((r) => r.arrayBuffer().then(() => String(r.status))),
  );
  await stopProcess(child);
  results.push(
    `responsiveness: /health/live worst ${idle.worst.toFixed(0)} ms at rest; ` +
      `while validating a ${bigRule.length}-character rule of 4,000-character names (answer ${validate.answer} in ${validate.secs.toFixed(1)} s): worst ${validate.worst.toFixed(0)} ms over ${validate.probes} probes; ` +
      `of 200-character names (answer ${validate200.answer} in ${validate200.secs.toFixed(1)} s): worst ${validate200.worst.toFixed(0)} ms over ${validate200.probes} probes; ` +
      `while searching with a ${filter.length}-character filter (answer ${search.answer} in ${search.secs.toFixed(1)} s): worst ${search.worst.toFixed(0)} ms`,
  );
}

for (const r of results) console.log(r);
await es.close();
for (const stop of stops.reverse()) await stop().catch(() => undefined);
process.exit(0);
