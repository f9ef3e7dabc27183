/**
 * The REST API's ingest-administration port (api/ports.ts): configured sources with their
 * status from the workers' per-source counters in Redis, and dead letters (list, replay).
 */
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import type { DeadLetterPage, IngestAdminPort, IngestQueueStatus, SourceStatus } from '../api/ports.ts';
import { HttpProblem } from '../api/problem.ts';
import type { SourceConfig } from '../core/config/schema.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import type { IngestProducer } from './pipeline/producer.ts';
import { sourceStatsKey } from './runtime.ts';
import { type DeadLetterDoc, listDeadLetters, markReplayed } from './sinks/dead-letters.ts';
import {
  backlogOf,
  type ProgressReport,
  registerSourceProgressMetrics,
  sourceProgressKey,
} from './sources/progress.ts';

const PULL_TYPES = new Set(['s3', 'cloudwatch', 'kafka', 'azure-blob']);

/**
 * A call to Redis (the ingest queue and the per-source counters). Redis not answering is the
 * service being unavailable for a moment, not a server fault: a 503 problem with Retry-After.
 */
async function queueCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new HttpProblem(
      503,
      'queue-unavailable',
      `Redis (the ingest queue and its counters) does not answer: ${(err as Error).message}; retry shortly`,
      { headers: { 'retry-after': '5' } },
    );
  }
}

export class IngestAdmin implements IngestAdminPort {
  private readonly options: {
    es: Client;
    redis: Redis;
    prefix: string;
    queuePrefix: string;
    sources: SourceConfig[];
    producer: IngestProducer;
  };
  private readonly previous = new Map<string, { at: number; events: number }>();

  constructor(options: IngestAdmin['options']) {
    this.options = options;
    registerSourceProgressMetrics(() => this.progressReports());
  }

  /** Progress hashes of the pull sources (see ingest/sources/progress.ts). */
  private async progressReports(): Promise<ProgressReport[]> {
    const pull = this.options.sources.filter((s) => PULL_TYPES.has(s.type));
    const hashes = await Promise.all(
      pull.map((s) => this.options.redis.hgetall(sourceProgressKey(this.options.queuePrefix, s.name))),
    );
    return pull.map((s, i) => ({ source: s.name, type: s.type, hash: hashes[i]! }));
  }

  async queue(): Promise<IngestQueueStatus> {
    const queue = this.options.producer.queue;
    const [counts, oldest] = await Promise.all([
      queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
      queue.getJobs(['wait'], 0, 0, true),
    ]);
    const first = oldest[0];
    return {
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0,
      oldest_waiting_seconds: first ? Math.max(0, (Date.now() - first.timestamp) / 1000) : null,
      high_water_mark: this.options.producer.highWaterMark,
    };
  }

  async sources(): Promise<SourceStatus[]> {
    const now = Date.now();
    const out: SourceStatus[] = [];
    const progress = new Map((await queueCall(() => this.progressReports())).map((r) => [r.source, r.hash]));
    for (const source of this.options.sources) {
      const stats = await queueCall(() =>
        this.options.redis.hgetall(sourceStatsKey(this.options.queuePrefix, source.name)),
      );
      const events = Number(stats.events ?? 0);
      const dropped = Number(stats.dropped_kernel ?? 0) + Number(stats.dropped_high_water ?? 0);
      const prev = this.previous.get(source.name);
      this.previous.set(source.name, { at: now, events });
      const rate = prev && now > prev.at ? ((events - prev.events) * 1000) / (now - prev.at) : 0;
      const lastBatch = stats.last_batch_at ? Number(stats.last_batch_at) : undefined;
      const lastReceived = stats.last_received_at ? Number(stats.last_received_at) : undefined;
      const report = progress.get(source.name);
      const backlog = report ? backlogOf(report, now) : undefined;
      const pullError = report?.last_error;
      out.push({
        name: source.name,
        type: source.type,
        state: pullError
          ? 'error'
          : lastBatch === undefined
            ? 'idle'
            : now - lastBatch < 5 * 60_000
              ? 'running'
              : 'idle',
        lag_seconds:
          lastBatch !== undefined && lastReceived !== undefined
            ? Math.max(0, (lastBatch - lastReceived) / 1000)
            : null,
        events_per_second: Math.max(0, rate),
        bytes_per_second: 0,
        errors_total: Number(stats.dead_letters ?? 0) + dropped,
        events_total: events,
        duplicates_total: Number(stats.duplicates ?? 0),
        dead_letters_total: Number(stats.dead_letters ?? 0),
        dropped_total: dropped,
        last_error: pullError ?? stats.last_warning ?? null,
        last_event_at: lastBatch !== undefined ? new Date(lastBatch).toISOString() : null,
        ...(backlog ? { backlog } : {}),
      });
    }
    return out;
  }

  async deadLetters(query: { source?: string; size: number; cursor?: string }): Promise<DeadLetterPage> {
    let after: unknown[] | undefined;
    if (query.cursor) {
      try {
        after = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as unknown[];
        if (!Array.isArray(after)) throw new Error('not a cursor');
      } catch {
        throw new HttpProblem(400, 'invalid-cursor', 'cursor was not issued by this endpoint', {
          errors: [{ field: '/query/cursor', message: 'use next_cursor from a previous page' }],
        });
      }
    }
    const letters = await listDeadLetters(this.options.es, this.options.prefix, {
      size: query.size,
      ...(query.source ? { source: query.source } : {}),
      ...(after ? { after } : {}),
    });
    const last = letters[letters.length - 1];
    return {
      items: letters.map((d) => ({
        id: d.id,
        source: d.source,
        at: d['@timestamp'],
        reason: d.reason,
        payload: d.raw,
        replayed_at: d.replayed_at ?? null,
      })),
      next_cursor:
        last && letters.length === query.size
          ? Buffer.from(JSON.stringify(last.sort)).toString('base64url')
          : null,
    };
  }

  async replayDeadLetters(request: {
    ids?: string[];
    source?: string;
  }): Promise<{ replayed: number; failed: number }> {
    const filter: object[] = [{ bool: { must_not: { exists: { field: 'replayed_at' } } } }];
    if (request.ids) filter.push({ ids: { values: request.ids } });
    if (request.source) filter.push({ term: { source: request.source } });
    const response = await this.options.es.search<DeadLetterDoc>({
      index: indexNames(this.options.prefix).deadLetters,
      size: 10_000,
      query: { bool: { filter } },
      ignore_unavailable: true,
    });
    const bySource = Map.groupBy(response.hits.hits, (h) => h._source!.source);
    let replayed = 0;
    for (const [source, hits] of bySource) {
      await queueCall(() =>
        this.options.producer.enqueue(
          { source, receivedAt: Date.now() },
          hits.map((h) => h._source!.raw),
          `replay:${hits.map((h) => h._id).join(',')}`,
        ),
      );
      await markReplayed(
        this.options.es,
        this.options.prefix,
        hits.map((h) => h._id!),
      );
      replayed += hits.length;
    }
    return { replayed, failed: 0 };
  }
}
