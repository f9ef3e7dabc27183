import type {
  DeadLetter,
  DeadLetterPage,
  DetectionPort,
  EventExtent,
  EventHistogram,
  EventSearchPage,
  EventSearchPort,
  EventSearchRequest,
  IngestAdminPort,
  PreviewResult,
  RuleDayActivity,
  RuleStatus,
  SourceStatus,
  StoredEvent,
  TimeRange,
} from '../api/ports.ts';
import { InvalidEventCursorError } from '../api/ports.ts';
import { HttpProblem } from '../api/problem.ts';
import type { RuleStore } from '../api/rules/store.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import type { Incident } from '../core/schema/incident.ts';
import { bucketStart, emptyBuckets, testRulesOnEvents } from '../detections/api-adapters.ts';
import type { FieldStats } from '../detections/coverage.ts';
import { compileFilter, evaluateRule } from '../detections/engine/evaluate.ts';
import { toIncident } from '../detections/engine/types.ts';
import { previewIncidents } from '../detections/incidents/memory-store.ts';
import { writeIncidents } from '../detections/incidents/writer.ts';
import { loadRuleSetFrom } from '../detections/rule-set.ts';
import { newRunRecord, type RunRecord } from '../detections/scheduler/scheduler.ts';
import { embeddedFingerprintSecret, withFingerprintSecret } from '../ingest/fingerprint-secret.ts';
import type { RawBatch } from '../ingest/pipeline/batch.ts';
import { createNormalizer } from '../ingest/pipeline/normalize.ts';
import { InventoryAccumulator } from '../inventory/accumulator.ts';
import type { FilterExpr, RuleIR } from '../parser/ir.ts';
import { installApiSchema, KvInventoryStore } from './api-stores.ts';
import { SqliteExceptionStore } from './exceptions.ts';
import { replayRange } from './replay.ts';
import type { EmbeddedStore } from './store.ts';

/**
 * The rules of the embedded mode: the rule files plus the rules managed through the API (in
 * the file). As loadRuleSet: a stored rule replaces the file rule of its id; a deleted one
 * removes it.
 */
export async function loadEmbeddedRuleSet(
  config: GatewatchConfig,
  store: RuleStore,
): Promise<{ rules: RuleIR[]; problems: string[] }> {
  return loadRuleSetFrom(config, store);
}

