/**
 * Scheduling detection rules without gaps or duplicates.
 *
 * - Every enabled rule has a BullMQ job scheduler firing on its interval; any number of
 *   detection workers consume the runs.
 * - One execution per rule at a time: a run takes a Redis lease (SET NX PX) on the rule; a run
 *   that finds it taken ends as "skipped" (the running one will move the checkpoint on).
 * - Each rule has a durable checkpoint (Redis, AOF): the end of the last range fully processed.
 *   A run covers [checkpoint − look-back, now − lateness); after downtime it catches up in
 *   steps of at most `maxCatchUpMs`, advancing the checkpoint after each step, so no range is
 *   skipped and a crash repeats at most one step. Incidents are idempotent (see
 *   ../incidents/writer.ts), so repeats and overlaps never duplicate them.
 * - Every run is recorded: range, duration, outcome, counts, Elasticsearch/worker time.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createQueue, createWorker } from '../../core/queue/bullmq.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { ensureIndex, indexNames } from '../../core/store/elasticsearch.ts';
import type { RuleIR } from '../../parser/ir.ts';
import { formatDuration, ruleNeeds } from '../coverage.ts';
import { ElasticsearchExceptionStore, type ExceptionStore } from '../exceptions.ts';
import {
  elasticsearchEntityNames,
  elasticsearchIncidentStore,
  ensureIncidentIndex,
} from '../incidents/es-store.ts';
import { type IncidentStore, type WriteOutcome, writeIncidents } from '../incidents/writer.ts';
import { redisLock } from './lock.ts';

export const DETECT_QUEUE = 'detect-runs';

export interface TimeRange {
  start: number;
  end: number;
}

export interface RuleRunResult {
  incidents: Incident[];
  detections: number;
  degraded?: { reason: string };
  esMs: number;
  workerMs: number;
  /** (group, bucket) cells read from aggregations, when the executor counts them. */
  cells?: number;
  /** What the run read from rule partials (docs/partials.md), when it read any. */
  partials?: RunPartials;
  /** How the run read, for its record (e.g. days read from raw events and why). */
  note?: string;
  /** Events read from Elasticsearch, when the executor counts them (sequence rules). */
  eventsRead?: number;
  /**
   * Work to do once the run's incidents are written and before its checkpoint moves (a sequence
   * rule keeps its state at the range end); returns what the run record should add to its note.
   */
  commit?: () => Promise<string | undefined>;
}

/** A run's use of rule partials: days read from partials, days read raw, groups re-read raw. */
export interface RunPartials {
  chunks: number;
  raw_chunks: number;
  reread_groups: number;
}

/**
 * What a scheduled run knows beyond its range: its checkpoint, the end of the range processed
 * before (the range's new part starts there; none on a rule's first run).
 */
export interface RunContext {
  checkpoint?: number;
}

/** Runs one rule over one range (Elasticsearch in the distributed mode). */
export type RuleExecutor = (
  rule: RuleIR,
  range: TimeRange,
  now: number,
  context?: RunContext,
) => Promise<RuleRunResult>;

export type RunOutcome = 'ok' | 'degraded' | 'error' | 'skipped';

export interface RunRecord {
  id: string;
  rule_id: string;
  rule_version: string;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  range_start: string;
  range_end: string;
  outcome: RunOutcome;
  detections: number;
  incidents_created: number;
  incidents_updated: number;
  incidents_suppressed: number;
  /** Detections folded into an open incident of their entity. */
  incidents_folded?: number;
  /** Detections dropped by the rule's exceptions (detections/exceptions.ts). */
  incidents_excepted?: number;
  es_ms: number;
  worker_ms: number;
  /** (group, bucket) cells the run read from aggregations: what threshold and baseline runs cost. */
  cells_read?: number;
  /** What the run read from rule partials, when it read any (docs/partials.md). */
  partials?: RunPartials;
  /** Events the run read from Elasticsearch, when counted (sequence rules). */
  events_read?: number;
  /**
   * Why the run could not decide everything it looks at, although nothing failed: e.g. a
   * baseline with less history than its minimum ("needs 12h of history before it compares; the
   * events begin 2h before this run").
   */
  note?: string;
  degraded_reason?: string;
  error?: string;
}

