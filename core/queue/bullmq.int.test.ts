import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationContext } from '../../test/harness/context.ts';
import { startRedisServer } from '../../test/harness/redis.ts';
import {
  assertNoEviction,
  connectRedis,
  createQueue,
  createWorker,
  queueDepth,
  RedisPolicyError,
} from './bullmq.ts';

const ctx = integrationContext('queue');

describe('BullMQ queue layer (real Redis)', () => {
  let producer: Redis;
  beforeAll(async () => {
    producer = await connectRedis(ctx.redisUrl, 'producer');
  });
  afterAll(async () => {
    producer.disconnect();
    await ctx.cleanup();
  });

  it('accepts the harness Redis (noeviction)', async () => {
    await expect(assertNoEviction(producer)).resolves.toBeUndefined();
  });

  it('produces a job that fails once, is retried, and is consumed', async () => {
    const queue = createQueue<{ batch: string[] }, number>('retry-test', { producer, prefix: ctx.prefix });
    const attempts: number[] = [];
    const consumed: string[][] = [];
    const worker = createWorker<{ batch: string[] }, number>(
      'retry-test',
      async (job) => {
        attempts.push(job.attemptsMade);
        if (job.attemptsMade === 0) throw new Error('transient failure on first attempt');
        consumed.push(job.data.batch);
        return job.data.batch.length;
      },
      { redisUrl: ctx.redisUrl, prefix: ctx.prefix },
    );
    const completed = new Promise<number>((resolve) =>
      worker.on('completed', (_job, result) => resolve(result)),
    );
    const failedOnce = new Promise<string>((resolve) =>
      worker.on('failed', (_job, err) => resolve(err.message)),
    );

    await queue.add(
      'batch',
      { batch: ['line-1', 'line-2'] },
      { attempts: 3, backoff: { type: 'fixed', delay: 100 } },
    );
    expect(await failedOnce).toBe('transient failure on first attempt');
    expect(await completed).toBe(2);
    expect(attempts).toEqual([0, 1]);
    expect(consumed).toEqual([['line-1', 'line-2']]);
    expect(await queueDepth(queue)).toBe(0);
    await worker.close();
    await queue.close();
  });

  it('refuses a Redis whose maxmemory-policy can evict jobs', async () => {
    const lru = await startRedisServer({ extraArgs: ['--maxmemory-policy', 'allkeys-lru'] });
    const conn = await connectRedis(lru.url, 'producer');
    try {
      await expect(assertNoEviction(conn)).rejects.toThrow(RedisPolicyError);
      await expect(assertNoEviction(conn)).rejects.toThrow(/"allkeys-lru".*noeviction/);
    } finally {
      conn.disconnect();
      await lru.dispose();
    }
  });
});