/** History a rule reads before its range (first_seen and baseline rules). */
function historyMs(rule: RuleIR): number {
  if (rule.kind === 'baseline') return rule.baseline.historyMs;
  if (rule.kind === 'first_seen') return rule.firstSeen.historyMs;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Events

const CHUNK = 500;

export class EmbeddedEventSearchPort implements EventSearchPort {
  private readonly store: EmbeddedStore;

  constructor(store: EmbeddedStore) {
    this.store = store;
  }

  async search(request: EventSearchRequest): Promise<EventSearchPage> {
    let after: [number, string] | undefined;
    if (request.cursor) {
      try {
        const parsed = JSON.parse(Buffer.from(request.cursor, 'base64url').toString('utf8')) as {
          after?: unknown;
        };
        const a = parsed.after;
        if (!Array.isArray(a) || a.length !== 2 || typeof a[0] !== 'number' || typeof a[1] !== 'string') {
          throw new Error('bad cursor');
        }
        after = [a[0], a[1]];
      } catch {
        throw new InvalidEventCursorError('invalid cursor');
      }
    }
    const matches = compileFilter(request.filter);
    const desc = request.order === 'desc';
    const dir = desc ? 'DESC' : 'ASC';
    const first = this.store.db.prepare(
      `SELECT id, ts, doc FROM events WHERE ts >= ? AND ts < ? ORDER BY ts ${dir}, id ${dir} LIMIT ?`,
    );
    const next = this.store.db.prepare(
      `SELECT id, ts, doc FROM events WHERE ts >= ? AND ts < ? AND (ts, id) ${desc ? '<' : '>'} (?, ?)
       ORDER BY ts ${dir}, id ${dir} LIMIT ?`,
    );
    const events: StoredEvent[] = [];
    let last: [number, string] | undefined = after;
    // Read in chunks, keep what the filter matches, until the page is full or the range ends.
    for (;;) {
      const rows = (
        last
          ? next.all(request.range.start, request.range.end, last[0], last[1], CHUNK)
          : first.all(request.range.start, request.range.end, CHUNK)
      ) as { id: string; ts: number; doc: string }[];
      for (const row of rows) {
        last = [Number(row.ts), row.id];
        const event = JSON.parse(row.doc) as StoredEvent;
        if (matches(event)) events.push(event);
        if (events.length >= request.size) break;
      }
      if (events.length >= request.size || rows.length < CHUNK) break;
    }
    return {
      events,
      next_cursor:
        last && events.length >= request.size
          ? Buffer.from(JSON.stringify({ after: last })).toString('base64url')
          : null,
    };
  }

  async earliest(): Promise<number | undefined> {
    return this.store.timeBounds()?.min;
  }

  async get(id: string): Promise<StoredEvent | undefined> {
    return this.store.getEvent(id) as StoredEvent | undefined;
  }

  async histogram(filter: FilterExpr, range: TimeRange, intervalMs: number): Promise<EventHistogram> {
    const matches = compileFilter(filter);
    const counts = new Map<number, number>();
    let total = 0;
    const rows = this.store.db
      .prepare('SELECT ts, doc FROM events WHERE ts >= ? AND ts < ?')
      .iterate(range.start, range.end) as Iterable<{ ts: number; doc: string }>;
    for (const row of rows) {
      if (!matches(JSON.parse(row.doc))) continue;
      const bucket = bucketStart(Number(row.ts), range, intervalMs);
      counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
      total++;
    }
    return { buckets: emptyBuckets(range, intervalMs, counts), total, exact: true };
  }

  async extent(filter: FilterExpr): Promise<EventExtent> {
    const matches = compileFilter(filter);
    let first: number | null = null;
    let last: number | null = null;
    let total = 0;
    const rows = this.store.db.prepare('SELECT ts, doc FROM events').iterate() as Iterable<{
      ts: number;
      doc: string;
    }>;
    for (const row of rows) {
      if (!matches(JSON.parse(row.doc))) continue;
      const t = Number(row.ts);
      if (first === null || t < first) first = t;
      if (last === null || t > last) last = t;
      total++;
    }
    return { first, last, total };
  }
}

// ---------------------------------------------------------------------------------------------
// Detection

export interface EmbeddedDetectionOptions {
  store: EmbeddedStore;
  /** The current rule set (files plus API-managed rules). */
  loadRules: () => Promise<RuleIR[]>;
  maxGroups?: number;
  foldWindowMs?: number;
  now?: () => number;
}

export class EmbeddedDetectionPort implements DetectionPort {
  async fieldStats(fields: string[]): Promise<FieldStats> {
    return this.store.fieldStats(fields);
  }

  private readonly store: EmbeddedStore;
  private readonly loadRules: () => Promise<RuleIR[]>;
  private readonly maxGroups: number;
  private readonly foldWindowMs: number | undefined;
  private readonly now: () => number;
  /** Runs of one rule are serialised (the writer's suppression look-up must not race). */
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(options: EmbeddedDetectionOptions) {
    this.store = options.store;
    this.loadRules = options.loadRules;
    this.maxGroups = options.maxGroups ?? 100_000;
    this.foldWindowMs = options.foldWindowMs;
    this.now = options.now ?? Date.now;
    installApiSchema(this.store);
  }

  async test(rules: RuleIR[], events: StoredEvent[]): Promise<Incident[]> {
    return testRulesOnEvents(rules, events, this.now());
  }

  async preview(rule: RuleIR, range: TimeRange): Promise<PreviewResult> {
    const events = this.store.eventsBetween(range.start - historyMs(rule), range.end);
    const result = evaluateRule(rule, events, range, { maxGroups: this.maxGroups });
    const now = this.now();
    const raw = result.detections.map((d) => toIncident(d, rule, now));
    return {
      incidents: await previewIncidents(raw, {
        ...(rule.output.suppress ? { suppressMs: rule.output.suppress.periodMs } : {}),
        ...(this.foldWindowMs !== undefined ? { foldWindowMs: this.foldWindowMs } : {}),
      }),
      raw_detections: raw,
      detections: result.detections.length,
      ...(result.degraded ? { degraded: result.degraded } : {}),
    };
  }

  async runNow(ruleId: string): Promise<RunRecord> {
    const previous = this.running.get(ruleId) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.run(ruleId));
    this.running.set(ruleId, run);
    try {
      return await run;
    } finally {
      if (this.running.get(ruleId) === run) this.running.delete(ruleId);
    }
  }

  private async run(ruleId: string): Promise<RunRecord> {
    const rule = (await this.loadRules()).find((r) => r.id === ruleId);
    if (!rule) throw new Error(`unknown rule ${ruleId}`);
    const started = performance.now();
    const startedAt = new Date(this.now()).toISOString();
    const bounds = this.store.timeBounds();
    const range = bounds ? replayRange(rule, bounds) : { start: this.now(), end: this.now() };
    const base = (outcome: RunRecord['outcome']): RunRecord =>
      newRunRecord(rule, range, startedAt, outcome, Math.round(performance.now() - started));
    let record: RunRecord;
    try {
      const events = bounds ? this.store.eventsBetween(range.start - historyMs(rule), range.end) : [];
      const t = performance.now();
      const result = evaluateRule(rule, events, range, { maxGroups: this.maxGroups });
      const workerMs = Math.round(performance.now() - t);
      const now = this.now();
      const suppress = rule.output.suppress;
      const exceptions = await new SqliteExceptionStore(this.store).list({ rule_id: rule.id, activeAt: now });
      const written = await writeIncidents(
        this.store.incidentStore(),
        result.detections.map((d) => toIncident(d, rule, now)),
        {
          ...(suppress ? { suppression: { periodMs: suppress.periodMs } } : {}),
          ...(this.foldWindowMs !== undefined ? { foldWindowMs: this.foldWindowMs } : {}),
          names: this.store.entityNames(),
          exceptions: { list: exceptions, now },
        },
      );
      if (bounds) this.store.setCheckpoint(rule.id, range.end);
      record = {
        ...base(result.degraded ? 'degraded' : 'ok'),
        detections: result.detections.length,
        incidents_created: written.created.length,
        incidents_updated: written.updated.length,
        incidents_suppressed: written.suppressed.length,
        incidents_folded: written.folded.length,
        incidents_excepted: written.excepted.length,
        worker_ms: workerMs,
        ...(result.degraded ? { degraded_reason: result.degraded.reason } : {}),
      };
    } catch (err) {
      record = { ...base('error'), error: (err as Error).message };
    }
    this.store.db
      .prepare('INSERT INTO rule_runs (id, rule_id, started_at, doc) VALUES (?, ?, ?, ?)')
      .run(record.id, record.rule_id, record.started_at, JSON.stringify(record));
    return record;
  }

  async runHistory(ruleId: string, limit: number): Promise<RunRecord[]> {
    const rows = this.store.db
      .prepare('SELECT doc FROM rule_runs WHERE rule_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?')
      .all(ruleId, limit) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as RunRecord);
  }

  async status(ruleId: string): Promise<RuleStatus> {
    const [last] = await this.runHistory(ruleId, 1);
    if (!last) return { degraded: false };
    const degraded = last.outcome === 'degraded' || last.outcome === 'error';
    return {
      degraded,
      ...(degraded ? { reason: last.degraded_reason ?? last.error ?? last.outcome } : {}),
      last_run: last,
    };
  }

  async dailyActivity(range: TimeRange): Promise<RuleDayActivity[]> {
    const rows = this.store.db
      .prepare(
        `SELECT rule_id, substr(started_at, 1, 10) AS day, count(*) AS runs,
                sum(json_extract(doc, '$.detections')) AS detections,
                sum(json_extract(doc, '$.outcome') IN ('error', 'degraded')) AS failed
         FROM rule_runs WHERE started_at >= ? AND started_at < ?
         GROUP BY rule_id, day ORDER BY rule_id, day`,
      )
      .all(new Date(range.start).toISOString(), new Date(range.end).toISOString()) as {
      rule_id: string;
      day: string;
      runs: number;
      detections: number;
      failed: number;
    }[];
    return rows.map((r) => ({
      rule_id: r.rule_id,
      day: r.day,
      runs: Number(r.runs),
      detections: Number(r.detections ?? 0),
      failed: Number(r.failed ?? 0),
    }));
  }

  async rulesChanged(): Promise<void> {
    // Rules are read afresh for every run: nothing to reload.
  }
}

