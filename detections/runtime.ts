/**
 * Composition of the distributed detection side, used by `gatewatch detect worker` and tests:
 * rules from files → scheduler (BullMQ job schedulers, leases, checkpoints) → Elasticsearch
 * executor → exactly-once incidents → webhook notifications.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { assertNoEviction, connectRedis } from '../core/queue/bullmq.ts';
import {
  createEsClient,
  indexNames,
  isIndexNotFound,
  waitForElasticsearch,
} from '../core/store/elasticsearch.ts';
import { type ProcessOperations, startOperations } from '../operations/process.ts';
import type { RuleIR } from '../parser/ir.ts';
import { runRuleOnElasticsearch } from './engine/elasticsearch.ts';
import { toIncident } from './engine/types.ts';
import { Notifier } from './notify/webhooks.ts';
import { buildPartials } from './partials/build.ts';
import { compactPartials } from './partials/compact.ts';
import { readSequenceState, writeSequenceState } from './partials/sequence-state.ts';
import { redisLock } from './scheduler/lock.ts';
import { DetectionScheduler, type RuleExecutor, type RunRecord } from './scheduler/scheduler.ts';

/** The distributed executor: one rule over one range, in Elasticsearch. */
export function elasticsearchExecutor(
  es: Client,
  prefix: string,
  maxGroups: number,
  /** Told once when there are no events yet (default: one line on stdout). */
  onNoEvents: (message: string) => void = (message) => console.log(message),
  /**
   * Read rule partials where they cover a run (docs/partials.md); raw events elsewhere. With
   * `sequenceStateBytes`, sequence rules keep their state across scheduled runs up to that size.
   */
  partials?: { exactValues: number; sequenceStateBytes?: number },
): RuleExecutor {
  const index = indexNames(prefix).eventsAlias;
  // A search answered by some shards only (a node just left) fails the run, which is then run
  // again: runRuleOnElasticsearch takes whole answers only (a partial one would lose incidents
  // and still move the checkpoint on).
  let told = false;
  return async (rule, range, now, context) => {
    let result: Awaited<ReturnType<typeof runRuleOnElasticsearch>>;
    const cap = partials?.sequenceStateBytes;
    const stateful =
      cap !== undefined && context && rule.kind === 'sequence' && !rule.correlate ? rule : undefined;
    const sequence = stateful
      ? await readSequenceState(es, prefix, stateful, context?.checkpoint)
      : undefined;
    try {
      result = await runRuleOnElasticsearch(
        es,
        index,
        rule,
        range,
        {
          maxGroups,
          ...(partials
            ? { partials: { index: indexNames(prefix).partials, exactValues: partials.exactValues } }
            : {}),
        },
        sequence ? { sequence } : undefined,
      );
    } catch (err) {
      // A fresh deployment has no events index until the first event is stored: no data yet
      // is a normal state, and the run finds nothing (its checkpoint moves on as with data).
      if (!isIndexNotFound(err)) throw err;
      if (!told) {
        told = true;
        onNoEvents(
          `no events stored yet (${index} does not exist): rules run and find nothing until the first event is ingested`,
        );
      }
      return { incidents: [], detections: 0, esMs: 0, workerMs: 0 };
    }
    return {
      incidents: result.detections.map((d) => toIncident(d, rule, now)),
      detections: result.detections.length,
      ...(result.degraded ? { degraded: result.degraded } : {}),
      esMs: result.timing.esMs,
      workerMs: result.timing.workerMs,
      cells: result.cells,
      ...(result.partials
        ? {
            partials: {
              chunks: result.partials.chunks,
              raw_chunks: result.partials.raw.length,
              reread_groups: result.partials.reread,
            },
          }
        : {}),
      ...(result.note ? { note: result.note } : {}),
      ...(result.sequence ? { eventsRead: result.sequence.eventsRead } : {}),
      ...(stateful && cap !== undefined
        ? {
            commit: async () => {
              const next = result.sequence?.next;
              if (!next)
                return 'sequence state not kept (the run was degraded): the next run reads its look-back raw';
              return writeSequenceState(es, prefix, stateful, context?.checkpoint, next, cap);
            },
          }
        : {}),
    };
  };
}

export interface DetectionRuntime {
  es: Client;
  redis: Redis;
  scheduler: DetectionScheduler;
  notifier: Notifier;
  /** The store's health watch and, with a worker, the lifecycle runner. */
  operations: ProcessOperations;
  close(): Promise<void>;
}

export interface StartDetectionOptions {
  rules: RuleIR[];
  /** Start a worker consuming scheduled runs (and notification deliveries). */
  worker?: boolean;
  /** Install BullMQ job schedulers for the rules. */
  schedule?: boolean;
  clock?: () => number;
  onRun?: (record: RunRecord) => void;
}

