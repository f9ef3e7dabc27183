/**
 * What a pull source has left to read and how far it got, reported by the ingest process into
 * Redis (one hash per source, written at most once a second) and read by the API process for
 * `GET /ingest/sources` (`backlog`) and `GET /metrics` (gatewatch_source_* series): the
 * sources and the API run in different processes, Redis is what they share.
 */
import type { Redis } from 'ioredis';
import { Counter, Gauge } from 'prom-client';
import { registry } from '../../api/metrics.ts';
import type { SourceBacklog } from '../../api/ports.ts';

export function sourceProgressKey(prefix: string, source: string): string {
  return `${prefix}:source-progress:${source}`;
}

/** Levels a source sets (null: not applicable to this source). */
export interface ProgressLevels {
  /** Objects, blobs or messages known and not read to the end. */
  objectsPending?: number | null;
  /** Bytes of those still to read. */
  bytesBehind?: number | null;
  /** Kafka: records between committed offsets and the partition ends. */
  consumerLag?: number | null;
  /** Time (ms) up to which the source has read everything (CloudWatch window end, oldest pending object). */
  positionTime?: number | null;
}

const LEVEL_FIELDS = {
  objectsPending: 'objects_pending',
  bytesBehind: 'bytes_behind',
  consumerLag: 'consumer_lag',
  positionTime: 'position_time',
} as const;

export type ProgressCounter = 'records' | 'objects' | 'bytes' | 'dead_letters' | 'throttled';

/** The error at the bottom of aggregate errors and causes (what actually went wrong). */
function innermost(err: unknown): unknown {
  let at = err;
  for (let depth = 0; depth < 10; depth++) {
    const e = at as { errors?: unknown[]; cause?: unknown } | undefined;
    const next = (Array.isArray(e?.errors) && e.errors.length > 0 ? e.errors.at(-1) : undefined) ?? e?.cause;
    if (!next || next === at) break;
    at = next;
  }
  return at;
}

/**
 * One line, no credentials: the error with its innermost cause ("findGroupCoordinator failed
 * 4 times: SASL authentication failed …"), URLs without their query strings (SAS tokens,
 * signatures).
 */
