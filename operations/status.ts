/**
 * One look at a deployment: is everything well, and if not, what to do. `gatewatch status` prints
 * it, `GET /api/v1/status` serves it. Read from the servers themselves (Elasticsearch, Redis, the
 * queues, the run records), so it describes every process of the deployment, not the one asking.
 *
 *   Elasticsearch   cluster health, nodes, disk per data node against its watermarks, push-back
 *   Redis           memory against maxmemory, eviction policy, persistence (AOF, snapshots)
 *   queues          ingest and detection queues; per source: batches waiting and how long the
 *                   oldest has waited (lag)
 *   dead letters    per hour over the last day
 *   rules           runs behind their schedule, last runs failed or degraded
 *   retention       the policy and the lifecycle's last pass
 *
 * Every problem comes as a warning with the action that fixes it.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { createQueue, displayUrl } from '../core/queue/bullmq.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { RAW_QUEUE } from '../ingest/pipeline/batch.ts';
import type { LifecycleReport } from './lifecycle.ts';
import { lastLifecycleRun } from './runner.ts';
import { DISK_ACTION, gib, readStoreHealth, type StoreHealth } from './store-health.ts';

export type WarningLevel = 'warning' | 'critical';

export interface StatusWarning {
  component: 'elasticsearch' | 'redis' | 'queues' | 'sources' | 'dead_letters' | 'rules' | 'retention';
  level: WarningLevel;
  message: string;
  action: string;
}

export interface QueueStatus {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  /** Seconds the oldest waiting job has waited (null: none waiting). */
  oldest_waiting_seconds: number | null;
}

export interface StatusReport {
  at: string;
  /** No warnings at all. */
  ok: boolean;
  elasticsearch: {
    reachable: boolean;
    error: string | null;
    cluster: string | null;
    health: 'green' | 'yellow' | 'red' | null;
    nodes: number;
    data_nodes: number;
    unassigned_shards: number;
    disk: {
      node: string;
      used_percent: number;
      free_bytes: number;
      watermark: 'none' | 'low' | 'high' | 'flood_stage';
    }[];
    watermarks: { low: string; high: string; flood_stage: string; enabled: boolean };
    push_back: string | null;
    blocked_indices: string[];
  };
  redis: {
    reachable: boolean;
    error: string | null;
    version: string | null;
    used_memory_bytes: number | null;
    maxmemory_bytes: number | null;
    maxmemory_policy: string | null;
    aof_enabled: boolean | null;
    aof_last_write_ok: boolean | null;
    last_snapshot_at: string | null;
    last_snapshot_ok: boolean | null;
  };
  queues: { ingest: QueueStatus | null; detection: QueueStatus | null };
  sources: {
    name: string;
    type: string;
    /** Batches of this source waiting or being processed. */
    queued_batches: number;
    /** Seconds its oldest queued batch has waited (null: none queued). */
    lag_seconds: number | null;
    last_stored_at: string | null;
  }[];
  dead_letters: { last_hour: number; last_24h: number; per_hour: { hour: string; count: number }[] };
  rules: {
    enabled: number;
    late: { rule: string; covered_until: string | null; behind_seconds: number }[];
    failing: { rule: string; outcome: string; at: string; reason: string }[];
  };
  retention: {
    policy: GatewatchConfig['retention'];
    lifecycle: { enabled: boolean; interval: string };
    last_run: Pick<
      LifecycleReport,
      | 'started_at'
      | 'finished_at'
      | 'outcome'
      | 'deleted_indices'
      | 'deleted_documents'
      | 'remaining_documents'
      | 'rolled_over'
      | 'sealed'
      | 'errors'
      | 'events'
      | 'mapping_conflicts'
    > | null;
    next_due_at: string | null;
  };
  warnings: StatusWarning[];
}

export interface StatusRule {
  id: string;
  intervalMs: number;
  latenessMs: number;
}

