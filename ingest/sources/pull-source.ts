/**
 * What the polling pull sources (S3 listing and notifications, CloudWatch Logs, Azure Blob
 * Storage) share: a loop that polls, waits and polls again until stopped, backs off after
 * errors without giving up, and reports progress (./progress.ts). Subclasses implement
 * `poll()`; the Kafka source streams instead and uses SourceProgress directly.
 */
import type { Redis } from 'ioredis';
import type { SourceConfig } from '../../core/config/schema.ts';
import type { IngestProducer } from '../pipeline/producer.ts';
import {
  enqueueUnreadable,
  type ObjectCheckpoints,
  type ObjectPosition,
  readObject,
  type StoredObject,
  UnreadableInputError,
} from './objects.ts';
import { SourceProgress } from './progress.ts';
import type { Source, SourceStatusSnapshot } from './types.ts';

export interface PullSourceOptions {
  source: SourceConfig;
  producer: IngestProducer;
  redis: Redis;
  /** Redis key prefix (redis.prefix): checkpoints and progress live under it. */
  prefix: string;
  /** Errors the source keeps running through (one line each, no credentials). */
  onError?: (message: string) => void;
}

/** Capped exponential backoff with full jitter: up to 1 s, 2 s, 4 s … 60 s. */
export function backoffMs(attempt: number, capMs = 60_000): number {
  return Math.round(Math.random() * Math.min(capMs, 1_000 * 2 ** Math.max(0, attempt)));
}

export abstract class PollingSource implements Source {
  protected readonly options: PullSourceOptions;
  protected readonly progress: SourceProgress;
  protected stopped = false;
  protected recordsQueued = 0;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private failures = 0;

  constructor(options: PullSourceOptions) {
    this.options = options;
    this.progress = new SourceProgress({
      redis: options.redis,
      prefix: options.prefix,
      source: options.source,
    });
  }

  get name(): string {
    return this.options.source.name;
  }

  /** Redis key for this source's own state. */
  protected key(what: string): string {
    return `${this.options.prefix}:pull:${this.name}:${what}`;
  }

  status(): SourceStatusSnapshot {
    return { name: this.name, records: this.recordsQueued, dropped: 0 };
  }

  /** Time to wait after a successful poll. */
  protected abstract intervalMs(): number;
  /** One round of work. Throw to back off and try again. */
  protected abstract poll(): Promise<void>;

  start(): void {
    this.progress.start();
    this.running = (async () => {
      while (!this.stopped) {
        let wait: number;
        try {
          await this.poll();
          this.failures = 0;
          this.progress.ok();
          wait = this.intervalMs();
        } catch (err) {
          if (this.stopped) break;
          const message = this.progress.error(err);
          this.options.onError?.(`${this.options.source.type} source ${this.name}: ${message} (retrying)`);
          wait = Math.max(backoffMs(this.failures++), 250);
        }
        await this.sleep(wait);
      }
    })();
  }

  /** Sleep, cut short by stop(). */
  protected sleep(ms: number): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    await this.progress.stop();
  }

  /**
   * Read an object from its checkpoint to the end, checkpointing as it goes. An unreadable
   * object is dead-lettered and checkpointed as done; transient errors are thrown.
   */
  protected async readStoredObject(
    object: StoredObject,
    prior: ObjectPosition | undefined,
    checkpoints: ObjectCheckpoints,
    options: { completeLinesOnly?: boolean; appendOnly?: boolean } = {},
  ): Promise<{ position: ObjectPosition; deadLettered?: string }> {
    let bytes = prior?.version === object.version || options.appendOnly ? (prior?.bytes ?? 0) : 0;
    try {
      const position = await readObject(object, prior, {
        producer: this.options.producer,
        source: this.options.source,
        isStopped: () => this.stopped,
        ...options,
        onQueued: async (at, records) => {
          await checkpoints.set(object.url, at);
          this.queued(records);
          this.progress.add('bytes', Math.max(0, at.bytes - bytes));
          bytes = at.bytes;
        },
      });
      // The end of the object (done, or the unfinished tail of an append blob) is a position too.
      if (position.done || position.tail !== undefined) await checkpoints.set(object.url, position);
      if (position.done) this.progress.add('objects');
      return { position };
    } catch (err) {
      if (!(err instanceof UnreadableInputError)) throw err;
      await enqueueUnreadable(this.options.producer, this.options.source, object, err.message);
      const saved = (await checkpoints.get([object.url]))[0];
      const position: ObjectPosition = {
        version: object.version,
        lines: saved?.version === object.version ? saved.lines : 0,
        bytes: object.size ?? bytes,
        done: true,
        failed: err.message,
        ...(object.size !== undefined ? { size: object.size } : {}),
        ...(object.modified !== undefined ? { modified: object.modified } : {}),
      };
      await checkpoints.set(object.url, position);
      this.progress.add('dead_letters');
      this.options.onError?.(
        `${this.options.source.type} source ${this.name}: ${object.url} dead-lettered: ${err.message}`,
      );
      return { position, deadLettered: err.message };
    }
  }

  /** Called by sources after records of theirs are in the queue. */
  protected queued(records: number): void {
    this.recordsQueued += records;
    this.progress.add('records', records);
  }
}