export function safeErrorMessage(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  const root = innermost(err);
  if (root !== err && root instanceof Error && root.message && !message.includes(root.message))
    message = `${message.replace(/\.$/, '')}: ${root.message}`;
  return message
    .replace(/(https?:\/\/[^\s?#'"]+)\?[^\s'"]*/g, '$1?…')
    .replace(/\s+/g, ' ')
    .slice(0, 500);
}

export class SourceProgress {
  private readonly redis: Redis;
  private readonly key: string;
  private readonly type: string;
  private levels: Record<string, string | null> = {};
  private counters = new Map<ProgressCounter, number>();
  private lastError: string | null | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(options: { redis: Redis; prefix: string; source: { name: string; type: string } }) {
    this.redis = options.redis;
    this.key = sourceProgressKey(options.prefix, options.source.name);
    this.type = options.source.type;
  }

  set(levels: ProgressLevels): void {
    for (const [name, field] of Object.entries(LEVEL_FIELDS)) {
      const value = levels[name as keyof ProgressLevels];
      if (value === undefined) continue;
      this.levels[field] = value === null ? null : String(Math.round(value));
    }
  }

  add(counter: ProgressCounter, n = 1): void {
    if (n !== 0) this.counters.set(counter, (this.counters.get(counter) ?? 0) + n);
  }

  error(err: unknown): string {
    const message = safeErrorMessage(err);
    this.lastError = message;
    return message;
  }

  /** The source works again: the last error is cleared at the next flush. */
  ok(): void {
    if (this.lastError !== undefined) this.lastError = null;
  }

  start(flushMs = 1_000): void {
    this.timer = setInterval(() => void this.flush().catch(() => undefined), flushMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
  }

  /** Write what changed since the last flush (serialised: flushes never overlap). */
  flush(): Promise<void> {
    const next = this.flushing
      .catch(() => undefined)
      .then(async () => {
        const multi = this.redis.multi();
        const set: string[] = ['type', this.type, 'updated_at', String(Date.now())];
        const del: string[] = [];
        for (const [field, value] of Object.entries(this.levels)) {
          if (value === null) del.push(field);
          else set.push(field, value);
        }
        if (this.lastError) set.push('last_error', this.lastError, 'last_error_at', String(Date.now()));
        else if (this.lastError === null) del.push('last_error', 'last_error_at');
        multi.hset(this.key, ...set);
        if (del.length > 0) multi.hdel(this.key, ...del);
        const counters = this.counters;
        this.counters = new Map();
        for (const [name, n] of counters) multi.hincrby(this.key, name, n);
        this.levels = {};
        if (this.lastError === null) this.lastError = undefined;
        await multi.exec();
      });
    this.flushing = next;
    return next;
  }
}

/** The `backlog` of a source's status, from its progress hash (undefined: no report yet). */
export function backlogOf(hash: Record<string, string>, now = Date.now()): SourceBacklog | undefined {
  if (!hash.updated_at) return undefined;
  const num = (field: string) => (hash[field] !== undefined ? Number(hash[field]) : null);
  const position = num('position_time');
  return {
    objects_pending: num('objects_pending'),
    bytes_behind: num('bytes_behind'),
    consumer_lag: num('consumer_lag'),
    behind_seconds: position === null ? null : Math.max(0, (now - position) / 1000),
    updated_at: new Date(Number(hash.updated_at)).toISOString(),
  };
}

export interface ProgressReport {
  source: string;
  type: string;
  hash: Record<string, string>;
}

let reader: (() => Promise<ProgressReport[]>) | undefined;
let cached: { at: number; reports: Promise<ProgressReport[]> } | undefined;

function reports(): Promise<ProgressReport[]> {
  if (!reader) return Promise.resolve([]);
  const now = Date.now();
  if (!cached || now - cached.at > 500) cached = { at: now, reports: reader().catch(() => []) };
  return cached.reports;
}

function levelGauge(name: string, help: string, value: (r: ProgressReport, now: number) => number | null) {
  if (registry.getSingleMetric(name)) return;
  new Gauge({
    name,
    help,
    labelNames: ['source', 'type'],
    registers: [registry],
    async collect() {
      this.reset();
      const now = Date.now();
      for (const r of await reports()) {
        const v = value(r, now);
        if (v !== null && Number.isFinite(v)) this.set({ source: r.source, type: r.type }, v);
      }
    },
  });
}

function counter(name: string, help: string, field: ProgressCounter) {
  if (registry.getSingleMetric(name)) return;
  new Counter({
    name,
    help,
    labelNames: ['source', 'type'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await reports()) {
        const v = Number(r.hash[field] ?? 0);
        if (v > 0) this.inc({ source: r.source, type: r.type }, v);
      }
    },
  });
}

/**
 * Serve the pull sources' progress in /metrics: `read` returns every source's progress hash
 * (the API's ingest port reads them from Redis). Registering again replaces the reader.
 */
export function registerSourceProgressMetrics(read: () => Promise<ProgressReport[]>): void {
  reader = read;
  cached = undefined;
  const field = (f: string) => (r: ProgressReport) => (r.hash[f] !== undefined ? Number(r.hash[f]) : null);
  levelGauge(
    'gatewatch_source_objects_pending',
    'Objects, blobs or messages a pull source has not read to the end.',
    field('objects_pending'),
  );
  levelGauge(
    'gatewatch_source_bytes_behind',
    'Bytes a pull source still has to read.',
    field('bytes_behind'),
  );
  levelGauge(
    'gatewatch_source_consumer_lag',
    'Kafka records between the committed offsets and the partition ends.',
    field('consumer_lag'),
  );
  levelGauge(
    'gatewatch_source_behind_seconds',
    'How far behind now the position a pull source has read up to is.',
    (r, now) =>
      r.hash.position_time !== undefined ? Math.max(0, (now - Number(r.hash.position_time)) / 1000) : null,
  );
  levelGauge('gatewatch_source_error', '1 while a pull source reports an error.', (r) =>
    r.hash.last_error ? 1 : 0,
  );
  counter('gatewatch_source_records_queued_total', 'Records a pull source queued.', 'records');
  counter(
    'gatewatch_source_objects_read_total',
    'Objects, blobs or messages a pull source read to the end.',
    'objects',
  );
  counter('gatewatch_source_bytes_read_total', 'Bytes a pull source read.', 'bytes');
  counter(
    'gatewatch_source_dead_letters_total',
    'Inputs a pull source could not read (dead-lettered).',
    'dead_letters',
  );
  counter(
    'gatewatch_source_throttled_total',
    'Requests a pull source had throttled and retried later.',
    'throttled',
  );
}
