/**
 * Composition of the distributed ingest pipeline, used by the CLI (`gatewatch ingest …`) and by
 * integration tests: sources → Redis (BullMQ) → workers (normalise, enrich) → Elasticsearch.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { assertNoEviction, displayUrl, waitForRedis } from '../core/queue/bullmq.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { createEsClient, waitForElasticsearch } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { PartialFolder } from '../detections/partials/fold.ts';
import { loadRuleSet } from '../detections/rule-set.ts';
import { InventoryAccumulator } from '../inventory/accumulator.ts';
import { ElasticsearchInventoryStore } from '../inventory/store.ts';
import { type ProcessOperations, startOperations } from '../operations/process.ts';
import { deploymentFingerprintSecret, withFingerprintSecret } from './fingerprint-secret.ts';
import { queuedBytesKey, type RawBatch } from './pipeline/batch.ts';
import { createNormalizer } from './pipeline/normalize.ts';
import { IngestProducer } from './pipeline/producer.ts';
import { type BatchOutcome, startIngestWorker } from './pipeline/worker.ts';
import { buildHttpSourceServer } from './sources/http/server.ts';
import type { HecAckStore } from './sources/http/splunk-hec.ts';
import { createScrubber } from './transforms/scrub.ts';

export interface IngestRuntime {
  /** The configuration with its fingerprint secret resolved (configured, or the deployment's own). */
  config: GatewatchConfig;
  es: Client;
  redis: Redis;
  producer: IngestProducer;
  workers: Worker<RawBatch, BatchOutcome>[];
  http?: FastifyInstance;
  /** The store's health watch (push-back) and, with workers, the lifecycle runner. */
  operations: ProcessOperations;
  close(): Promise<void>;
}

export function sourceStatsKey(prefix: string, source: string): string {
  return `${prefix}:source-stats:${source}`;
}

/** Claims Firehose request ids in Redis for a day, so retried deliveries are not enqueued twice. */
export function redisRequestIdStore(redis: Redis, prefix: string) {
  return {
    async claim(id: string) {
      return (await redis.set(`${prefix}:firehose:${id}`, '1', 'EX', 86_400, 'NX')) === 'OK';
    },
    async release(id: string) {
      await redis.del(`${prefix}:firehose:${id}`);
    },
  };
}

/** Splunk HEC indexer acknowledgements in Redis: ack ids per source and channel, kept a day. */
export function redisHecAckStore(redis: Redis, prefix: string): HecAckStore {
  const DAY = 86_400;
  const key = (source: string, channel: string) => `${prefix}:hec-ack:${source}:${channel.toLowerCase()}`;
  return {
    async register(source, channel, jobIds) {
      const k = key(source, channel);
      const [[, next]] = (await redis.multi().hincrby(k, 'next', 1).expire(k, DAY).exec()) as [
        [Error | null, number],
      ];
      const id = next - 1;
      await redis.hset(k, `ack:${id}`, jobIds.join(','));
      return id;
    },
    async jobs(source, channel, ackIds) {
      if (ackIds.length === 0) return new Map();
      const found = await redis.hmget(key(source, channel), ...ackIds.map((id) => `ack:${id}`));
      const out = new Map<number, string[]>();
      ackIds.forEach((id, i) => {
        const jobs = found[i];
        if (jobs !== null && jobs !== undefined) out.set(id, jobs === '' ? [] : jobs.split(','));
      });
      return out;
    },
    async forget(source, channel, ackIds) {
      if (ackIds.length > 0) await redis.hdel(key(source, channel), ...ackIds.map((id) => `ack:${id}`));
    },
  };
}

export interface StartIngestOptions {
  workers?: number;
  http?: boolean;
  /** How long to wait for Elasticsearch and Redis at start (default: as long as it takes). */
  waitMs?: number;
  /** Refresh after each bulk (tests: makes writes visible at once). */
  refresh?: boolean | 'wait_for';
  onBatch?: (outcome: BatchOutcome) => void;
}

