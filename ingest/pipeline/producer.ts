/**
 * The producing side of the ingest queue, shared by every source. It enqueues bounded batches
 * and tells sources when to push back: above the high-water mark, or while the store cannot take
 * more (Elasticsearch's disk filling up), HTTP sources answer 429 with Retry-After, file and TCP
 * sources pause reading.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createQueue, queueDepth } from '../../core/queue/bullmq.ts';
import { batchJobId, chunk, RAW_QUEUE, type RawBatch } from './batch.ts';

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
  /** How long a measured queue depth is trusted (ms). */
  depthTtlMs?: number;
  /**
   * Why the store cannot take more now (e.g. Elasticsearch's disk past its high watermark:
   * operations/store-health.ts), or undefined. Sources push back while it says so.
   */
  storePressure?: () => string | undefined;
}

export class IngestProducer {
  readonly queue: Queue<RawBatch>;
  private depth = 0;
  private depthAt = 0;

  private readonly options: ProducerOptions;

  constructor(options: ProducerOptions) {
    this.options = options;
    this.queue = createQueue<RawBatch>(
      RAW_QUEUE,
      { producer: options.producer, prefix: options.queuePrefix },
      {
        defaultJobOptions: { attempts: Number.MAX_SAFE_INTEGER, backoff: { type: 'custom' } },
      },
    );
  }

  get batchSize(): number {
    return this.options.batchSize;
  }

  /** Current depth, measured at most every `depthTtlMs`. */
  async currentDepth(): Promise<number> {
    const now = Date.now();
    if (now - this.depthAt > (this.options.depthTtlMs ?? 250)) {
      this.depth = await queueDepth(this.queue);
      this.depthAt = now;
    }
    return this.depth;
  }

  /** Why sources should stop accepting data for now, or undefined when they need not. */
  async pressure(): Promise<string | undefined> {
    const store = this.options.storePressure?.();
    if (store !== undefined) return store;
    const depth = await this.currentDepth();
    if (depth >= this.options.highWaterMark)
      return `the ingest queue holds ${depth} batches (high-water mark ${this.options.highWaterMark})`;
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
    let n = 0;
    const jobs = [...chunk(records, this.options.batchSize)].map((part, i) => ({
      name: 'batch',
      data: { ...batch, records: part },
      opts: { jobId: batchJobId(batch.source, `${discriminator}#${i}`) },
    }));
    if (jobs.length > 0) await this.queue.addBulk(jobs);
    n += jobs.length;
    this.depth += n;
    return n;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
