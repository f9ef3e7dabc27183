/**
 * Nothing lost, nothing doubled: a worker process killed with SIGKILL mid-stream, and
 * Elasticsearch stopped and restarted mid-stream. Counted by document id at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Client } from '@elastic/elasticsearch';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { connectRedis } from '../../core/queue/bullmq.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { startElasticsearch } from '../../test/harness/elasticsearch.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { startIngest } from '../runtime.ts';
import { createScrubber } from '../transforms/scrub.ts';
import { IngestProducer } from './producer.ts';

const ctx = integrationContext('crash');

/** Distinct, realistic lines: each maps to one deterministic event id. */
const line = (i: number) =>
  `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} - - [23/Nov/2026:12:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} +0000] "GET /api/items/${i} HTTP/1.1" 200 ${i % 5000} "-" "crash-test/1.0"`;

function startWorkerProcess(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['cli/gatewatch.ts', 'ingest', 'worker'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d) => process.stderr.write(`[worker ${child.pid}] ${d}`));
  return child;
}

async function countEvents(es: Client, prefix: string): Promise<number> {
  await es.indices.refresh({ index: `${prefix}-events-*`, ignore_unavailable: true, allow_no_indices: true });
  const r = await es.count({
    index: indexNames(prefix).eventsAlias,
    ignore_unavailable: true,
    allow_no_indices: true,
  });
  return r.count;
}

describe('crash safety of the ingest pipeline', () => {
  afterAll(() => ctx.cleanup());

  it('a worker killed with SIGKILL mid-batch and restarted loses and duplicates nothing', async () => {
    const total = 12_000;
    const env = {
      REDIS_URL: ctx.redisUrl,
      ELASTICSEARCH_URL: ctx.elasticsearchUrl,
      GATEWATCH_REDIS__PREFIX: ctx.prefix,
      GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: ctx.prefix,
      GATEWATCH_INGEST__JOB_LOCK: '4s',
      GATEWATCH_INGEST__WORKER_CONCURRENCY: '2',
    };
    const redis = await connectRedis(ctx.redisUrl, 'producer');
    const producer = new IngestProducer({
      producer: redis,
      queuePrefix: ctx.prefix,
      highWaterMark: 10_000,
      batchSize: 250,
      // these lines hold no secret: a scrubber without the deployment's key leaves them as they are
      scrub: createScrubber(),
    });
    try {
      await producer.enqueue(
        { source: 'crash', receivedAt: Date.now() },
        Array.from({ length: total }, (_, i) => line(i)),
        'crash-input',
      );
      const first = startWorkerProcess(env);
      // Kill it once it has indexed part of the input, while batches are in flight.
      const partial = await eventually(
        () => countEvents(ctx.es, ctx.prefix),
        (n) => n >= 1_000,
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      expect(partial).toBeGreaterThanOrEqual(1_000);
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      const atKill = await countEvents(ctx.es, ctx.prefix);
      expect(atKill).toBeLessThan(total);

      const second = startWorkerProcess(env);
      try {
        const final = await eventually(
          async () => ({
            count: await countEvents(ctx.es, ctx.prefix),
            depth: await producer.currentDepth(),
          }),
          (s) => s.count >= total && s.depth === 0,
          { timeoutMs: 120_000, intervalMs: 250 },
        );
        expect(final).toEqual({ count: total, depth: 0 });
        // Every line has its own path: the most frequent path must occur exactly once.
        const top = await ctx.es.search({
          index: indexNames(ctx.prefix).eventsAlias,
          size: 0,
          aggs: { paths: { terms: { field: 'url.path', size: 1, order: { _count: 'desc' } } } },
        });
        const buckets = (top.aggregations!.paths as { buckets: { doc_count: number }[] }).buckets;
        expect(buckets[0]!.doc_count).toBe(1);
      } finally {
        second.kill('SIGTERM');
        await new Promise((r) => second.once('exit', r));
      }
    } finally {
      await producer.close();
      redis.disconnect();
    }
  });

  it('Elasticsearch stopped and restarted mid-stream loses nothing', async () => {
    const node = await startElasticsearch({ heapMb: 384 });
    const es = new Client({ node: node.url });
    const prefix = `${ctx.prefix}-esr`;
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: node.url, indexPrefix: prefix, requestTimeout: '5s' },
        redis: { url: ctx.redisUrl, prefix },
        ingest: { batchSize: 200 },
      },
    });
    const runtime = await startIngest(config, { workers: 1 });
    try {
      const total = 6_000;
      const half = Array.from({ length: total / 2 }, (_, i) => line(100_000 + i));
      const rest = Array.from({ length: total / 2 }, (_, i) => line(100_000 + total / 2 + i));
      await runtime.producer.enqueue({ source: 'esr', receivedAt: Date.now() }, half, 'esr-1');
      await eventually(
        () => countEvents(es, prefix),
        (n) => n >= 1_000,
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      await node.stop();
      // While Elasticsearch is down, sources keep accepting: the queue absorbs the backlog.
      await runtime.producer.enqueue({ source: 'esr', receivedAt: Date.now() }, rest, 'esr-2');
      await new Promise((r) => setTimeout(r, 3_000));
      await node.restart();
      const final = await eventually(
        () => countEvents(es, prefix),
        (n) => n >= total,
        { timeoutMs: 150_000, intervalMs: 500 },
      );
      expect(final).toBe(total);
    } finally {
      await runtime.close();
      await es.close();
      await node.dispose();
    }
  });
});