export interface StatusOptions {
  es: Client;
  /** Absent when it could not be reached (`redisError` says why). */
  redis: Redis | undefined;
  redisError?: string;
  config: GatewatchConfig;
  /** The enabled rules (for late runs); absent: rules are not checked. */
  rules?: StatusRule[];
  /** A reading already at hand (the API's watch); else one is made. */
  storeHealth?: StoreHealth;
  now?: number;
}

const settled = async <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> => {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
};

function redisField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:([^\\r\\n]*)`, 'm').exec(info)?.[1];
}

async function queueStatus(queue: Queue, redis: Redis, now: number): Promise<QueueStatus> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
  const [oldest] = await queue.getRanges(['waiting', 'prioritized'], 0, 0, true);
  const ts = oldest ? Number(await redis.hget(queue.toKey(oldest), 'timestamp')) : Number.NaN;
  return {
    waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
    active: counts.active ?? 0,
    delayed: counts.delayed ?? 0,
    failed: counts.failed ?? 0,
    oldest_waiting_seconds: Number.isFinite(ts) ? Math.max(0, Math.round((now - ts) / 1000)) : null,
  };
}

/** The source name in an ingest job id (`<source>-<32 characters of hash>`, see batchJobId). */
function sourceOfJob(id: string): string | undefined {
  return id.length > 33 && id[id.length - 33] === '-' ? id.slice(0, -33) : undefined;
}

export async function deploymentStatus(options: StatusOptions): Promise<StatusReport> {
  const { es, redis, config } = options;
  const now = options.now ?? Date.now();
  const prefix = config.elasticsearch.indexPrefix;
  const queuePrefix = config.redis.prefix;
  const warnings: StatusWarning[] = [];
  const warn = (w: StatusWarning) => warnings.push(w);

  // Elasticsearch
  const health = options.storeHealth ?? (await readStoreHealth(es, prefix, now));
  const elasticsearch: StatusReport['elasticsearch'] = {
    reachable: health.reachable,
    error: health.error ?? null,
    cluster: health.cluster?.name ?? null,
    health: health.cluster?.status ?? null,
    nodes: health.cluster?.nodes ?? 0,
    data_nodes: health.cluster?.data_nodes ?? 0,
    unassigned_shards: health.cluster?.unassigned_shards ?? 0,
    disk: health.nodes.map((n) => ({
      node: n.name,
      used_percent: Math.round(n.used_ratio * 1000) / 10,
      free_bytes: n.available_bytes,
      watermark:
        n.level === 'ok' ? ('none' as const) : n.level === 'flood' ? ('flood_stage' as const) : n.level,
    })),
    watermarks: { ...health.watermarks, enabled: health.threshold_enabled },
    push_back: health.push_back ?? null,
    blocked_indices: health.blocked,
  };
  if (!health.reachable)
    warn({
      component: 'elasticsearch',
      level: 'critical',
      message: `Elasticsearch at ${config.elasticsearch.url
        .split(',')
        .map((u) => displayUrl(u.trim()))
        .join(', ')} does not answer: ${health.error}`,
      action:
        'start it or fix elasticsearch.url / credentials; ingest keeps batches queued in Redis and detection catches up afterwards',
    });
  else {
    const c = health.cluster!;
    if (c.status === 'red')
      warn({
        component: 'elasticsearch',
        level: 'critical',
        message: `cluster health is red: ${c.unassigned_shards} shards unassigned, some primaries missing`,
        action:
          'bring back the missing nodes; GET _cluster/allocation/explain says why a shard is unassigned',
      });
    else if (c.status === 'yellow')
      warn({
        component: 'elasticsearch',
        level: 'warning',
        message: `cluster health is yellow: ${c.unassigned_shards} replica shards unassigned`,
        action:
          c.data_nodes < 2
            ? 'one data node cannot hold replicas: set elasticsearch.replicas to 0, or add a node'
            : 'wait for recovery after a node returned, or bring back the missing node',
      });
    for (const n of health.nodes) {
      if (n.level === 'ok') continue;
      const pct = (n.used_ratio * 100).toFixed(1);
      warn({
        component: 'elasticsearch',
        level: n.level === 'low' ? 'warning' : 'critical',
        message:
          n.level === 'low'
            ? `disk of ${n.name} is ${pct} % full (${gib(n.available_bytes)} free), past the low watermark (${health.watermarks.low})`
            : n.level === 'high'
              ? `disk of ${n.name} is ${pct} % full (${gib(n.available_bytes)} free), past the high watermark (${health.watermarks.high})${health.threshold_enabled ? ': Gatewatch pushes back on senders' : ''}`
              : `disk of ${n.name} is ${pct} % full (${gib(n.available_bytes)} free), past the flood stage (${health.watermarks.flood_stage})${health.threshold_enabled ? ': Elasticsearch refuses writes, Gatewatch holds ingest and detection' : ''}`,
        action: DISK_ACTION,
      });
    }
    if (health.blocked.length > 0)
      warn({
        component: 'elasticsearch',
        level: 'critical',
        message: `${health.blocked.length} indices are read-only (${health.blocked.slice(0, 3).join(', ')})`,
        action: `${DISK_ACTION}; Elasticsearch lifts the flood-stage block itself once the disk is below the high watermark`,
      });
    if (!health.threshold_enabled)
      warn({
        component: 'elasticsearch',
        level: 'warning',
        message:
          'Elasticsearch does not guard its disks (cluster.routing.allocation.disk.threshold_enabled: false)',
        action:
          'enable it, so a full disk makes indices read-only (and Gatewatch push back) rather than corrupting writes',
      });
  }

  // Redis
  const info = redis
    ? await settled(redis.info())
    : { ok: false as const, error: options.redisError ?? 'no connection' };
  const policy = redis ? await settled(redis.config('GET', 'maxmemory-policy') as Promise<string[]>) : info;
  let redisStatus: StatusReport['redis'];
  if (!info.ok) {
    redisStatus = {
      reachable: false,
      error: info.error,
      version: null,
      used_memory_bytes: null,
      maxmemory_bytes: null,
      maxmemory_policy: null,
      aof_enabled: null,
      aof_last_write_ok: null,
      last_snapshot_at: null,
      last_snapshot_ok: null,
    };
    warn({
      component: 'redis',
      level: 'critical',
      message: `Redis at ${displayUrl(config.redis.url)} does not answer: ${info.error}`,
      action: 'start it or fix redis.url; sources push back (HTTP 503, paused reads) until it answers',
    });
  } else {
    const text = info.value;
    const used = Number(redisField(text, 'used_memory') ?? 0);
    const max = Number(redisField(text, 'maxmemory') ?? 0);
    const policyName = policy.ok ? (policy.value[1] ?? null) : (redisField(text, 'maxmemory_policy') ?? null);
    const lastSave = Number(redisField(text, 'rdb_last_save_time') ?? 0);
    redisStatus = {
      reachable: true,
      error: null,
      version: redisField(text, 'redis_version') ?? null,
      used_memory_bytes: used,
      maxmemory_bytes: max,
      maxmemory_policy: policyName,
      aof_enabled: redisField(text, 'aof_enabled') === '1',
      aof_last_write_ok:
        redisField(text, 'aof_last_write_status') === undefined
          ? null
          : redisField(text, 'aof_last_write_status') === 'ok',
      last_snapshot_at: lastSave > 0 ? new Date(lastSave * 1000).toISOString() : null,
      last_snapshot_ok:
        redisField(text, 'rdb_last_bgsave_status') === undefined
          ? null
          : redisField(text, 'rdb_last_bgsave_status') === 'ok',
    };
    if (policyName !== null && policyName !== 'noeviction')
      warn({
        component: 'redis',
        level: 'critical',
        message: `maxmemory-policy is ${policyName}: Redis may evict queued batches`,
        action: 'CONFIG SET maxmemory-policy noeviction (and in redis.conf)',
      });
    if (max > 0 && used / max >= 0.8)
      warn({
        component: 'redis',
        level: used / max >= 0.95 ? 'critical' : 'warning',
        message: `Redis uses ${gib(used)} of its ${gib(max)} maxmemory (${((used / max) * 100).toFixed(0)} %)`,
        action:
          'the ingest queue is backing up: add ingest workers, check Elasticsearch takes writes, or raise maxmemory',
      });
    if (max === 0)
      warn({
        component: 'redis',
        level: 'warning',
        message: 'Redis has no maxmemory: a backlog can take all the memory of its machine',
        action:
          'set maxmemory (with maxmemory-policy noeviction): sources then push back before the machine runs out',
      });
    if (redisStatus.aof_enabled === false)
      warn({
        component: 'redis',
        level: 'warning',
        message:
          'Redis persists by snapshots only (appendonly no): a crash loses the batches queued since the last one',
        action: 'CONFIG SET appendonly yes, appendfsync everysec (and in redis.conf)',
      });
    if (redisStatus.aof_last_write_ok === false && redisStatus.aof_enabled)
      warn({
        component: 'redis',
        level: 'critical',
        message: 'Redis cannot write its append-only file',
        action: "check the disk of Redis's data directory (full, read-only)",
      });
    if (redisStatus.last_snapshot_ok === false)
      warn({
        component: 'redis',
        level: 'warning',
        message: 'the last Redis snapshot (BGSAVE) failed',
        action: "check the disk and memory of Redis's machine (fork needs memory)",
      });
  }

  // Queues and sources
  let ingestQueue: QueueStatus | null = null;
  let detectQueue: QueueStatus | null = null;
  const sources: StatusReport['sources'] = [];
  if (redis && redisStatus.reachable) {
    const raw = createQueue(RAW_QUEUE, { producer: redis, prefix: queuePrefix });
    const detect = createQueue('detect-runs', { producer: redis, prefix: queuePrefix });
    try {
      ingestQueue = await queueStatus(raw, redis, now);
      detectQueue = await queueStatus(detect, redis, now);
      // Per source: batches queued (from the job ids, which carry the source) and the oldest one's age.
      const ids = await raw.getRanges(['waiting', 'prioritized', 'active', 'delayed'], 0, 49_999, true);
      const bySource = new Map<string, { n: number; oldest: string }>();
      for (const id of ids) {
        const source = sourceOfJob(id);
        if (!source) continue;
        const s = bySource.get(source);
        if (s) s.n++;
        else bySource.set(source, { n: 1, oldest: id });
      }
      for (const source of config.ingest.sources) {
        const q = bySource.get(source.name);
        const ts = q ? Number(await redis.hget(raw.toKey(q.oldest), 'timestamp')) : Number.NaN;
        const lastBatch = await redis.hget(`${queuePrefix}:source-stats:${source.name}`, 'last_batch_at');
        sources.push({
          name: source.name,
          type: source.type,
          queued_batches: q?.n ?? 0,
          lag_seconds: Number.isFinite(ts) ? Math.max(0, Math.round((now - ts) / 1000)) : null,
          last_stored_at: lastBatch ? new Date(Number(lastBatch)).toISOString() : null,
        });
      }
    } finally {
      await raw.close();
      await detect.close();
    }
    const hwm = config.ingest.highWaterMark;
    if (ingestQueue) {
      const depth = ingestQueue.waiting + ingestQueue.active + ingestQueue.delayed;
      if (depth >= hwm * 0.8)
        warn({
          component: 'queues',
          level: depth >= hwm ? 'critical' : 'warning',
          message: `the ingest queue holds ${depth} batches (high-water mark ${hwm}${depth >= hwm ? ': sources push back' : ''})`,
          action:
            'add ingest workers (gatewatch ingest worker), or check why they cannot write to Elasticsearch',
        });
      if ((ingestQueue.oldest_waiting_seconds ?? 0) > 300)
        warn({
          component: 'queues',
          level: 'warning',
          message: `the oldest ingest batch has waited ${ingestQueue.oldest_waiting_seconds} s`,
          action: 'are ingest workers running? add some, or see why they are paused (Elasticsearch disk)',
        });
      if (ingestQueue.failed > 0)
        warn({
          component: 'queues',
          level: 'warning',
          message: `${ingestQueue.failed} ingest batches failed for good (their workers crashed on them repeatedly)`,
          action: `look at them in Redis (${queuePrefix}:${RAW_QUEUE}:failed) and the workers' logs`,
        });
    }
    for (const s of sources)
      if ((s.lag_seconds ?? 0) > 300)
        warn({
          component: 'sources',
          level: 'warning',
          message: `source ${s.name}: its oldest queued batch has waited ${s.lag_seconds} s`,
          action: 'add ingest workers; the source pushes back while the queue is full',
        });
  }

  // Dead letters per hour
  const deadLetters: StatusReport['dead_letters'] = { last_hour: 0, last_24h: 0, per_hour: [] };
  const dl = await settled(
    es.search({
      index: indexNames(prefix).deadLetters,
      size: 0,
      ignore_unavailable: true,
      allow_no_indices: true,
      query: { range: { '@timestamp': { gte: now - 86_400_000, format: 'epoch_millis' } } },
      aggs: {
        hours: {
          date_histogram: { field: '@timestamp', fixed_interval: '1h', min_doc_count: 1 },
        },
      },
    }),
  );
  if (dl.ok) {
    const buckets =
      (dl.value.aggregations?.hours as { buckets?: { key: number; doc_count: number }[] } | undefined)
        ?.buckets ?? [];
    deadLetters.per_hour = buckets.map((b) => ({ hour: new Date(b.key).toISOString(), count: b.doc_count }));
    deadLetters.last_24h = buckets.reduce((s, b) => s + b.doc_count, 0);
    const lastHour = await settled(
      es.count({
        index: indexNames(prefix).deadLetters,
        ignore_unavailable: true,
        allow_no_indices: true,
        query: { range: { '@timestamp': { gte: now - 3_600_000, format: 'epoch_millis' } } },
      }),
    );
    if (lastHour.ok) deadLetters.last_hour = lastHour.value.count;
    if (deadLetters.last_hour > 0)
      warn({
        component: 'dead_letters',
        level: 'warning',
        message: `${deadLetters.last_hour} records became dead letters in the last hour (${deadLetters.last_24h} in 24 h)`,
        action:
          'gatewatch ingest dead-letters list shows why; fix the source or its format, then gatewatch ingest dead-letters replay',
      });
  }

  // Rules: behind their schedule (checkpoint) or failing (last run)
  const rulesStatus: StatusReport['rules'] = { enabled: options.rules?.length ?? 0, late: [], failing: [] };
  if (options.rules && redis && redisStatus.reachable) {
    const checkpoints = await redis.hgetall(`${queuePrefix}:detect:checkpoints`);
    for (const rule of options.rules) {
      const cp = checkpoints[rule.id] === undefined ? undefined : Number(checkpoints[rule.id]);
      const due = now - rule.latenessMs;
      const behind = cp === undefined ? undefined : due - cp;
      if (behind !== undefined && behind > Math.max(2 * rule.intervalMs, rule.intervalMs + 60_000))
        rulesStatus.late.push({
          rule: rule.id,
          covered_until: new Date(cp!).toISOString(),
          behind_seconds: Math.round(behind / 1000),
        });
    }
    const last = await settled(
      es.search({
        index: indexNames(prefix).ruleRuns,
        size: 0,
        ignore_unavailable: true,
        allow_no_indices: true,
        query: {
          bool: {
            filter: [{ range: { finished_at: { gte: now - 86_400_000, format: 'epoch_millis' } } }],
            must_not: [{ term: { outcome: 'skipped' } }],
          },
        },
        aggs: {
          rules: {
            terms: { field: 'rule_id', size: Math.max(10, options.rules.length) },
            aggs: {
              last: {
                top_hits: {
                  size: 1,
                  sort: [{ finished_at: 'desc' }],
                  _source: ['outcome', 'finished_at', 'error', 'degraded_reason'],
                },
              },
            },
          },
        },
      }),
    );
    if (last.ok) {
      const enabled = new Set(options.rules.map((r) => r.id));
      const buckets = (
        last.value.aggregations?.rules as {
          buckets?: { key: string; last: { hits: { hits: { _source: Record<string, string> }[] } } }[];
        }
      )?.buckets;
      for (const b of buckets ?? []) {
        const run = b.last.hits.hits[0]?._source;
        if (!run || !enabled.has(b.key) || run.outcome === 'ok') continue;
        rulesStatus.failing.push({
          rule: b.key,
          outcome: run.outcome ?? 'unknown',
          at: run.finished_at ?? '',
          reason: run.error ?? run.degraded_reason ?? '',
        });
      }
    }
    if (rulesStatus.late.length > 0)
      warn({
        component: 'rules',
        level: 'warning',
        message: `${rulesStatus.late.length} rules are behind their schedule (${rulesStatus.late
          .slice(0, 3)
          .map((r) => `${r.rule} by ${r.behind_seconds} s`)
          .join(', ')}${rulesStatus.late.length > 3 ? ', …' : ''})`,
        action:
          'are detection workers running (gatewatch detect worker)? Add some if they are busy; runs catch up from their checkpoints without gaps',
      });
    for (const f of rulesStatus.failing)
      warn({
        component: 'rules',
        level: 'warning',
        message: `rule ${f.rule}: last run ${f.outcome} at ${f.at}${f.reason ? `: ${f.reason}` : ''}`,
        action:
          f.outcome === 'degraded'
            ? 'the rule reads more than it may (detections.maxGroups): narrow its filter or group'
            : 'see the run history (GET /api/v1/rules/{id}/runs); the range is retried by the next run',
      });
  }

  // Retention and the lifecycle
  const interval = durationMs(config.lifecycle.interval);
  const last =
    redis && redisStatus.reachable
      ? await lastLifecycleRun(redis, queuePrefix).catch(() => undefined)
      : undefined;
  const retention: StatusReport['retention'] = {
    policy: config.retention,
    lifecycle: { enabled: config.lifecycle.enabled, interval: config.lifecycle.interval },
    last_run: last
      ? {
          started_at: last.started_at,
          finished_at: last.finished_at,
          outcome: last.outcome,
          deleted_indices: last.deleted_indices,
          deleted_documents: last.deleted_documents,
          remaining_documents: last.remaining_documents,
          rolled_over: last.rolled_over,
          sealed: last.sealed,
          errors: last.errors,
          events: last.events,
          mapping_conflicts: last.mapping_conflicts,
        }
      : null,
    next_due_at: last ? new Date(Date.parse(last.started_at) + interval).toISOString() : null,
  };
  if (!config.lifecycle.enabled)
    warn({
      component: 'retention',
      level: 'warning',
      message: 'the index lifecycle is off (lifecycle.enabled: false): nothing is rolled over or deleted',
      action: 'turn it on, or run your own retention (the disk fills up otherwise)',
    });
  else if (!last)
    warn({
      component: 'retention',
      level: 'warning',
      message: 'the index lifecycle has not run yet',
      action: 'it runs in ingest and detection workers: start one (gatewatch ingest worker)',
    });
  else {
    if (now - Date.parse(last.started_at) > 2 * interval + 5 * 60_000)
      warn({
        component: 'retention',
        level: 'warning',
        message: `the index lifecycle last ran at ${last.started_at}, more than two intervals (${config.lifecycle.interval}) ago`,
        action: 'are ingest or detection workers running? The lifecycle runs in them',
      });
    if (last.outcome === 'error')
      warn({
        component: 'retention',
        level: 'warning',
        message: `the last lifecycle pass had errors: ${last.errors.join('; ')}`,
        action: "see the workers' logs; the next pass retries every step",
      });
    for (const conflict of last.mapping_conflicts)
      warn({
        component: 'retention',
        level: 'warning',
        message: conflict.split(': ')[0]!,
        action: conflict.split(': ').slice(1).join(': '),
      });
  }

  return {
    at: new Date(now).toISOString(),
    ok: warnings.length === 0,
    elasticsearch,
    redis: redisStatus,
    queues: { ingest: ingestQueue, detection: detectQueue },
    sources,
    dead_letters: deadLetters,
    rules: rulesStatus,
    retention,
    warnings,
  };
}
