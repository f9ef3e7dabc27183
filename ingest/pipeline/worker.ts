/**
 * The ingest worker: takes raw batches off the queue, turns each record into an event
 * (parse → normalise → enrich) or a dead letter, and indexes the events.
 *
 * Delivery is at-least-once: a job is removed from Redis only after its events and dead
 * letters are in Elasticsearch. A worker killed mid-batch leaves the job locked; BullMQ hands
 * it to another worker when the lock expires, and the deterministic ids turn the repeated
 * writes into no-ops. When Elasticsearch is down the job fails and is retried with capped
 * exponential backoff, as many times as it takes; the queue holds the backlog.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import { createWorker, type Job } from '../../core/queue/bullmq.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { type DeadLetter, writeDeadLetters } from '../sinks/dead-letters.ts';
import { indexEvents } from '../sinks/elasticsearch.ts';
import { RAW_QUEUE, type RawBatch } from './batch.ts';

import type { NormalizeResult, Normalizer } from './normalize.ts';

export interface BatchOutcome {
  events: number;
  written: number;
  duplicates: number;
  deadLetters: number;
  skipped: number;
}

export interface ProcessBatchOptions {
  es: Client;
  prefix: string;
  normalize: Normalizer;
  refresh?: boolean | 'wait_for';
  /** Called with the events this batch newly wrote (e.g. the API inventory accumulator). */
  onWritten?: (events: GatewatchEvent[]) => Promise<void> | void;
}

/**
 * Records normalised between two yields to the event loop (about 5 ms of CPU). They are parsed
 * grouped by format, which pays off only over a few hundred records (measured: groups of 64
 * gain nothing, 250 about 10 %, 500 about 30 % on a corpus of 16 formats mixed line by line).
 */
const YIELD_EVERY = 500;

/** Process one batch end to end. Throws (so the job is retried) only on storage failures. */
export async function processBatch(batch: RawBatch, options: ProcessBatchOptions): Promise<BatchOutcome> {
  if (batch.unreadable !== undefined) return deadLetterUnreadable(batch, options);
  const events: GatewatchEvent[] = [];
  const deadLetters: DeadLetter[] = [];
  let skipped = 0;
  const records = batch.records;
  for (let at = 0; at < records.length; at += YIELD_EVERY) {
    // Parsing is synchronous CPU work on the thread that also serves every other job's I/O:
    // yield now and then, so bulk responses of concurrent jobs are taken (and their next
    // requests sent) without waiting for this whole batch.
    if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const part = records.slice(at, at + YIELD_EVERY);
    let results: NormalizeResult[];
    try {
      results = options.normalize.many(part, batch);
    } catch {
      // Formats never throw by contract; if one does, find the record and dead-letter it alone.
      results = part.map((record) => {
        try {
          return options.normalize(record, batch);
        } catch (err) {
          return { ok: false, reason: `internal error while parsing: ${(err as Error).message}` };
        }
      });
    }
    for (let i = 0; i < part.length; i++) {
      const result = results[i]!;
      const failures = result.ok ? result.failures : [result];
      if (result.ok) {
        events.push(...result.events);
        if (result.skipped !== undefined) skipped++;
      }
      for (const failure of failures) {
        deadLetters.push({
          source: batch.source,
          ...(failure.format ? { format: failure.format } : {}),
          reason: failure.reason,
          stage: 'parse',
          raw: part[i]!,
          at: batch.receivedAt,
        });
      }
    }
  }
  const sink = await indexEvents(options.es, events, { prefix: options.prefix, refresh: options.refresh });
  for (const { event, reason } of sink.rejected) {
    deadLetters.push({
      source: batch.source,
      ...(event.event?.dataset ? { format: event.event.dataset } : {}),
      reason,
      stage: 'index',
      raw: event.event?.original ?? JSON.stringify(event),
      eventId: event.event?.id,
      at: batch.receivedAt,
    });
  }
  await writeDeadLetters(options.es, options.prefix, deadLetters);
  await options.onWritten?.(sink.writtenEvents);
  return {
    events: events.length,
    written: sink.written,
    duplicates: sink.duplicates,
    deadLetters: deadLetters.length,
    skipped,
  };
}

/** Inputs a pull source could not read: stored as dead letters with the source's reason. */
async function deadLetterUnreadable(batch: RawBatch, options: ProcessBatchOptions): Promise<BatchOutcome> {
  const letters: DeadLetter[] = batch.records.map((raw) => ({
    source: batch.source,
    ...(batch.format ? { format: batch.format } : {}),
    reason: batch.unreadable!,
    stage: 'read',
    raw,
    at: batch.receivedAt,
  }));
  await writeDeadLetters(options.es, options.prefix, letters);
  return { events: 0, written: 0, duplicates: 0, deadLetters: letters.length, skipped: 0 };
}

/** Capped exponential backoff: 1 s, 2 s, 4 s … up to 60 s, forever (nothing is given up). */
export function ingestBackoff(attemptsMade: number): number {
  return Math.min(60_000, 1_000 * 2 ** Math.max(0, attemptsMade - 1));
}

export interface IngestWorkerOptions extends ProcessBatchOptions {
  redisUrl: string;
  queuePrefix: string;
  concurrency?: number;
  /** Lock duration (ms): after a crash, the job is taken over once this expires. */
  lockMs?: number;
  onBatch?: (outcome: BatchOutcome, job: Job<RawBatch>) => void;
}

export function startIngestWorker(options: IngestWorkerOptions) {
  return createWorker<RawBatch, BatchOutcome>(
    RAW_QUEUE,
    async (job) => {
      const outcome = await processBatch(job.data, options);
      options.onBatch?.(outcome, job);
      return outcome;
    },
    { redisUrl: options.redisUrl, prefix: options.queuePrefix },
    {
      concurrency: options.concurrency ?? 2,
      ...(options.lockMs
        ? { lockDuration: options.lockMs, stalledInterval: Math.max(1_000, options.lockMs / 2) }
        : {}),
      settings: { backoffStrategy: (attemptsMade: number) => ingestBackoff(attemptsMade) },
    },
  );
}

export type { Redis };