export const runRecordMappings = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    rule_id: { type: 'keyword' },
    rule_version: { type: 'keyword' },
    started_at: { type: 'date' },
    finished_at: { type: 'date' },
    duration_ms: { type: 'long' },
    range_start: { type: 'date' },
    range_end: { type: 'date' },
    outcome: { type: 'keyword' },
    detections: { type: 'long' },
    incidents_created: { type: 'long' },
    incidents_updated: { type: 'long' },
    incidents_suppressed: { type: 'long' },
    incidents_folded: { type: 'long' },
    incidents_excepted: { type: 'long' },
    es_ms: { type: 'long' },
    worker_ms: { type: 'long' },
    cells_read: { type: 'long' },
    events_read: { type: 'long' },
    partials: {
      properties: {
        chunks: { type: 'long' },
        raw_chunks: { type: 'long' },
        reread_groups: { type: 'long' },
      },
    },
    note: { type: 'keyword' },
    degraded_reason: { type: 'keyword' },
    error: { type: 'keyword', index: false, doc_values: false },
  },
} as const;

/** A run record with zero counts, to be filled in by the run. */
export function newRunRecord(
  rule: RuleIR,
  range: TimeRange,
  startedAt: string,
  outcome: RunOutcome,
  durationMs: number,
): RunRecord {
  return {
    id: randomUUID(),
    rule_id: rule.id,
    rule_version: rule.version,
    started_at: startedAt,
    finished_at: new Date(Date.parse(startedAt) + durationMs).toISOString(),
    duration_ms: durationMs,
    range_start: new Date(range.start).toISOString(),
    range_end: new Date(range.end).toISOString(),
    outcome,
    detections: 0,
    incidents_created: 0,
    incidents_updated: 0,
    incidents_suppressed: 0,
    es_ms: 0,
    worker_ms: 0,
  };
}

export interface SchedulerOptions {
  es: Client;
  /** Producer connection (fail fast) for the queue, leases and checkpoints. */
  redis: Redis;
  redisUrl: string;
  /** Elasticsearch index prefix. */
  prefix: string;
  /** BullMQ / Redis key prefix. */
  queuePrefix: string;
  rules: RuleIR[];
  execute: RuleExecutor;
  maxCatchUpMs: number;
  /** Detections on an open incident's entity within this span fold into it (`detections.foldWindow`). */
  foldWindowMs?: number;
  /** Lease on a rule while it runs; a crashed run's lease expires after this. */
  leaseMs?: number;
  clock?: () => number;
  /** Called with every incident created (notifications). */
  onCreated?: (incident: Incident) => Promise<void> | void;
  onRun?: (record: RunRecord) => void;
  /** Where the rules' exceptions are read (default: Elasticsearch, same prefix). */
  exceptions?: ExceptionStore;
}

export class DetectionScheduler {
  readonly queue: Queue<{ ruleId: string }>;
  private readonly options: SchedulerOptions;
  private rules: Map<string, RuleIR>;
  private worker?: Worker<{ ruleId: string }, RunRecord[]>;
  private readonly incidents: IncidentStore;
  private readonly exceptions: ExceptionStore;

  constructor(options: SchedulerOptions) {
    this.options = options;
    this.incidents = elasticsearchIncidentStore(options.es, options.prefix);
    this.exceptions = options.exceptions ?? new ElasticsearchExceptionStore(options.es, options.prefix);
    this.rules = new Map(options.rules.map((r) => [r.id, r]));
    this.queue = createQueue<{ ruleId: string }>(
      DETECT_QUEUE,
      { producer: options.redis, prefix: options.queuePrefix },
      {
        defaultJobOptions: {
          attempts: 3,
          backoff: { type: 'exponential', delay: 2_000 },
          removeOnComplete: 1_000,
        },
      },
    );
  }

  private key(name: string): string {
    return `${this.options.queuePrefix}:detect:${name}`;
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }

