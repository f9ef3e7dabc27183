/**
 * A thin typed layer over BullMQ and ioredis. It encodes the rules BullMQ sets for Redis:
 * workers need `maxRetriesPerRequest: null` (a blocking command must never give up), and
 * Redis must run with `maxmemory-policy noeviction` or queued jobs can silently vanish.
 */
import { type Job, type Processor, Queue, type QueueOptions, Worker, type WorkerOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

export type { Job };

export type RedisRole = 'producer' | 'worker';

/**
 * A Redis connection for BullMQ. Producers fail fast when Redis is unreachable (so HTTP
 * sources can answer 503 instead of hanging); workers wait and retry forever.
 */
export function createRedis(url: string, role: RedisRole, extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5_000, ...extra };
  return new Redis(url, options);
}

/** Create a connection and wait until it is ready (producers reject commands before that). */
export async function connectRedis(url: string, role: RedisRole, timeoutMs = 10_000): Promise<Redis> {
  const redis = createRedis(url, role);
  if (redis.status === 'ready') return redis;
  let lastError: Error | undefined;
  const onError = (err: Error) => {
    lastError = err;
  };
  redis.on('error', onError);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      redis.disconnect();
      reject(
        new Error(
          `Redis at ${displayUrl(url)} not ready within ${timeoutMs} ms${lastError ? ` (${lastError.message})` : ''}`,
        ),
      );
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
  });
  return redis;
}

/** A Redis or Elasticsearch URL fit for a log line: any password replaced. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/**
 * Connect, waiting as long as it takes (or `timeoutMs`) for Redis to answer: a process that
 * starts before Redis (a reboot, a container started first) waits instead of exiting. Says
 * what it waits for on the first failure and every `reportEveryMs` after.
 */
export async function waitForRedis(
  url: string,
  role: RedisRole,
  options: { timeoutMs?: number; reportEveryMs?: number; log?: (line: string) => void } = {},
): Promise<Redis> {
  const deadline = Date.now() + (options.timeoutMs ?? Number.POSITIVE_INFINITY);
  const log = options.log ?? ((line: string) => console.error(line));
  let reported = Number.NEGATIVE_INFINITY;
  for (;;) {
    try {
      return await connectRedis(url, role, Math.max(1_000, Math.min(5_000, deadline - Date.now())));
    } catch (err) {
      if (Date.now() >= deadline)
        throw new Error(`Redis at ${displayUrl(url)} did not answer: ${(err as Error).message}`);
      if (Date.now() - reported >= (options.reportEveryMs ?? 30_000)) {
        log(
          `waiting for Redis at ${displayUrl(url)} (redis.url / REDIS_URL): ${(err as Error).message}; retrying`,
        );
        reported = Date.now();
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

export class RedisPolicyError extends Error {
  override name = 'RedisPolicyError';
}

/** Refuse to run on a Redis that may evict keys (BullMQ would lose jobs under memory pressure). */
export async function assertNoEviction(redis: Redis): Promise<void> {
  const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
  const policy = reply[1];
  if (policy !== 'noeviction') {
    throw new RedisPolicyError(
      `Redis maxmemory-policy is "${policy}"; Gatewatch needs "noeviction" so queued events are never evicted. ` +
        'Set it with `CONFIG SET maxmemory-policy noeviction` and in redis.conf.',
    );
  }
}

export async function redisServerVersion(redis: Redis): Promise<string> {
  const info = await redis.info('server');
  return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
}

export interface QueueContext {
  /** Connection for producers (fail fast). */
  producer: Redis;
  /** BullMQ key prefix, so several deployments or test files share one Redis safely. */
  prefix: string;
}

export function createQueue<T, R = unknown>(
  name: string,
  ctx: QueueContext,
  options: Partial<QueueOptions> = {},
): Queue<T, R> {
  return new Queue<T, R>(name, {
    connection: ctx.producer,
    prefix: ctx.prefix,
    ...options,
    defaultJobOptions: {
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000 },
      // Completed jobs are dropped at once (the data lives in Elasticsearch); failed ones stay
      // for inspection, bounded.
      removeOnComplete: true,
      removeOnFail: { count: 1_000, age: 7 * 86_400 },
      // Each failed attempt keeps its stack trace on the job: a job retried through a long
      // outage would otherwise keep one per attempt, in Redis's memory.
      stackTraceLimit: 3,
      ...options.defaultJobOptions,
    },
  });
}

export interface WorkerContext {
  /** URL for the worker's own blocking connection (`maxRetriesPerRequest: null`). */
  redisUrl: string;
  prefix: string;
}

export function createWorker<T, R = unknown>(
  name: string,
  processor: Processor<T, R>,
  ctx: WorkerContext,
  options: Partial<WorkerOptions> = {},
): Worker<T, R> {
  const connection = createRedis(ctx.redisUrl, 'worker');
  // A connection passed in is not closed by BullMQ: close it with the worker.
  connection.on('error', () => undefined);
  const worker = new Worker<T, R>(name, processor, {
    connection,
    prefix: ctx.prefix,
    concurrency: 1,
    // A job whose worker died is picked up again after the lock expires: at-least-once.
    lockDuration: 30_000,
    stalledInterval: 15_000,
    maxStalledCount: 5,
    ...options,
  });
  worker.on('closed', () => connection.disconnect());
  return worker;
}

/** Jobs waiting or running: what flow control compares with the high-water mark. */
export async function queueDepth(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
