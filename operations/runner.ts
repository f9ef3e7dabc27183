/**
 * Who runs the lifecycle (operations/lifecycle.ts), and when: every worker process (ingest and
 * detection) ticks, and at most one pass runs per `lifecycle.interval` in the whole deployment.
 * A tick takes a lease in Redis (SET NX PX, renewed while the pass runs, like a rule run's);
 * the holder runs only when the last recorded pass is an interval old. A worker that dies mid-
 * pass leaves its lease to expire, and the next tick anywhere runs the pass again (every step is
 * idempotent).
 *
 * Every pass is recorded: the report in `<prefix>-lifecycle-runs` (what `gatewatch status` and
 * the API show, kept as long as rule runs), the last one in Redis (readable while Elasticsearch
 * is not), with metrics.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import { getOrCreateCounter, registry } from '../api/metrics.ts';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { ensureIndex } from '../core/store/elasticsearch.ts';
import { type LifecycleReport, lifecycleRunsIndex, runLifecycle } from './lifecycle.ts';

const runs = getOrCreateCounter('gatewatch_lifecycle_runs_total', 'Lifecycle passes by outcome.', [
  'outcome',
]);
/** Where the API process reads the deployment's last pass from (set by exposeLifecycleMetrics). */
let lastRunSource: { redis: Redis; redisPrefix: string } | undefined;

let reading: { at: number; done: Promise<void> } | undefined;

/** One read of Redis per scrape, shared by the gauges below (collected concurrently). */
async function readLastIntoGauges(): Promise<void> {
  if (!lastRunSource) return;
  const source = lastRunSource;
  if (!reading || Date.now() - reading.at > 1_000)
    reading = {
      at: Date.now(),
      done: lastLifecycleRun(source.redis, source.redisPrefix).then(
        (last) => setLifecycleGauges(last),
        () => undefined,
      ),
    };
  await reading.done;
}

function lifecycleGauge(name: string, help: string): Gauge {
  return (
    (registry.getSingleMetric(name) as Gauge | undefined) ??
    new Gauge({ name, help, registers: [registry], collect: readLastIntoGauges })
  );
}

const lastRun = lifecycleGauge(
  'gatewatch_lifecycle_last_run_timestamp_seconds',
  'When the last lifecycle pass of the deployment finished.',
);
const lastRunOk = lifecycleGauge(
  'gatewatch_lifecycle_last_run_ok',
  'Whether the last lifecycle pass of the deployment went without error (1) or not (0).',
);
const eventIndices = lifecycleGauge(
  'gatewatch_lifecycle_events_indices',
  'Events indices after the last lifecycle pass.',
);
const eventBytes = lifecycleGauge(
  'gatewatch_lifecycle_events_primary_bytes',
  'Primary store size of the events indices after the last lifecycle pass.',
);

/**
 * In a process that does not run the lifecycle (the API), `/metrics` shows the deployment's last
 * pass, read from Redis at each scrape.
 */
export function exposeLifecycleMetrics(redis: Redis, redisPrefix: string): void {
  lastRunSource = { redis, redisPrefix };
}
const deletedIndices = getOrCreateCounter(
  'gatewatch_lifecycle_deleted_indices_total',
  'Events indices deleted past retention.',
);
const deletedDocuments = getOrCreateCounter(
  'gatewatch_lifecycle_deleted_documents_total',
  'Documents deleted past retention, by kind.',
  ['kind'],
);
const rolledOver = getOrCreateCounter('gatewatch_lifecycle_rollovers_total', 'Events index rollovers.', [
  'reason',
]);

export const lifecycleRunMappings = {
  dynamic: false,
  properties: {
    started_at: { type: 'date' },
    finished_at: { type: 'date' },
    duration_ms: { type: 'long' },
    outcome: { type: 'keyword' },
    shards: { type: 'integer' },
  },
} as const;

/** Redis keys of the lifecycle, under the deployment's Redis prefix. */
export function lifecycleKeys(redisPrefix: string) {
  return { lease: `${redisPrefix}:lifecycle:lease`, last: `${redisPrefix}:lifecycle:last` };
}

/** The last recorded pass (from Redis), or undefined when none ran yet. */
export async function lastLifecycleRun(
  redis: Redis,
  redisPrefix: string,
): Promise<LifecycleReport | undefined> {
  const raw = await redis.get(lifecycleKeys(redisPrefix).last);
  return raw ? (JSON.parse(raw) as LifecycleReport) : undefined;
}

