/**
 * bench:ingest (b) — end-to-end ingest throughput into a real Elasticsearch, next to the
 * ceiling measured in the same run: the same documents bulk-indexed directly with the client.
 *
 *   npm run bench:ingest:e2e [-- --events 200000]
 *
 * Uses ELASTICSEARCH_URL / REDIS_URL when set, else starts both like the test harness.
 */
import { parseArgs } from 'node:util';
import { Client } from '@elastic/elasticsearch';
import { loadConfig } from '../core/config/load.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { createNormalizer } from '../ingest/pipeline/normalize.ts';
import { startIngest } from '../ingest/runtime.ts';
import { indexEvents } from '../ingest/sinks/elasticsearch.ts';
import { createScrubber } from '../ingest/transforms/scrub.ts';
import { startElasticsearch } from '../test/harness/elasticsearch.ts';
import { startRedisServer } from '../test/harness/redis.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '200000' }, workers: { type: 'string', default: '2' } },
});
const total = Number(values.events);

const line = (i: number) =>
  `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} - - [23/Nov/2026:${String(Math.floor(i / 3600) % 24).padStart(2, '0')}:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} +0000] "GET /api/v1/orders/${i}?page=${i % 7} HTTP/1.1" ${i % 13 === 0 ? 401 : 200} ${300 + (i % 4000)} "-" "Mozilla/5.0 (X11; Linux x86_64) bench/${i % 50}"`;

const stops: (() => Promise<void>)[] = [];
/** A server this bench started itself: its URL, and its stop registered for the end. */
function started(server: { url: string; dispose(): Promise<void> }): string {
  stops.push(() => server.dispose());
  return server.url;
}
const esUrl = process.env.ELASTICSEARCH_URL ?? started(await startElasticsearch({ heapMb: 1024 }));
const redisUrl = process.env.REDIS_URL ?? started(await startRedisServer());
// Interrupted (Ctrl-C): stop the servers this bench started instead of leaving them running.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void Promise.allSettled(stops.map((stop) => stop())).finally(() => process.exit(130));
  });
const es = new Client({ node: esUrl, requestTimeout: 120_000 });
const lines = Array.from({ length: total }, (_, i) => line(i));
// A prefix of its own per run: a killed earlier run against the same servers leaves queued jobs
// and indices behind, which would otherwise be measured (or counted as duplicates) again.
const run = `bench${Date.now().toString(36)}`;
const directPrefix = `${run}-direct`;
const e2ePrefix = `${run}-e2e`;

try {
  // Ceiling: the same documents, normalised beforehand, bulk-indexed directly in 500-document requests.
  const fingerprintSecret = 'bench-fingerprint-secret-0123456789';
  const direct = loadConfig({
    env: {},
    overrides: { elasticsearch: { url: esUrl, indexPrefix: directPrefix }, ingest: { fingerprintSecret } },
  });
  await installCoreTemplates(es, { prefix: directPrefix });
  const normalize = createNormalizer(direct);
  const docs: GatewatchEvent[] = [];
  for (const l of lines) {
    const r = normalize(l, { source: 'bench', receivedAt: Date.now(), records: [] });
    if (r.ok) docs.push(...r.events);
  }
  // Same parallelism as the pipeline below: workers × concurrency bulk requests in flight.
  const parallel = Number(values.workers) * 2;
  let t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next; i < docs.length; i = next) {
        next += 500;
        await indexEvents(es, docs.slice(i, i + 500), { prefix: directPrefix });
      }
    }),
  );
  const directSecs = (performance.now() - t) / 1000;

  // The receiver's share: scrubbing the lines before they are queued (inside enqueue below).
  const scrubber = createScrubber({ fingerprintSecret });
  const c0 = process.cpuUsage();
  let scrubbedBytes = 0;
  for (const l of lines) scrubbedBytes += scrubber(l).length;
  const scrubCpu = process.cpuUsage(c0);
  const scrubSecs = (scrubCpu.user + scrubCpu.system) / 1e6;

  // End to end: producer (scrubs) → Redis → workers (parse, normalise, enrich) → Elasticsearch.
  const config = loadConfig({
    env: {},
    overrides: {
      elasticsearch: { url: esUrl, indexPrefix: e2ePrefix },
      redis: { url: redisUrl, prefix: e2ePrefix },
      ingest: { batchSize: 500, highWaterMark: 1_000_000, workerConcurrency: 2, fingerprintSecret },
    },
  });
  const runtime = await startIngest(config, { workers: Number(values.workers) });
  t = performance.now();
  await runtime.producer.enqueue({ source: 'bench', receivedAt: Date.now() }, lines, `bench-${Date.now()}`);
  const names = indexNames(e2ePrefix);
  for (;;) {
    const depth = await runtime.producer.currentDepth();
    if (depth === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const e2eSecs = (performance.now() - t) / 1000;
  await es.indices.refresh({ index: `${names.eventsPattern}` });
  const indexed = (await es.count({ index: names.eventsAlias })).count;
  await runtime.close();

  const directRate = docs.length / directSecs;
  const e2eRate = total / e2eSecs;
  console.log(
    `bench:ingest (b) — ${total} events, Elasticsearch ${esUrl}, ${values.workers} worker(s) in one process`,
  );
  console.log(
    `  ceiling: direct bulk of pre-normalised docs (${parallel} in flight)   ${Math.round(directRate).toLocaleString()} events/s`,
  );
  console.log(
    `  end to end (Redis → workers → Elasticsearch)   ${Math.round(e2eRate).toLocaleString()} events/s  (${indexed} indexed)`,
  );
  console.log(
    `  end to end / ceiling                            ${((e2eRate / directRate) * 100).toFixed(1)} %  (target ≥ 80 %)`,
  );
  console.log(
    `  of which secret scrubbing before Redis          ${Math.round(total / scrubSecs).toLocaleString()} lines/s per CPU-second, ${(scrubSecs * 1000).toFixed(0)} ms CPU for the ${total} lines (${(scrubbedBytes / 1e6).toFixed(0)} MB, in the producer)`,
  );
  await es.indices.delete({ index: `${run}-*`, ignore_unavailable: true, allow_no_indices: true });
} finally {
  await es.close();
  for (const stop of stops) await stop();
}