// ---------------------------------------------------------------------------------------------
// Ingest administration

interface DeadLetterRow {
  id: string;
  source: string;
  reason: string;
  raw: string;
  at: number;
  replayed_at: number | null;
}

export class EmbeddedIngestAdmin implements IngestAdminPort {
  private readonly store: EmbeddedStore;
  private readonly config: GatewatchConfig;
  private readonly now: () => number;

  constructor(options: { store: EmbeddedStore; config: GatewatchConfig; now?: () => number }) {
    this.store = options.store;
    this.config = options.config;
    this.now = options.now ?? Date.now;
    installApiSchema(this.store);
  }

  /** The sources replays stored events and dead letters under, with their counts. */
  async sources(): Promise<SourceStatus[]> {
    const db = this.store.db;
    const events = db
      .prepare(
        `SELECT json_extract(doc, '$.gatewatch.source.name') AS name, count(*) AS n, max(ts) AS last
         FROM events GROUP BY name`,
      )
      .all() as { name: string | null; n: number; last: number }[];
    const letters = db
      .prepare(
        `SELECT source AS name, count(*) AS n,
                (SELECT reason FROM dead_letters d2 WHERE d2.source = d.source ORDER BY at DESC, id LIMIT 1) AS reason
         FROM dead_letters d GROUP BY source`,
      )
      .all() as { name: string; n: number; reason: string }[];
    const names = new Set([...events.map((e) => e.name ?? 'replay'), ...letters.map((l) => l.name)]);
    const configured = new Map(this.config.ingest.sources.map((s) => [s.name, s.type]));
    return [...names].sort().map((name) => {
      const e = events.find((x) => (x.name ?? 'replay') === name);
      const l = letters.find((x) => x.name === name);
      return {
        name,
        type: configured.get(name) ?? 'file',
        // Nothing ingests while the API serves the file: replays come and go.
        state: 'idle',
        lag_seconds: null,
        events_per_second: 0,
        bytes_per_second: 0,
        errors_total: Number(l?.n ?? 0),
        events_total: Number(e?.n ?? 0),
        // The embedded store keeps one copy per event id: a resend is not told apart.
        duplicates_total: 0,
        dead_letters_total: Number(l?.n ?? 0),
        dropped_total: 0,
        last_error: l?.reason ?? null,
        last_event_at: e ? new Date(Number(e.last)).toISOString() : null,
      };
    });
  }

