/**
 * The producing side of the ingest queue, shared by every source. It enqueues bounded batches
 * and tells sources when to push back: HTTP sources answer 429 with Retry-After, file and TCP
 * sources pause reading. Push-back comes from any of four limits, because job counts alone do
 * not bound memory (40 jobs of 28 MB put 1.1 GB into Redis):
 *
 *   - the number of queued batches (highWaterMark);
 *   - the bytes of records queued and not yet stored (maxQueuedBytes): added here on enqueue,
 *     taken off by workers when a batch is done, reset whenever the queue is seen empty;
 *   - Redis's own memory (maxRedisMemory; by default 80 % of Redis's maxmemory when it has one);
 *   - the store: Elasticsearch's disk past its high watermark, or indices it made read-only
 *     (storePressure, from operations/store-health.ts).
 *
 * Every record is scrubbed of secrets before it reaches Redis (and so its append-only file):
 * only surrogates carrying keyed fingerprints are queued (ingest/transforms/scrub.ts).
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createQueue, queueDepth } from '../../core/queue/bullmq.ts';
import type { Scrubber } from '../transforms/scrub.ts';
import { batchJobId, chunk, queuedBytesKey, RAW_QUEUE, type RawBatch } from './batch.ts';

export class BackpressureError extends Error {
  override name = 'BackpressureError';
  readonly depth: number;
  readonly highWaterMark: number;
  constructor(depth: number, highWaterMark: number) {
    super(`ingest queue holds ${depth} batches (high-water mark ${highWaterMark}); retry later`);
    this.depth = depth;
    this.highWaterMark = highWaterMark;
  }
}

export interface ProducerOptions {
  producer: Redis;
  queuePrefix: string;
  highWaterMark: number;
  batchSize: number;
  /**
   * Secret scrubbing applied to every record before it is queued: createScrubber with the
   * deployment's fingerprint secret (the workers' key), so workers derive the same key
   * fingerprints from the surrogates as from the secrets.
   */
  scrub: Scrubber;
  /** Bytes of queued records above which sources push back (default: no limit). */
  maxQueuedBytes?: number;
  /**
   * Redis memory (used_memory) above which sources push back. 0 or absent: 80 % of Redis's
   * maxmemory when it has one, else 4 GiB.
   */
  maxRedisMemory?: number;
  /** How long a measured queue depth is trusted (ms). */
  depthTtlMs?: number;
  /**
   * Why the store cannot take more now (e.g. Elasticsearch's disk past its high watermark:
   * operations/store-health.ts), or undefined. Sources push back while it says so.
   */
  storePressure?: () => string | undefined;
}

/** Where the queue stands, measured together in one round of requests. */
export interface QueueLoad {
  depth: number;
  queuedBytes: number;
  redisMemory: number;
  redisMemoryLimit: number;
}

export class IngestProducer {
  readonly queue: Queue<RawBatch>;
  private load: QueueLoad = {
    depth: 0,
    queuedBytes: 0,
    redisMemory: 0,
    redisMemoryLimit: Number.POSITIVE_INFINITY,
  };
  private depthAt = 0;

  private readonly options: ProducerOptions;

  constructor(options: ProducerOptions) {
    this.options = options;
    this.queue = createQueue<RawBatch>(
      RAW_QUEUE,
      { producer: options.producer, prefix: options.queuePrefix },
      {
        defaultJobOptions: {
          attempts: Number.MAX_SAFE_INTEGER,
          backoff: { type: 'custom' },
          // A batch fails for good only after crashing its workers repeatedly (stalled too
          // often): the last 100 are kept for inspection, not all of them with their records.
          removeOnFail: { count: 100 },
        },
      },
    );
  }

  get batchSize(): number {
    return this.options.batchSize;
  }

  get highWaterMark(): number {
    return this.options.highWaterMark;
  }

  /** Current depth, measured at most every `depthTtlMs` (`fresh`: now, which also checks Redis answers). */
  async currentDepth(fresh = false): Promise<number> {
    return (await this.currentLoad(fresh)).depth;
  }

