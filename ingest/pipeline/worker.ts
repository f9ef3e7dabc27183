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
import { describeStorageFailure, indexEvents } from '../sinks/elasticsearch.ts';
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

/**
 * Message sizes at which common senders cut longer lines into several messages: util-linux
 * `logger` at its --size (1 KiB by default, RFC 3164's limit), others at 2, 4 or 8 KiB.
 */
const SENDER_CUTS = new Set([1024, 2048, 4096, 8192]);

/**
 * Why a record that does not parse may be a piece of a longer line: it is exactly as long as
 * a sender's cut, or it follows one that is. Undefined when nothing suggests it.
 */
export function cutLineHint(record: string, previous: string | undefined): string | undefined {
  const advice = 'util-linux logger cuts lines at --size, 1024 bytes by default: send with --size 65536';
  const bytes = Buffer.byteLength(record);
  if (SENDER_CUTS.has(bytes))
    return `the record is exactly ${bytes} bytes, so the sender probably cut a longer line there (${advice})`;
  const before = previous === undefined ? 0 : Buffer.byteLength(previous);
  if (SENDER_CUTS.has(before))
    return `it probably continues the previous record, which the sender cut at ${before} bytes (${advice})`;
  return undefined;
}

/** Process one batch end to end. Throws (so the job is retried) only on storage failures. */
export async function processBatch(batch: RawBatch, options: ProcessBatchOptions): Promise<BatchOutcome> {
  if (batch.unreadable !== undefined) return deadLetterUnreadable(batch, options);
  const events: GatewatchEvent[] = [];
  /** The raw record of each event (same positions): what a dead letter keeps. */
  const eventRecords: string[] = [];
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
        for (const event of result.events) {
          events.push(event);
          eventRecords.push(part[i]!);
        }
        if (result.skipped !== undefined) skipped++;
      }
      for (const failure of failures) {
        const hint = result.ok ? undefined : cutLineHint(part[i]!, records[at + i - 1]);
        deadLetters.push({
          source: batch.source,
          ...(failure.format ? { format: failure.format } : {}),
          reason: hint ? `${failure.reason}; ${hint}` : failure.reason,
          stage: 'parse',
          // as the normaliser read it: scrubbed (a batch queued before scrubbing existed too)
          raw: options.normalize.scrub(part[i]!, batch),
          at: batch.receivedAt,
        });
      }
    }
  }
  const sink = await indexEvents(options.es, events, { prefix: options.prefix, refresh: options.refresh });
  // Records Elasticsearch cannot take (or that cannot even be sent) are dead-lettered with the
  // reason; the rest of the batch is stored.
  for (const { event, position, reason } of sink.rejected) {
    deadLetters.push({
      source: batch.source,
      ...(event.event?.dataset ? { format: event.event.dataset } : {}),
      reason,
      stage: 'index',
      // The redacted original when kept, else the record as received (never the event itself:
      // it may be the very thing that cannot be serialised).
      raw: event.event?.original ?? eventRecords[position]!,
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
  /** Where storage failures are reported (default: stderr), at most every 30 s. */
  log?: (line: string) => void;
}

/**
 * Reports batches that could not be stored: the first at once, then at most one line every
 * `everyMs` with how many failed since, so an outage is visible without flooding the log.
 */
export function storageFailureReporter(log: (line: string) => void, everyMs = 30_000) {
  let last = Number.NEGATIVE_INFINITY;
  let since = 0;
  return (err: unknown): void => {
    since++;
    const now = Date.now();
    if (now - last < everyMs) return;
    log(
      `ingest worker: ${since} batch(es) not stored, kept in the queue and retried with backoff: ${describeStorageFailure(err)}`,
    );
    last = now;
    since = 0;
  };
}

export function startIngestWorker(options: IngestWorkerOptions) {
  const report = storageFailureReporter(options.log ?? ((line) => console.error(line)));
  const worker = createWorker<RawBatch, BatchOutcome>(
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
  worker.on('failed', (_job, err) => report(err));
  return worker;
}

export type { Redis };