  async deadLetters(query: { source?: string; size: number; cursor?: string }): Promise<DeadLetterPage> {
    let after: [number, string] | undefined;
    if (query.cursor) {
      try {
        const a = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as unknown;
        if (!Array.isArray(a) || typeof a[0] !== 'number' || typeof a[1] !== 'string')
          throw new Error('shape');
        after = [a[0], a[1]];
      } catch {
        throw new HttpProblem(400, 'invalid-cursor', 'cursor is not one this API issued');
      }
    }
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.source) {
      where.push('d.source = ?');
      params.push(query.source);
    }
    if (after) {
      // Newest first, id ascending among equal times.
      where.push('(d.at < ? OR (d.at = ? AND d.id > ?))');
      params.push(after[0], after[0], after[1]);
    }
    const rows = this.store.db
      .prepare(
        `SELECT d.id, d.source, d.reason, d.raw, d.at, r.at AS replayed_at
         FROM dead_letters d LEFT JOIN dead_letter_replays r ON r.id = d.id
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY d.at DESC, d.id ASC LIMIT ?`,
      )
      .all(...params, query.size) as unknown as DeadLetterRow[];
    const items: DeadLetter[] = rows.map((r) => ({
      id: r.id,
      source: r.source,
      at: new Date(Number(r.at)).toISOString(),
      reason: r.reason,
      payload: r.raw,
      replayed_at: r.replayed_at === null ? null : new Date(Number(r.replayed_at)).toISOString(),
    }));
    const last = rows[rows.length - 1];
    return {
      items,
      next_cursor:
        last && rows.length === query.size
          ? Buffer.from(JSON.stringify([Number(last.at), last.id])).toString('base64url')
          : null,
    };
  }

  /**
   * Normalise un-replayed dead letters again (e.g. after a parser fix) and store the events
   * (and their endpoints in the inventory); a letter that still fails stays un-replayed.
   */
  async replayDeadLetters(request: {
    ids?: string[];
    source?: string;
  }): Promise<{ replayed: number; failed: number }> {
    const db = this.store.db;
    const where = ['r.id IS NULL'];
    const params: string[] = [];
    if (request.ids) {
      if (request.ids.length === 0) return { replayed: 0, failed: 0 };
      where.push(`d.id IN (${request.ids.map(() => '?').join(',')})`);
      params.push(...request.ids);
    }
    if (request.source) {
      where.push('d.source = ?');
      params.push(request.source);
    }
    const rows = db
      .prepare(
        `SELECT d.id, d.source, d.raw FROM dead_letters d LEFT JOIN dead_letter_replays r ON r.id = d.id
         WHERE ${where.join(' AND ')} ORDER BY d.at, d.id`,
      )
      .all(...params) as { id: string; source: string; raw: string }[];
    if (rows.length === 0) return { replayed: 0, failed: 0 };
    const normalize = createNormalizer(
      withFingerprintSecret(this.config, embeddedFingerprintSecret(this.store, this.config)),
    );
    const inventory = new InventoryAccumulator(new KvInventoryStore(this.store));
    const receivedAt = this.now();
    const mark = db.prepare('INSERT OR REPLACE INTO dead_letter_replays (id, at) VALUES (?, ?)');
    let replayed = 0;
    let failed = 0;
    for (const [source, letters] of Map.groupBy(rows, (r) => r.source)) {
      const batch: RawBatch = { source, receivedAt, records: [] };
      for (const letter of letters) {
        const result = normalize(letter.raw, batch);
        if (!result.ok || result.failures.length > 0) {
          failed++;
          continue;
        }
        inventory.add(this.store.addEvents(result.events));
        mark.run(letter.id, receivedAt);
        replayed++;
      }
    }
    await inventory.flush();
    return { replayed, failed };
  }
}
