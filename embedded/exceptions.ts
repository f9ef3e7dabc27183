/**
 * Rule exceptions in the embedded SQLite file: the same store as the Elasticsearch one
 * (detections/exceptions.ts), one row per exception with its JSON document.
 */
import {
  type ExceptionQuery,
  type ExceptionStore,
  isActive,
  type NewException,
  newException,
  type RuleException,
} from '../detections/exceptions.ts';
import type { EmbeddedStore } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rule_exceptions (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_exceptions_rule ON rule_exceptions (rule_id, created_at);
`;

export class SqliteExceptionStore implements ExceptionStore {
  private readonly store: EmbeddedStore;

  constructor(store: EmbeddedStore) {
    this.store = store;
    store.db.exec(SCHEMA);
  }

  async install(): Promise<void> {
    this.store.db.exec(SCHEMA);
  }

  async create(input: NewException, by: string, at: number): Promise<RuleException> {
    const exception = newException(input, by, at);
    this.store.db
      .prepare('INSERT INTO rule_exceptions (id, rule_id, created_at, doc) VALUES (?, ?, ?, ?)')
      .run(exception.id, exception.rule_id, exception.created_at, JSON.stringify(exception));
    return exception;
  }

  async get(id: string): Promise<RuleException | undefined> {
    const row = this.store.db.prepare('SELECT doc FROM rule_exceptions WHERE id = ?').get(id) as
      | { doc: string }
      | undefined;
    return row ? (JSON.parse(row.doc) as RuleException) : undefined;
  }

  async list(query: ExceptionQuery): Promise<RuleException[]> {
    const rows = (
      query.rule_id
        ? this.store.db
            .prepare('SELECT doc FROM rule_exceptions WHERE rule_id = ? ORDER BY created_at DESC, id')
            .all(query.rule_id)
        : this.store.db.prepare('SELECT doc FROM rule_exceptions ORDER BY created_at DESC, id').all()
    ) as { doc: string }[];
    const all = rows.map((r) => JSON.parse(r.doc) as RuleException);
    return query.activeAt === undefined ? all : all.filter((e) => isActive(e, query.activeAt!));
  }

  async remove(id: string, by: string, at: number): Promise<RuleException | undefined> {
    const current = await this.get(id);
    if (!current || current.removed_at !== null) return current;
    const removed = { ...current, removed_at: new Date(at).toISOString(), removed_by: by };
    this.store.db.prepare('UPDATE rule_exceptions SET doc = ? WHERE id = ?').run(JSON.stringify(removed), id);
    return removed;
  }
}
