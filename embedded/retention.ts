/**
 * Retention in the embedded store: the same policy as the distributed mode (retention.*,
 * operations/retention.ts) applied to the SQLite file, then the space given back to the disk.
 *
 * The file is a copy of logs replayed into it, often old ones: ages are measured back from its
 * newest event (or now, if that is earlier), so a replay of last year's logs keeps them. Events,
 * dead letters, closed or never-looked-at incidents, and inventory endpoints past their retention
 * are deleted; incidents outlive their events as in Elasticsearch.
 *
 * Space: a file made with auto_vacuum = incremental hands its free pages back at once; an older
 * file without it is vacuumed (rewritten, converting it) once a quarter of it is free pages.
 */
import type { RetentionConfig } from '../core/config/schema.ts';
import { EXPIRING_INCIDENT_STATUSES, retentionPolicy } from '../operations/retention.ts';
import { INVENTORY_KEY } from './replay.ts';
import type { EmbeddedStore } from './store.ts';

export interface EmbeddedRetentionResult {
  started_at: string;
  finished_at: string;
  outcome: 'ok' | 'error';
  /** The time ages were measured from (epoch ms). */
  reference: number;
  deleted_indices: string[];
  deleted_documents: { events: number; deadLetters: number; incidents: number; inventory: number };
  /** File size before and after, and how the space came back. */
  bytes_before: number;
  bytes_after: number;
  reclaimed: 'incremental' | 'vacuum' | 'none';
  errors: string[];
}

const RESULT_KEY = 'retention:last';

function fileBytes(store: EmbeddedStore): number {
  const page = Number((store.db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
  const count = Number((store.db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count);
  return page * count;
}

export function applyEmbeddedRetention(
  store: EmbeddedStore,
  config: RetentionConfig,
  now = Date.now(),
): EmbeddedRetentionResult {
  const started = new Date().toISOString();
  const policy = retentionPolicy(config);
  const newest = store.timeBounds()?.max;
  const reference = newest === undefined ? now : Math.min(now, newest);
  const before = fileBytes(store);
  const db = store.db;
  const result: EmbeddedRetentionResult = {
    started_at: started,
    finished_at: '',
    outcome: 'ok',
    reference,
    deleted_indices: [],
    deleted_documents: { events: 0, deadLetters: 0, incidents: 0, inventory: 0 },
    bytes_before: before,
    bytes_after: before,
    reclaimed: 'none',
    errors: [],
  };
  db.exec('BEGIN');
  try {
    result.deleted_documents.events = Number(
      db.prepare('DELETE FROM events WHERE ts < ?').run(reference - policy.events).changes,
    );
    result.deleted_documents.deadLetters = Number(
      db.prepare('DELETE FROM dead_letters WHERE at < ?').run(reference - policy.deadLetters).changes,
    );
    const incidentCutoff = new Date(reference - policy.incidents).toISOString();
    const statuses = EXPIRING_INCIDENT_STATUSES.map(() => '?').join(',');
    const doomed = db
      .prepare(
        `SELECT id FROM incidents WHERE status IN (${statuses})
           AND coalesce(json_extract(doc, '$.updated_at'), created_at) < ?`,
      )
      .all(...EXPIRING_INCIDENT_STATUSES, incidentCutoff) as { id: string }[];
    const dropIncident = db.prepare('DELETE FROM incidents WHERE id = ?');
    const dropLinks = db.prepare('DELETE FROM incident_detections WHERE incident_id = ?');
    for (const { id } of doomed) {
      dropLinks.run(id);
      result.deleted_documents.incidents += Number(dropIncident.run(id).changes);
    }
    result.deleted_documents.inventory = pruneInventory(store, reference - policy.inventory);
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    result.outcome = 'error';
    result.errors.push((err as Error).message);
  }
  const deleted = Object.values(result.deleted_documents).reduce((a, b) => a + b, 0);
  if (deleted > 0) {
    try {
      result.reclaimed = reclaim(store);
    } catch (err) {
      // e.g. another connection (a replay) holds the file: the space comes back next time.
      result.errors.push(`reclaiming space: ${(err as Error).message}`);
    }
  }
  result.bytes_after = fileBytes(store);
  result.finished_at = new Date().toISOString();
  store.setJson(RESULT_KEY, result);
  return result;
}

/** The last pass over this file, or undefined. */
export function lastEmbeddedRetention(store: EmbeddedStore): EmbeddedRetentionResult | undefined {
  return store.getJson<EmbeddedRetentionResult>(RESULT_KEY);
}

/** Endpoints of the embedded inventory (kv JSON) not seen since `before`. */
function pruneInventory(store: EmbeddedStore, before: number): number {
  const json = store.getJson<{ version: 1; endpoints: { last_seen: string }[] }>(INVENTORY_KEY);
  if (!json?.endpoints) return 0;
  const keep = json.endpoints.filter((e) => !(Date.parse(e.last_seen) < before));
  const dropped = json.endpoints.length - keep.length;
  if (dropped > 0) store.setJson(INVENTORY_KEY, { ...json, endpoints: keep });
  return dropped;
}

function reclaim(store: EmbeddedStore): 'incremental' | 'vacuum' | 'none' {
  const db = store.db;
  const mode = Number((db.prepare('PRAGMA auto_vacuum').get() as { auto_vacuum: number }).auto_vacuum);
  let how: 'incremental' | 'vacuum' | 'none' = 'none';
  if (mode === 2) {
    db.exec('PRAGMA incremental_vacuum');
    how = 'incremental';
  } else {
    const free = Number(
      (db.prepare('PRAGMA freelist_count').get() as { freelist_count: number }).freelist_count,
    );
    const pages = Number((db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count);
    if (pages > 0 && free / pages >= 0.25) {
      // Rewrites the file; from then on it gives space back incrementally.
      db.exec('PRAGMA auto_vacuum = INCREMENTAL');
      db.exec('VACUUM');
      how = 'vacuum';
    }
  }
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  return how;
}

/** One line for the replay's output: what retention deleted and the space it gave back. */
export function formatEmbeddedRetention(r: EmbeddedRetentionResult, config: RetentionConfig): string {
  const d = r.deleted_documents;
  const parts = [
    d.events > 0 ? `${d.events} events older than ${config.events}` : '',
    d.deadLetters > 0 ? `${d.deadLetters} dead letters older than ${config.deadLetters}` : '',
    d.incidents > 0 ? `${d.incidents} closed incidents older than ${config.incidents}` : '',
    d.inventory > 0 ? `${d.inventory} endpoints unseen for ${config.inventory}` : '',
  ].filter(Boolean);
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
  return `Retention (counted back from ${new Date(r.reference).toISOString()}): deleted ${parts.join(', ')}; file ${mb(r.bytes_before)} → ${mb(r.bytes_after)}${r.errors.length > 0 ? ` (${r.errors.join('; ')})` : ''}`;
}