export async function startDetection(
  config: GatewatchConfig,
  options: StartDetectionOptions,
): Promise<DetectionRuntime> {
  const es = createEsClient(config.elasticsearch);
  await waitForElasticsearch(es, 60_000, (err) =>
    console.error(`waiting up to 60 s for Elasticsearch at ${config.elasticsearch.url}: ${err.message}`),
  );
  const redis = await connectRedis(config.redis.url, 'producer');
  if (config.redis.requireNoEviction) await assertNoEviction(redis);
  const notifier = new Notifier({
    redis,
    redisUrl: config.redis.url,
    queuePrefix: config.redis.prefix,
    targets: config.detections.webhooks,
  });
  const scheduler = new DetectionScheduler({
    es,
    redis,
    redisUrl: config.redis.url,
    prefix: config.elasticsearch.indexPrefix,
    queuePrefix: config.redis.prefix,
    rules: options.rules,
    execute: elasticsearchExecutor(
      es,
      config.elasticsearch.indexPrefix,
      config.detections.maxGroups,
      undefined,
      config.detections.partials.enabled
        ? {
            exactValues: config.detections.partials.exactValues,
            sequenceStateBytes: config.detections.partials.sequenceStateBytes,
          }
        : undefined,
    ),
    maxCatchUpMs: durationMs(config.detections.maxCatchUp),
    foldWindowMs: durationMs(config.detections.foldWindow),
    leaseMs: durationMs(config.detections.leaseTime),
    ...(options.clock ? { clock: options.clock } : {}),
    onCreated: (incident) => notifier.announce(incident),
    ...(options.onRun ? { onRun: options.onRun } : {}),
  });
  await scheduler.init();
  if (options.schedule) await scheduler.syncSchedules();
  const worker = options.worker ? scheduler.startWorker() : undefined;
  if (options.worker && config.detections.webhooks.length > 0) notifier.startWorker();
  // Runs wait while Elasticsearch refuses writes (flood stage, blocked indices): they would only
  // fail. Their checkpoints hold, so they catch up without a gap once it takes writes again.
  const operations = await startOperations({
    es,
    redis,
    config,
    lifecycle: options.worker ?? false,
    onChange: (health) => {
      if (!worker) return;
      if (health.writes_blocked) void worker.pause(true).catch(() => undefined);
      else worker.resume();
    },
  });
  // Compaction of rule partials (docs/partials.md): every 10 minutes, the days that ended more
  // than compactAfter ago, a few at a time, under a Redis lease so one worker does it.
  let compaction: NodeJS.Timeout | undefined;
  let build: NodeJS.Timeout | undefined;
  let firstBuild: NodeJS.Timeout | undefined;
  if (options.worker && config.detections.partials.enabled) {
    const compactAfter = durationMs(config.detections.partials.compactAfter);
    const lock = redisLock(redis, `${config.redis.prefix}:partials-compaction`, 10 * 60_000);
    compaction = setInterval(() => {
      void lock(() =>
        compactPartials(es, config.elasticsearch.indexPrefix, {
          before: Date.now() - compactAfter,
          exactValues: config.detections.partials.exactValues,
          maxChunks: 3,
        }),
      ).catch((err: Error) =>
        console.error(`compaction of rule partials failed (retried in 10 minutes): ${err.message}`),
      );
    }, 10 * 60_000);
    compaction.unref();
    // The background build of new rule versions' partials (docs/partials.md, "New rule
    // versions"): every minute, the newest uncovered days first, a few per tick, under a lease so
    // one worker builds; what is built stays built, so a restart resumes where it stopped.
    const buildLock = redisLock(redis, `${config.redis.prefix}:partials-build`, 10 * 60_000);
    let building = false;
    const buildTick = () => {
      // a tick still building (a dense day) is not joined by the next one
      if (building) return;
      building = true;
      void buildLock(() =>
        buildPartials(es, config.elasticsearch.indexPrefix, {
          rules: options.rules,
          exactValues: config.detections.partials.exactValues,
          maxDays: 2,
          maxEvents: 1_000_000,
        }),
      )
        .catch((err: Error) =>
          console.error(`background build of rule partials failed (retried in a minute): ${err.message}`),
        )
        .finally(() => {
          building = false;
        });
    };
    build = setInterval(buildTick, 60_000);
    build.unref();
    firstBuild = setTimeout(buildTick, 5_000);
    firstBuild.unref();
  }
  return {
    es,
    redis,
    scheduler,
    notifier,
    operations,
    async close() {
      if (compaction) clearInterval(compaction);
      if (build) clearInterval(build);
      if (firstBuild) clearTimeout(firstBuild);
      await operations.close();
      await scheduler.close();
      await notifier.close();
      redis.disconnect();
      await es.close();
    },
  };
}
