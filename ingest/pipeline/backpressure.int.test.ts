/**
 * Flow control: when the queue holds more batches than the high-water mark (Elasticsearch slow
 * or down, no worker keeping up), HTTP sources answer 429 with Retry-After and file sources stop
 * reading; once workers drain the queue, both resume.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { startRedisServer } from '../../test/harness/redis.ts';
import { startIngest } from '../runtime.ts';
import { FileSource } from '../sources/file.ts';
import { createNormalizer } from './normalize.ts';
import { startIngestWorker } from './worker.ts';

const ctx = integrationContext('backpressure');
const TOKEN = 'tok-backpressure-0123456789';

describe('back-pressure', () => {
  afterAll(() => ctx.cleanup());

  it('pushes back above the high-water mark and resumes once drained', async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
        ingest: {
          httpPort: 0,
          highWaterMark: 2,
          batchSize: 10,
          sources: [{ name: 'edge', type: 'http', tokens: [TOKEN] }],
        },
      },
    });
    // No workers yet: the queue only grows.
    const runtime = await startIngest(config, { http: true });
    const port = (runtime.http!.server.address() as { port: number }).port;
    const post = (i: number) =>
      fetch(`http://127.0.0.1:${port}/ingest/edge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: `192.0.2.1 - - [23/Nov/2026:10:00:00 +0000] "GET /bp/${i} HTTP/1.1" 200 1 "-" "bp"`,
      });
    try {
      expect((await post(1)).status).toBe(202);
      expect((await post(2)).status).toBe(202);
      // Depth is re-measured at most every 250 ms.
      await new Promise((r) => setTimeout(r, 300));
      const refused = await post(3);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

      const dir = mkdtempSync(join(tmpdir(), 'gw-bp-'));
      writeFileSync(join(dir, 'a.log'), 'line\n'.repeat(50));
      const file = new FileSource({
        source: { name: 'bpfile', type: 'file', tokens: [], paths: [join(dir, '*.log')] },
        producer: runtime.producer,
        redis: runtime.redis,
        offsetsKey: `${ctx.prefix}:offsets:bp`,
      });
      expect(await file.pollOnce()).toBe(0); // paused: nothing read while over the mark

      const worker = startIngestWorker({
        es: runtime.es,
        prefix: ctx.prefix,
        // the runtime's configuration: its fingerprint secret is resolved (the deployment's own)
        normalize: createNormalizer(runtime.config),
        redisUrl: ctx.redisUrl,
        queuePrefix: ctx.prefix,
      });
      try {
        await eventually(
          () => runtime.producer.currentDepth(),
          (d) => d === 0,
          { timeoutMs: 30_000 },
        );
        await new Promise((r) => setTimeout(r, 300));
        expect((await post(4)).status).toBe(202);
        expect(await file.pollOnce()).toBe(50);
      } finally {
        await worker.close();
      }
    } finally {
      await runtime.close();
    }
  });
  it('pushes back on the bytes queued, not only on the number of batches', async () => {
    const prefix = `${ctx.prefix}-bytes`;
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: prefix },
        redis: { url: ctx.redisUrl, prefix },
        ingest: {
          httpPort: 0,
          maxQueuedBytes: 1024 * 1024,
          sources: [{ name: 'edge', type: 'http', tokens: [TOKEN] }],
        },
      },
    });
    // No workers: nothing leaves the queue.
    const runtime = await startIngest(config, { http: true });
    const port = (runtime.http!.server.address() as { port: number }).port;
    const post = (i: number) =>
      fetch(`http://127.0.0.1:${port}/ingest/edge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: `192.0.2.1 - - [23/Nov/2026:10:00:00 +0000] "GET /bytes/${i}?pad=${'p'.repeat(600_000)} HTTP/1.1" 200 1 "-" "bp"`,
      });
    try {
      expect((await post(1)).status).toBe(202);
      expect((await post(2)).status).toBe(202);
      // Two batches, far below the 2,000-batch mark, but 1.2 MB of records: the limit is 1 MiB.
      await new Promise((r) => setTimeout(r, 300));
      const refused = await post(3);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as { error: string }).error).toMatch(
        /of records not yet stored \(limit 1 MiB\)/,
      );
      expect(await runtime.producer.currentDepth(true)).toBe(2);
    } finally {
      await runtime.close();
    }
  });

  it('pushes back on Redis memory before Redis refuses writes, and keeps failed batches bounded', async () => {
    const redis = await startRedisServer({ extraArgs: ['--maxmemory', '48mb'] });
    const prefix = `${ctx.prefix}-mem`;
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: prefix },
        redis: { url: redis.url, prefix },
        ingest: {
          httpPort: 0,
          maxQueuedBytes: 1024 ** 3,
          sources: [{ name: 'edge', type: 'http', tokens: [TOKEN] }],
        },
      },
    });
    const runtime = await startIngest(config, { http: true });
    const port = (runtime.http!.server.address() as { port: number }).port;
    const answers: number[] = [];
    try {
      for (let i = 0; i < 30 && !answers.includes(429); i++) {
        const r = await fetch(`http://127.0.0.1:${port}/ingest/edge`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}` },
          body: `192.0.2.2 - - [23/Nov/2026:10:00:00 +0000] "GET /mem/${i}?pad=${'m'.repeat(3_000_000)} HTTP/1.1" 200 1 "-" "bp"`,
        });
        answers.push(r.status);
        if (r.status === 429)
          expect(((await r.json()) as { error: string }).error).toMatch(/^Redis uses \d+ MiB/);
        await new Promise((r) => setTimeout(r, 300));
      }
      // Pushed back (429) before Redis itself ran out of memory (which would answer 503).
      expect(answers).toContain(429);
      expect(answers).not.toContain(503);
      const job = (await runtime.producer.queue.getJobs(['waiting']))[0]!;
      expect(job.opts.stackTraceLimit).toBe(3);
      expect(job.opts.removeOnFail).toEqual({ count: 100 });
    } finally {
      await runtime.close();
      await redis.dispose();
    }
  });
});
