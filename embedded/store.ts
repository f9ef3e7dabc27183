/**
 * The embedded store: one local SQLite file (Node's built-in node:sqlite) holding events,
 * incidents, rule checkpoints and dead letters, so the whole pipeline runs in one process
 * with no Redis and no Elasticsearch. Writes are idempotent as in the distributed mode:
 * events by their deterministic id (INSERT OR IGNORE), incidents through the same writer.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { GatewatchEvent } from '../core/schema/event.ts';
import type { Incident } from '../core/schema/incident.ts';
import { type FieldStats, fieldStatsOf } from '../detections/coverage.ts';
import { suppressionKeyOf } from '../detections/engine/types.ts';
import { type EntityNames, entityNamesFrom, type IncidentStore } from '../detections/incidents/writer.ts';

// Events: a plain rowid table with separate indexes, so a bulk load into an empty table can
// append rows and build the indexes once at the end (files created before this layout have
// `id TEXT PRIMARY KEY` and an index on ts alone; both layouts answer the same queries).
const EVENT_INDEXES = `
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events(id);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts, id);
`;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  status TEXT NOT NULL,
  severity_rank INTEGER NOT NULL,
  suppression_key TEXT,
  created_at TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  window_end TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  doc TEXT NOT NULL
);
-- The incident list's sort orders (each ends in created_at, id like the repository's cursors),
-- its time filters and the writer's suppression look-up: without them every page sorts the
-- whole table (100k incidents: ~0.8 s a page).
CREATE INDEX IF NOT EXISTS incidents_created ON incidents(created_at, id);
CREATE INDEX IF NOT EXISTS incidents_last_seen ON incidents(last_seen, created_at, id);
CREATE INDEX IF NOT EXISTS incidents_severity ON incidents(severity_rank, created_at, id);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents(status, created_at, id);
CREATE INDEX IF NOT EXISTS incidents_rule ON incidents(rule_id, window_end);
CREATE TABLE IF NOT EXISTS incident_detections (
  detection_id TEXT PRIMARY KEY,
  incident_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
  rule_id TEXT PRIMARY KEY,
  end_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
  id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  reason TEXT NOT NULL,
  raw TEXT NOT NULL,
  at INTEGER NOT NULL
);
`;

/** A stored event row: the JSON document with the columns queries use. */
export interface EventRow {
  id: string;
  ts: number;
  doc: string;
}

/** What a store file holds: what deleting it loses (`replay --fresh` says so first). */
export interface StoreContents {
  events: number;
  incidents: number;
  /** Incidents a person changed: status, assignee, severity, comments. */
  triagedIncidents: number;
  deadLetters: number;
  /** API keys not revoked (tables of the REST API: absent until `serve --embedded` or `keys`). */
  apiKeys: number;
  /** Rules created or changed through the REST API. */
  apiRules: number;
}