export async function startIngest(
  configured: GatewatchConfig,
  options: StartIngestOptions = {},
): Promise<IngestRuntime> {
  const es = createEsClient(configured.elasticsearch);
  // Long-running processes wait for their servers as long as it takes (started before them, or
  // during an outage), saying what they wait for; one-shot commands give up after waitMs.
  const waitMs = options.waitMs ?? Number.POSITIVE_INFINITY;
  await waitForElasticsearch(es, waitMs, (err) =>
    console.error(
      `waiting for Elasticsearch at ${displayUrl(configured.elasticsearch.url)} (elasticsearch.url / ELASTICSEARCH_URL): ${err.message}; retrying`,
    ),
  );
  // Receivers scrub with it before queueing, workers fingerprint with it: one key per deployment.
  const fingerprintSecret = await deploymentFingerprintSecret(es, configured);
  const config = withFingerprintSecret(configured, fingerprintSecret);
  const redis = await waitForRedis(config.redis.url, 'producer', { timeoutMs: waitMs });
  // Redis going away later is survived (sources push back or spool, workers wait): say so once
  // per outage instead of ioredis's "unhandled error event" on every reconnection attempt.
  let redisDown = false;
  redis.on('error', (err) => {
    if (redisDown) return;
    redisDown = true;
    console.error(`Redis at ${displayUrl(config.redis.url)} unreachable: ${err.message}; reconnecting`);
  });
  redis.on('ready', () => {
    if (redisDown) console.error(`Redis at ${displayUrl(config.redis.url)} reachable again`);
    redisDown = false;
  });
  if (config.redis.requireNoEviction) await assertNoEviction(redis);
  await installCoreTemplates(es, {
    prefix: config.elasticsearch.indexPrefix,
    shards: config.elasticsearch.shards,
    replicas: config.elasticsearch.replicas,
  });
  // Workers stop taking batches while Elasticsearch's disk is past its high watermark (they
  // stay queued) and take them again by themselves once it is back below.
  const workers: Worker<RawBatch, BatchOutcome>[] = [];
  const operations = await startOperations({
    es,
    redis,
    config,
    lifecycle: (options.workers ?? 0) > 0,
    onChange: (health) => {
      for (const w of workers) {
        if (health.push_back) void w.pause(true).catch(() => undefined);
        else w.resume();
      }
    },
  });
  const producer = new IngestProducer({
    producer: redis,
    queuePrefix: config.redis.prefix,
    highWaterMark: config.ingest.highWaterMark,
    batchSize: config.ingest.batchSize,
    scrub: createScrubber({ fingerprintSecret }),
    maxQueuedBytes: config.ingest.maxQueuedBytes,
    maxRedisMemory: config.ingest.maxRedisMemory,
    storePressure: () => operations.watch.pushBack(),
  });
  const normalize = createNormalizer(config);
  // The API inventory is maintained incrementally from what workers write.
  const inventory =
    (options.workers ?? 0) > 0
      ? new InventoryAccumulator(new ElasticsearchInventoryStore(es, config.elasticsearch.indexPrefix))
      : undefined;
  if (inventory) await new ElasticsearchInventoryStore(es, config.elasticsearch.indexPrefix).install();
  const inventoryTimer = inventory
    ? setInterval(() => void inventory.flush().catch(() => undefined), 10_000)
    : undefined;
  inventoryTimer?.unref();
  // Folding written events into the inventory is bookkeeping, not delivery: it runs right after
  // the job (off its critical path, so the slot takes its next batch at once), in order.
  let inventoryWork: Promise<void> = Promise.resolve();
  const foldIntoInventory = (events: GatewatchEvent[]): void => {
    if (!inventory || events.length === 0) return;
    inventoryWork = inventoryWork.then(
      () =>
        new Promise<void>((resolve) =>
          setImmediate(() => {
            try {
              if (inventory.add(events)) void inventory.flush().catch(() => undefined);
            } finally {
              resolve();
            }
          }),
        ),
    );
  };
  // Rule partials (docs/partials.md): the workers fold what they store into the partials of the
  // deployment's threshold and baseline rules, re-reading the rule set every minute.
  let folder: PartialFolder | undefined;
  let partialsTimer: NodeJS.Timeout | undefined;
  if ((options.workers ?? 0) > 0 && config.detections.partials.enabled) {
    const load = async () => {
      const set = await loadRuleSet(config, es);
      folder = new PartialFolder(set.rules, {
        exactValues: config.detections.partials.exactValues,
        // a first-seen key's hours go two days after its events would (lifecycle runs daily)
        keyRetentionMs: durationMs(config.retention.events) + 2 * 86_400_000,
      });
    };
    await load().catch((err: Error) =>
      console.error(`rule partials off until the rules load: ${err.message}`),
    );
    partialsTimer = setInterval(() => void load().catch(() => undefined), 60_000);
    partialsTimer.unref();
  }
  for (let n = 0; n < (options.workers ?? 0); n++) {
    const worker = startIngestWorker({
      partials: () => folder,
      es,
      prefix: config.elasticsearch.indexPrefix,
      normalize,
      redisUrl: config.redis.url,
      queuePrefix: config.redis.prefix,
      concurrency: config.ingest.workerConcurrency,
      lockMs: durationMs(config.ingest.jobLock),
      ...(inventory
        ? {
            onWritten: foldIntoInventory,
          }
        : {}),
      ...(options.refresh !== undefined ? { refresh: options.refresh } : {}),
      onBatch: (outcome, job) => {
        // Per-source counters for the API's source status (lag, rates, errors).
        const key = sourceStatsKey(config.redis.prefix, job.data.source);
        void redis
          .multi()
          .hincrby(key, 'records', job.data.records.length)
          // Events newly stored: a resent record (same id) is counted apart, not again.
          .hincrby(key, 'events', outcome.written)
          .hincrby(key, 'duplicates', outcome.duplicates)
          .hincrby(key, 'dead_letters', outcome.deadLetters)
          // Stored (or dead-lettered): its bytes leave the queue's byte total.
          .decrby(queuedBytesKey(config.redis.prefix), job.data.bytes ?? 0)
          .hset(key, 'last_batch_at', String(Date.now()), 'last_received_at', String(job.data.receivedAt))
          .exec()
          .catch(() => undefined);
        options.onBatch?.(outcome);
      },
    });
    if (operations.watch.pushBack()) void worker.pause(true).catch(() => undefined);
    workers.push(worker);
  }
  let http: FastifyInstance | undefined;
  if (options.http) {
    http = buildHttpSourceServer({
      sources: config.ingest.sources.filter((s) => s.type === 'http'),
      producer,
      maxBodyBytes: config.ingest.maxBodyBytes,
      bodyTimeoutMs: durationMs(config.ingest.requestTimeout),
      seenRequestIds: redisRequestIdStore(redis, config.redis.prefix),
      hecAcks: redisHecAckStore(redis, config.redis.prefix),
    });
    await http.listen({ host: config.ingest.httpHost, port: config.ingest.httpPort });
  }
  return {
    config,
    es,
    redis,
    producer,
    workers,
    ...(http ? { http } : {}),
    operations,
    async close() {
      await http?.close();
      await operations.close();
      await Promise.all(workers.map((w) => w.close()));
      await inventoryWork;
      if (inventoryTimer) clearInterval(inventoryTimer);
      if (partialsTimer) clearInterval(partialsTimer);
      await inventory?.flush().catch(() => undefined);
      await producer.close();
      redis.disconnect();
      await es.close();
    },
  };
}