/** Publish the last pass's figures as gauges (the API process reads them from Redis on scrape). */
export function setLifecycleGauges(report: LifecycleReport | undefined): void {
  if (!report) return;
  lastRun.set(Date.parse(report.finished_at) / 1000);
  lastRunOk.set(report.outcome === 'ok' ? 1 : 0);
  eventIndices.set(report.events.indices);
  eventBytes.set(report.events.primary_bytes);
}

export interface LifecycleRunnerOptions {
  es: Client;
  redis: Redis;
  config: GatewatchConfig;
  /** How often this process looks whether a pass is due (default: a tenth of the interval, 5 s … 60 s). */
  tickMs?: number;
  clock?: () => number;
  log?: (line: string) => void;
  onRun?: (report: LifecycleReport) => void;
}

export class LifecycleRunner {
  private readonly options: LifecycleRunnerOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<LifecycleReport | undefined> | undefined;
  private installed = false;

  constructor(options: LifecycleRunnerOptions) {
    this.options = options;
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }

  start(): void {
    if (!this.options.config.lifecycle.enabled) return;
    const interval = durationMs(this.options.config.lifecycle.interval);
    const tick = this.options.tickMs ?? Math.min(60_000, Math.max(5_000, Math.floor(interval / 10)));
    // The first look comes soon after start (jittered, so a fleet starting together spreads out).
    const first = setTimeout(() => void this.tick(), Math.floor(Math.random() * Math.min(tick, 5_000)));
    first.unref();
    this.timer = setInterval(() => void this.tick(), tick);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Run a pass if one is due and no other process holds the lease; the report, or undefined. */
  async tick(): Promise<LifecycleReport | undefined> {
    if (this.running) return undefined;
    this.running = this.maybeRun().catch((err) => {
      (this.options.log ?? console.error)(`lifecycle: ${(err as Error).message}`);
      return undefined;
    });
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async maybeRun(): Promise<LifecycleReport | undefined> {
    const { redis, config } = this.options;
    const keys = lifecycleKeys(config.redis.prefix);
    const interval = durationMs(config.lifecycle.interval);
    const leaseMs = Math.max(60_000, Math.min(interval, 10 * 60_000));
    const token = randomUUID();
    if ((await redis.set(keys.lease, token, 'PX', leaseMs, 'NX')) !== 'OK') return undefined;
    const renew = setInterval(
      () =>
        void redis
          .eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
            1,
            keys.lease,
            token,
            String(leaseMs),
          )
          .catch(() => undefined),
      Math.floor(leaseMs / 3),
    );
    try {
      const last = await lastLifecycleRun(redis, config.redis.prefix);
      if (last && this.now() - Date.parse(last.started_at) < interval) return undefined;
      return await this.runNow();
    } finally {
      clearInterval(renew);
      await redis.eval(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
        1,
        keys.lease,
        token,
      );
    }
  }

  /** One pass now, recorded (the caller holds the lease, or runs it by hand). */
  async runNow(): Promise<LifecycleReport> {
    const { es, redis, config } = this.options;
    const prefix = config.elasticsearch.indexPrefix;
    const report = await runLifecycle({
      es,
      config,
      now: this.now(),
      ...(this.options.log ? { log: this.options.log } : {}),
    });
    runs.inc({ outcome: report.outcome });
    deletedIndices.inc(report.deleted_indices.length);
    for (const [kind, n] of Object.entries(report.deleted_documents)) deletedDocuments.inc({ kind }, n);
    for (const r of report.rolled_over) rolledOver.inc({ reason: r.reason });
    setLifecycleGauges(report);
    await redis.set(lifecycleKeys(config.redis.prefix).last, JSON.stringify(report));
    try {
      if (!this.installed) {
        await ensureIndex(es, lifecycleRunsIndex(prefix), {
          settings: { number_of_shards: 1, number_of_replicas: config.elasticsearch.replicas },
          mappings: lifecycleRunMappings,
        });
        this.installed = true;
      }
      await es.index({ index: lifecycleRunsIndex(prefix), id: randomUUID(), document: report });
    } catch (err) {
      // The record in Redis stands; Elasticsearch may be what is failing.
      report.errors.push(`recording the pass: ${(err as Error).message}`);
    }
    const log = this.options.log ?? ((line: string) => console.log(line));
    if (report.errors.length > 0) log(`lifecycle pass with errors: ${report.errors.join('; ')}`);
    else if (
      report.deleted_indices.length +
        report.rolled_over.length +
        report.sealed.length +
        report.created.length >
      0
    )
      log(
        `lifecycle: ${report.rolled_over.length} rolled over, ${report.sealed.length} sealed, ${report.deleted_indices.length} events indices deleted past retention, ${Object.values(report.deleted_documents).reduce((a, b) => a + b, 0)} documents deleted`,
      );
    this.options.onRun?.(report);
    return report;
  }
}