  /** Depth, queued bytes and Redis memory, measured at most every `depthTtlMs`. */
  async currentLoad(fresh = false): Promise<QueueLoad> {
    const now = Date.now();
    if (fresh || now - this.depthAt > (this.options.depthTtlMs ?? 250)) {
      const redis = this.options.producer;
      const key = queuedBytesKey(this.options.queuePrefix);
      const [depth, bytes, info] = await Promise.all([
        queueDepth(this.queue),
        redis.get(key),
        redis.info('memory'),
      ]);
      const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
      const maxmemory = Number(/maxmemory:(\d+)/.exec(info)?.[1] ?? 0);
      // An empty queue holds no bytes: whatever the count drifted to (a batch resent while
      // still queued is counted twice) starts over.
      if (depth === 0 && Number(bytes ?? 0) !== 0) await redis.set(key, '0');
      this.load = {
        depth,
        queuedBytes: depth === 0 ? 0 : Math.max(0, Number(bytes ?? 0)),
        redisMemory: used,
        redisMemoryLimit:
          this.options.maxRedisMemory || (maxmemory > 0 ? Math.floor(maxmemory * 0.8) : 4 * 1024 ** 3),
      };
      this.depthAt = now;
    }
    return this.load;
  }

  /** Why sources should stop accepting data for now, or undefined when they need not. */
  async pressure(): Promise<string | undefined> {
    const store = this.options.storePressure?.();
    if (store !== undefined) return store;
    const load = await this.currentLoad();
    if (load.depth >= this.options.highWaterMark)
      return `the ingest queue holds ${load.depth} batches (high-water mark ${this.options.highWaterMark})`;
    const maxBytes = this.options.maxQueuedBytes;
    if (maxBytes !== undefined && load.queuedBytes >= maxBytes)
      return `the ingest queue holds ${mib(load.queuedBytes)} of records not yet stored (limit ${mib(maxBytes)})`;
    if (load.redisMemory >= load.redisMemoryLimit)
      return `Redis uses ${mib(load.redisMemory)} (limit ${mib(load.redisMemoryLimit)})`;
    return undefined;
  }
  /** True when sources should stop accepting data for now. */
  async overHighWater(): Promise<boolean> {
    return (await this.pressure()) !== undefined;
  }

  /**
   * Enqueue records as batches. Resolves once Redis has accepted every job: only then may a
   * source acknowledge the data. `discriminator` identifies the input (file+offset, HTTP request
   * id or body hash) so a re-sent input maps to the same job ids.
   */
  async enqueue(batch: Omit<RawBatch, 'records'>, records: string[], discriminator: string): Promise<number> {
    let bytes = 0;
    const scrub = this.options.scrub;
    const jobs = [...chunk(records, this.options.batchSize)].map((part, i) => {
      // scrubbed before Redis sees them (what is counted is what is queued)
      const scrubbed = part.map((r) => scrub(r));
      let partBytes = 0;
      for (const record of scrubbed) partBytes += Buffer.byteLength(record);
      bytes += partBytes;
      return {
        name: 'batch',
        data: { ...batch, records: scrubbed, bytes: partBytes, scrubbed: true },
        opts: { jobId: batchJobId(batch.source, `${discriminator}#${i}`) },
      };
    });
    if (jobs.length === 0) return 0;
    await this.queue.addBulk(jobs);
    await this.options.producer.incrby(queuedBytesKey(this.options.queuePrefix), bytes);
    this.load.depth += jobs.length;
    this.load.queuedBytes += bytes;
    return jobs.length;
  }

  /** A record as it is queued: scrubbed of secrets (for other stores at rest, the syslog spool). */
  scrub(record: string): string {
    return this.options.scrub(record);
  }

  /** The job ids `enqueue` gives the records of one input (what its acknowledgement waits for). */
  jobIdsFor(source: string, records: number, discriminator: string): string[] {
    return Array.from({ length: Math.ceil(records / this.options.batchSize) }, (_, i) =>
      batchJobId(source, `${discriminator}#${i}`),
    );
  }

  /**
   * True once every job is done with: stored (events and dead letters written) and removed from
   * the queue. A job still waiting, running or waiting to be retried is not.
   */
  async jobsDone(ids: string[]): Promise<boolean> {
    for (const id of ids) {
      const state = await this.queue.getJobState(id);
      if (state !== 'unknown' && state !== 'completed') return false;
    }
    return true;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}