export class EmbeddedStore {
  readonly db: DatabaseSync;
  private readonly insertEvent: StatementSync;
  private readonly appendEvent: StatementSync;
  /** Ids stored by the running bulk load (the unique index is built at its end). */
  private bulkIds: Set<string> | undefined;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    // Events are ~3 KB of JSON each: 64 KiB pages hold many per page (4 KiB pages hold one and
    // made inserts 5× slower). Only effective when the file is created, as is auto_vacuum:
    // pages freed by retention (embedded/retention.ts) go back to the disk incrementally.
    this.db.exec(
      'PRAGMA page_size = 65536; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;',
    );
    this.db.exec(SCHEMA);
    this.createEventIndexes();
    this.insertEvent = this.db.prepare('INSERT OR IGNORE INTO events (id, ts, doc) VALUES (?, ?, ?)');
    this.appendEvent = this.db.prepare('INSERT INTO events (id, ts, doc) VALUES (?, ?, ?)');
  }

  /**
   * Start a bulk load when the events table is empty: the event indexes are dropped and built
   * once by `endBulkLoad`, and writes are not synced (synchronous = OFF: a crash during the
   * load can lose it, but a replay can simply be run again; the next open rebuilds the
   * indexes). Returns false (and changes nothing) when the table already holds events or
   * uses the older primary-key layout, whose index cannot be dropped.
   */
  beginBulkLoad(): boolean {
    if (this.bulkIds) return true;
    if (this.db.prepare('SELECT 1 FROM events LIMIT 1').get() !== undefined) return false;
    const pk = this.db
      .prepare(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name LIKE 'sqlite_autoindex%'",
      )
      .get();
    if (pk !== undefined) return false;
    this.db.exec(
      'DROP INDEX IF EXISTS events_id; DROP INDEX IF EXISTS events_ts; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;',
    );
    this.bulkIds = new Set();
    return true;
  }

  /** Build the event indexes and return to durable writes. */
  endBulkLoad(): void {
    if (!this.bulkIds) return;
    this.bulkIds = undefined;
    this.createEventIndexes();
    this.db.exec('PRAGMA synchronous = NORMAL; PRAGMA cache_size = -2000;');
  }

  /**
   * The event indexes (a no-op when they exist). Should two replays have bulk-loaded the same
   * empty file at once, the rows stored twice are dropped first (same id, same document).
   */
  private createEventIndexes(): void {
    try {
      this.db.exec(EVENT_INDEXES);
    } catch {
      this.db.exec('DELETE FROM events WHERE rowid NOT IN (SELECT min(rowid) FROM events GROUP BY id)');
      this.db.exec(EVENT_INDEXES);
    }
  }

  /**
   * Insert event rows `from` ≤ i < `to` (ignoring ids already stored) in one transaction;
   * `isNew[i]` tells whether row i was stored.
   */
  addEventRows(
    ids: readonly string[],
    ts: ArrayLike<number>,
    docs: readonly string[],
    isNew: boolean[],
    from = 0,
    to = ids.length,
  ): number {
    let added = 0;
    const bulk = this.bulkIds;
    this.db.exec('BEGIN');
    try {
      for (let i = from; i < to; i++) {
        const id = ids[i]!;
        let stored: boolean;
        if (bulk) {
          stored = !bulk.has(id);
          if (stored) {
            bulk.add(id);
            this.appendEvent.run(id, ts[i]!, docs[i]!);
          }
        } else stored = Number(this.insertEvent.run(id, ts[i]!, docs[i]!).changes) > 0;
        isNew[i] = stored;
        if (stored) added++;
      }
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      if (bulk) for (let i = from; i < to; i++) if (isNew[i]) bulk.delete(ids[i]!);
      throw err;
    }
    return added;
  }

  /** Insert events (ignoring ids already stored); returns the ones that were new. */
  addEvents(events: GatewatchEvent[]): GatewatchEvent[] {
    const isNew: boolean[] = new Array(events.length);
    this.addEventRows(
      events.map((e) => e.event!.id!),
      events.map((e) => Date.parse(e['@timestamp'])),
      events.map((e) => JSON.stringify(e)),
      isNew,
    );
    return events.filter((_, i) => isNew[i]);
  }

  eventCount(): number {
    return Number((this.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n);
  }

  /** Events with start <= @timestamp < end, in time order. */
  eventsBetween(start: number, end: number): GatewatchEvent[] {
    const rows = this.db
      .prepare('SELECT doc FROM events WHERE ts >= ? AND ts < ? ORDER BY ts, id')
      .all(start, end) as {
      doc: string;
    }[];
    return rows.map((r) => JSON.parse(r.doc) as GatewatchEvent);
  }

  timeBounds(): { min: number; max: number } | undefined {
    const row = this.db.prepare('SELECT min(ts) AS min, max(ts) AS max FROM events').get() as {
      min: number | null;
      max: number | null;
    };
    return row.min === null || row.max === null ? undefined : { min: row.min, max: row.max };
  }

  getEvent(id: string): GatewatchEvent | undefined {
    const row = this.db.prepare('SELECT doc FROM events WHERE id = ?').get(id) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as GatewatchEvent) : undefined;
  }

  addDeadLetter(id: string, source: string, reason: string, raw: string, at: number): void {
    this.db
      .prepare('INSERT OR IGNORE INTO dead_letters (id, source, reason, raw, at) VALUES (?, ?, ?, ?, ?)')
      .run(id, source, reason, raw, at);
  }

  deadLetterCount(): number {
    return Number((this.db.prepare('SELECT count(*) AS n FROM dead_letters').get() as { n: number }).n);
  }

  getCheckpoint(ruleId: string): number | undefined {
    const row = this.db.prepare('SELECT end_ms FROM checkpoints WHERE rule_id = ?').get(ruleId) as
      | { end_ms: number }
      | undefined;
    return row?.end_ms;
  }

  setCheckpoint(ruleId: string, end: number): void {
    this.db
      .prepare(
        'INSERT INTO checkpoints (rule_id, end_ms) VALUES (?, ?) ON CONFLICT(rule_id) DO UPDATE SET end_ms = excluded.end_ms',
      )
      .run(ruleId, end);
  }

  /** Small JSON documents (the embedded API inventory, its specs). */
  getJson<T>(key: string): T | undefined {
    const row = this.db.prepare('SELECT value FROM kv WHERE key = ?').get(key) as
      | { value: string }
      | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  setJson(key: string, value: unknown): void {
    this.db
      .prepare(
        'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      )
      .run(key, JSON.stringify(value));
  }

  incidents(): Incident[] {
    const rows = this.db.prepare('SELECT doc FROM incidents ORDER BY created_at, id').all() as {
      doc: string;
    }[];
    return rows.map((r) => JSON.parse(r.doc) as Incident);
  }

  /**
   * The name the gateway gave each of `fingerprints` (gatewatch.api_key.name) in events of
   * [from, to]: read through the time index, so the cost is the span's events, not the file's.
   */
  keyNames(fingerprints: string[], from: number, to: number): Map<string, string> {
    const out = new Map<string, string>();
    if (fingerprints.length === 0) return out;
    const rows = this.db
      .prepare(
        `SELECT f, n FROM (SELECT json_extract(doc, '$.gatewatch.api_key.fingerprint') AS f,
                                  json_extract(doc, '$.gatewatch.api_key.name') AS n
                             FROM events WHERE ts >= ? AND ts <= ?)
          WHERE n IS NOT NULL AND f IN (${fingerprints.map(() => '?').join(',')}) GROUP BY f`,
      )
      .all(from, to, ...fingerprints) as { f: string; n: string }[];
    for (const r of rows) out.set(r.f, r.n);
    return out;
  }

  /**
   * What the stored events carry (rule coverage): per source, events and events carrying each of
   * `fields`. Counts come from an even sample of at most `sample` events (every n-th row, scaled
   * up); a field the sample misses is looked for in the whole file, so "no event carries it" is
   * exact.
   */
  fieldStats(fields: readonly string[], sample = 20_000): FieldStats {
    const total = Number((this.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n);
    const bounds = this.timeBounds();
    const every = Math.max(1, Math.ceil(total / sample));
    const docs = (
      this.db.prepare('SELECT doc FROM events WHERE rowid % ? = 0 LIMIT ?').all(every, sample) as {
        doc: string;
      }[]
    ).map((r) => JSON.parse(r.doc) as unknown);
    const stats = fieldStatsOf(docs, fields);
    const scale = docs.length === 0 ? 0 : total / docs.length;
    for (const s of stats.sources) {
      s.events = Math.round(s.events * scale);
      for (const f of Object.keys(s.present)) s.present[f] = Math.max(1, Math.round(s.present[f]! * scale));
    }
    for (const f of fields) {
      if (stats.sources.some((s) => (s.present[f] ?? 0) > 0)) continue;
      const row = this.db
        .prepare(
          `SELECT coalesce(json_extract(doc, '$.gatewatch.source.name'), json_extract(doc, '$.event.dataset'), 'unknown') AS s
             FROM events WHERE json_extract(doc, ?) IS NOT NULL LIMIT 1`,
        )
        .get(`$.${f}`) as { s: string } | undefined;
      if (row === undefined) continue;
      let source = stats.sources.find((s) => s.name === row.s);
      if (source === undefined) {
        source = { name: row.s, events: 1, present: {} };
        stats.sources.push(source);
      }
      source.present[f] = 1;
    }
    return {
      events: total,
      ...(bounds ? { span: { start: bounds.min, end: bounds.max } } : {}),
      sources: stats.sources,
      ...(every > 1 ? { sampled: true } : {}),
    };
  }

  /** API key names for the incident writer (see keyNames). */
  entityNames(): EntityNames {
    return entityNamesFrom(async (fps, from, to) => this.keyNames(fps, from, to));
  }

  /** The incident store the shared writer uses (same suppression and idempotency rules). */
  incidentStore(): IncidentStore {
    const db = this.db;
    const parse = (row: { doc: string } | undefined) => (row ? (JSON.parse(row.doc) as Incident) : undefined);
    const linkDetections = (incident: Incident) => {
      const link = db.prepare(
        'INSERT OR IGNORE INTO incident_detections (detection_id, incident_id) VALUES (?, ?)',
      );
      for (const d of incident.detection_ids) link.run(d, incident.id);
    };
    return {
      async get(id) {
        const row = db.prepare('SELECT doc, version FROM incidents WHERE id = ?').get(id) as
          | { doc: string; version: number }
          | undefined;
        return row ? { incident: JSON.parse(row.doc) as Incident, version: String(row.version) } : undefined;
      },
      async findByDetectionId(detectionId) {
        return parse(
          db
            .prepare(
              'SELECT i.doc FROM incident_detections d JOIN incidents i ON i.id = d.incident_id WHERE d.detection_id = ?',
            )
            .get(detectionId) as { doc: string } | undefined,
        );
      },
      async findSuppressing(found, statuses, since) {
        const placeholders = statuses.map(() => '?').join(',');
        const rows = db
          .prepare(
            `SELECT doc FROM incidents WHERE status IN (${placeholders}) AND last_seen > ? AND id <> ?
               AND ((rule_id = ? AND suppression_key = ?)
                    OR EXISTS (SELECT 1 FROM json_each(doc, '$.suppression_keys') k WHERE k.value = ?))
             ORDER BY window_end, id LIMIT 20`,
          )
          .all(
            ...statuses,
            since,
            found.id,
            found.rule.id,
            found.suppression_key,
            suppressionKeyOf(found.rule.id, found.suppression_key!),
          ) as { doc: string }[];
        return rows.map((r) => JSON.parse(r.doc) as Incident);
      },
      async findFolding(entity, keys, statuses, from, to) {
        const colon = entity.indexOf(':');
        const role = entity.slice(0, colon);
        const value = entity.slice(colon + 1);
        const marks = (xs: unknown[]) => xs.map(() => '?').join(',');
        const rows = db
          .prepare(
            `SELECT doc FROM incidents WHERE status IN (${marks(statuses)}) AND last_seen >= ?
               AND json_extract(doc, '$.first_seen') <= ?
               AND (json_extract(doc, '$.entity_key') IN (${marks(keys)})
                    OR EXISTS (SELECT 1 FROM json_each(doc, ?) e WHERE e.value = ?))
             ORDER BY last_seen DESC, id LIMIT 20`,
          )
          .all(...statuses, from, to, ...keys, `$.entities.${role}`, value) as { doc: string }[];
        return rows.map((r) => JSON.parse(r.doc) as Incident);
      },
      async create(incident) {
        const r = db
          .prepare(
            `INSERT OR IGNORE INTO incidents (id, rule_id, status, severity_rank, suppression_key, created_at, last_seen, window_end, doc)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            incident.id,
            incident.rule.id,
            incident.status,
            incident.severity_rank,
            incident.suppression_key,
            incident.created_at,
            incident.last_seen,
            incident.window.end,
            JSON.stringify(incident),
          );
        if (Number(r.changes) === 0) return 'exists';
        linkDetections(incident);
        return 'created';
      },
      async update(id, patch, version) {
        const row = db
          .prepare('SELECT doc FROM incidents WHERE id = ? AND version = ?')
          .get(id, Number(version)) as { doc: string } | undefined;
        if (!row) return 'conflict';
        const next = { ...(JSON.parse(row.doc) as Incident), ...patch };
        const r = db
          .prepare(
            'UPDATE incidents SET doc = ?, status = ?, last_seen = ?, version = version + 1 WHERE id = ? AND version = ?',
          )
          .run(JSON.stringify(next), next.status, next.last_seen, id, Number(version));
        if (Number(r.changes) === 0) return 'conflict';
        linkDetections(next);
        return 'ok';
      },
    };
  }

  contents(): StoreContents {
    const count = (sql: string) => Number((this.db.prepare(sql).get() as { n: number }).n);
    const hasTable = (name: string) =>
      this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
      undefined;
    return {
      events: count('SELECT count(*) AS n FROM events'),
      incidents: count('SELECT count(*) AS n FROM incidents'),
      triagedIncidents: count(
        `SELECT count(*) AS n FROM incidents WHERE json_array_length(doc, '$.comments') > 0
           OR json_extract(doc, '$.assignee') IS NOT NULL
           OR EXISTS (SELECT 1 FROM json_each(doc, '$.history') h WHERE json_extract(h.value, '$.by') <> 'gatewatch')`,
      ),
      deadLetters: count('SELECT count(*) AS n FROM dead_letters'),
      apiKeys: hasTable('api_keys')
        ? count("SELECT count(*) AS n FROM api_keys WHERE json_extract(doc, '$.revoked_at') IS NULL")
        : 0,
      apiRules: hasTable('rules') ? count('SELECT count(*) AS n FROM rules WHERE deleted = 0') : 0,
    };
  }

  close(): void {
    this.endBulkLoad();
    this.db.close();
  }
}