  async init(): Promise<void> {
    await ensureIncidentIndex(this.options.es, this.options.prefix);
    await this.exceptions.install();
    await ensureIndex(this.options.es, indexNames(this.options.prefix).ruleRuns, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: runRecordMappings,
    });
    // An index made by an earlier version lacks the fields added since (its mapping is strict).
    await this.options.es.indices.putMapping({
      index: indexNames(this.options.prefix).ruleRuns,
      properties: runRecordMappings.properties as never,
    });
  }

  /** Create, update or remove BullMQ job schedulers so they match the enabled rules. */
  async syncSchedules(): Promise<void> {
    const existing = await this.queue.getJobSchedulers();
    const wanted = new Set<string>();
    for (const rule of this.rules.values()) {
      if (!rule.enabled) continue;
      wanted.add(rule.id);
      await this.queue.upsertJobScheduler(
        rule.id,
        { every: rule.schedule.intervalMs },
        { name: 'run', data: { ruleId: rule.id } },
      );
    }
    for (const s of existing) if (s.key && !wanted.has(s.key)) await this.queue.removeJobScheduler(s.key);
  }

  setRules(rules: RuleIR[]): void {
    this.rules = new Map(rules.map((r) => [r.id, r]));
  }

  startWorker(concurrency = 2): Worker<{ ruleId: string }, RunRecord[]> {
    this.worker = createWorker<{ ruleId: string }, RunRecord[]>(
      DETECT_QUEUE,
      async (job) => this.runRule(job.data.ruleId),
      { redisUrl: this.options.redisUrl, prefix: this.options.queuePrefix },
      { concurrency },
    );
    return this.worker;
  }

  async getCheckpoint(ruleId: string): Promise<number | undefined> {
    const raw = await this.options.redis.hget(this.key('checkpoints'), ruleId);
    return raw === null ? undefined : Number(raw);
  }

  async setCheckpoint(ruleId: string, end: number): Promise<void> {
    await this.options.redis.hset(this.key('checkpoints'), ruleId, String(end));
  }

  /**
   * Run a rule now: all ranges from its checkpoint up to now − lateness, in bounded steps.
   * Returns one record per step (or one "skipped" record when another run holds the rule).
   */
  async runRule(ruleId: string): Promise<RunRecord[]> {
    const rule = this.rules.get(ruleId);
    if (!rule) return [];
    const leaseKey = this.key(`lease:${ruleId}`);
    const token = randomUUID();
    const leaseMs = this.options.leaseMs ?? 5 * 60_000;
    const acquired = await this.options.redis.set(leaseKey, token, 'PX', leaseMs, 'NX');
    if (acquired !== 'OK') {
      const at = new Date(this.now()).toISOString();
      const record = newRunRecord(rule, { start: 0, end: 0 }, at, 'skipped', 0);
      return [record];
    }
    const records: RunRecord[] = [];
    try {
      const target = this.now() - rule.schedule.latenessMs;
      for (;;) {
        const checkpoint = await this.getCheckpoint(ruleId);
        const from = checkpoint ?? target - rule.schedule.lookbackMs;
        if (checkpoint !== undefined && checkpoint >= target) break;
        const end = Math.min(target, from + this.options.maxCatchUpMs);
        const range = { start: (checkpoint ?? end) - rule.schedule.lookbackMs, end };
        const record = await this.runRange(rule, range, checkpoint);
        records.push(record);
        if (record.outcome === 'error') throw new Error(record.error);
        await this.setCheckpoint(ruleId, end);
        // Keep the lease while catching up.
        await this.options.redis.pexpire(leaseKey, leaseMs);
        if (end >= target) break;
      }
    } finally {
      // Release only our own lease.
      const current = await this.options.redis.get(leaseKey);
      if (current === token) await this.options.redis.del(leaseKey);
    }
    return records;
  }

  private async runRange(rule: RuleIR, range: TimeRange, checkpoint: number | undefined): Promise<RunRecord> {
    const started = performance.now();
    const startedAt = new Date(this.now()).toISOString();
    let record: RunRecord;
    try {
      const result = await this.options.execute(
        rule,
        range,
        this.now(),
        checkpoint !== undefined ? { checkpoint } : {},
      );
      const history = await this.historyNote(rule, range);
      const suppress = rule.output.suppress;
      const now = this.now();
      const exceptions = await this.exceptions.list({ rule_id: rule.id, activeAt: now });
      const written: WriteOutcome = await writeIncidents(this.incidents, result.incidents, {
        ...(suppress ? { suppression: { periodMs: suppress.periodMs } } : {}),
        ...(this.options.foldWindowMs !== undefined ? { foldWindowMs: this.options.foldWindowMs } : {}),
        // Rules run on several workers at once: one fold at a time across them.
        lock: redisLock(this.options.redis, this.key('incident-fold'), 30_000),
        names: elasticsearchEntityNames(this.options.es, this.options.prefix),
        exceptions: { list: exceptions, now },
      });
      // After the incidents, before the checkpoint (runRule moves it once this returns).
      const committed = result.commit
        ? await result.commit().catch((err: Error) => `sequence state not kept: ${err.message}`)
        : undefined;
      const note = [history, result.note, committed].filter((n) => n !== undefined).join('; ') || undefined;
      record = {
        ...newRunRecord(
          rule,
          range,
          startedAt,
          result.degraded ? 'degraded' : 'ok',
          Math.round(performance.now() - started),
        ),
        detections: result.detections,
        incidents_created: written.created.length,
        incidents_updated: written.updated.length,
        incidents_suppressed: written.suppressed.length,
        incidents_folded: written.folded.length,
        incidents_excepted: written.excepted.length,
        es_ms: Math.round(result.esMs),
        worker_ms: Math.round(result.workerMs),
        ...(result.cells !== undefined ? { cells_read: result.cells } : {}),
        ...(result.eventsRead !== undefined ? { events_read: result.eventsRead } : {}),
        ...(result.partials ? { partials: result.partials } : {}),
        ...(note ? { note } : {}),
        ...(result.degraded ? { degraded_reason: result.degraded.reason } : {}),
      };
      if (this.options.onCreated) {
        const created = new Set(written.created);
        for (const incident of result.incidents)
          if (created.has(incident.id)) await this.options.onCreated(incident);
      }
    } catch (err) {
      record = {
        ...newRunRecord(rule, range, startedAt, 'error', Math.round(performance.now() - started)),
        error: (err as Error).message,
      };
    }
    await this.options.es.index({
      index: indexNames(this.options.prefix).ruleRuns,
      id: record.id,
      document: record,
      // Visible at once to run-history reads (e.g. the API right after "run now").
      refresh: 'wait_for',
    });
    this.options.onRun?.(record);
    return record;
  }

  /** When the events begin (the earliest @timestamp), re-read every 10 minutes. */
  private dataStart: { at: number; value: number | undefined } | undefined;

  /**
   * A rule that compares against history it does not have yet says so in its run record, instead
   * of running silently without result (rule coverage says the same for a whole data set).
   */
  private async historyNote(rule: RuleIR, range: TimeRange): Promise<string | undefined> {
    const needs = ruleNeeds(rule).history;
    if (!needs) return undefined;
    if (!this.dataStart || this.now() - this.dataStart.at > 600_000) {
      const r = await this.options.es.search({
        index: indexNames(this.options.prefix).eventsAlias,
        size: 0,
        ignore_unavailable: true,
        allow_no_indices: true,
        aggs: { first: { min: { field: '@timestamp' } } },
      });
      const v = (r.aggregations?.first as { value?: number | null } | undefined)?.value;
      this.dataStart = { at: this.now(), value: typeof v === 'number' ? v : undefined };
    }
    const start = this.dataStart.value;
    if (start === undefined) return 'no events yet';
    const have = Math.max(0, range.end - start);
    if (needs.minimumMs > 0 && have < needs.minimumMs)
      return `needs ${formatDuration(needs.minimumMs)} of history before it compares; the events begin ${formatDuration(have)} before the end of this run`;
    if (have < needs.ms)
      return `looks back ${formatDuration(needs.ms)}; the events begin ${formatDuration(have)} before the end of this run`;
    return undefined;
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }
}
