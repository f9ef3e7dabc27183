/**
 * The REST API's own stores in the embedded SQLite file: API keys (same salted-hash and
 * constant-time check as the Elasticsearch store), the audit log, API-managed rules with
 * revisions, the API inventory and its imported specs (kv JSON, shared with the replay), rule
 * run records and dead-letter replay marks. Tables are created if missing (additive only).
 */
import type { DatabaseSync } from 'node:sqlite';
import type { AuditEntry, AuditInput, AuditQuery, AuditStore } from '../api/audit.ts';
import { auditEntry } from '../api/audit.ts';
import {
  type ApiKeyInfo,
  type ApiKeyRecord,
  type KeyStore,
  keyInfo,
  newKeyRecord,
  type Principal,
  parseToken,
  type Role,
  verifyRecord,
} from '../api/auth/keys.ts';
import {
  type FileRuleState,
  type RuleChange,
  RuleConflictError,
  type RuleContent,
  RuleExistsError,
  RuleNotFoundError,
  type RuleRevision,
  type RuleStore,
  type StoredRule,
} from '../api/rules/store.ts';
import {
  type ImportedSpec,
  type MemorySpecJSON,
  MemorySpecStore,
  type SpecStore,
} from '../inventory/specs/registry.ts';
import type { EndpointState } from '../inventory/state.ts';
import {
  type EndpointPage,
  type EndpointQuery,
  type InventoryStore,
  type MemoryInventoryJSON,
  MemoryInventoryStore,
} from '../inventory/store.ts';
import { INVENTORY_KEY } from './replay.ts';
import type { EmbeddedStore } from './store.ts';

export const SPECS_KEY = 'inventory-specs';

const API_SCHEMA = `
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target_id TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE TABLE IF NOT EXISTS rules (
  id TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_revisions (
  id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (id, revision)
);
CREATE TABLE IF NOT EXISTS rule_file_states (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_runs (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  started_at TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_runs_rule ON rule_runs(rule_id, started_at);
CREATE TABLE IF NOT EXISTS dead_letter_replays (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL
);
`;

/** Create the API's tables in the embedded file (idempotent). */
export function installApiSchema(store: EmbeddedStore): void {
  store.db.exec(API_SCHEMA);
}

function inTransaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

export class SqliteKeyStore implements KeyStore {
  private readonly store: EmbeddedStore;

  constructor(store: EmbeddedStore) {
    this.store = store;
    installApiSchema(store);
  }

  async install(): Promise<void> {
    installApiSchema(this.store);
  }

  async create(role: Role, name: string, createdBy: string): Promise<{ token: string; key: ApiKeyInfo }> {
    const { token, record } = newKeyRecord(role, name, createdBy);
    this.store.db
      .prepare('INSERT INTO api_keys (id, created_at, doc) VALUES (?, ?, ?)')
      .run(record.id, record.created_at, JSON.stringify(record));
    return { token, key: keyInfo(record) };
  }

  async list(): Promise<ApiKeyInfo[]> {
    const rows = this.store.db.prepare('SELECT doc FROM api_keys ORDER BY created_at, id').all() as {
      doc: string;
    }[];
    return rows.map((r) => keyInfo(JSON.parse(r.doc) as ApiKeyRecord));
  }

  async get(id: string): Promise<ApiKeyInfo | undefined> {
    const record = this.read(id);
    return record ? keyInfo(record) : undefined;
  }

  async revoke(id: string, by: string): Promise<ApiKeyInfo | undefined> {
    const record = this.read(id);
    if (!record) return undefined;
    if (record.revoked_at) return keyInfo(record);
    const next: ApiKeyRecord = { ...record, revoked_at: new Date().toISOString(), revoked_by: by };
    this.store.db.prepare('UPDATE api_keys SET doc = ? WHERE id = ?').run(JSON.stringify(next), id);
    return keyInfo(next);
  }

  /** Read on every request (a local file: revocation takes effect at once, no cache). */
  async verify(token: string): Promise<Principal | undefined> {
    const parsed = parseToken(token);
    if (!parsed) return undefined;
    return verifyRecord(this.read(parsed.id), parsed.secret);
  }

  private read(id: string): ApiKeyRecord | undefined {
    const row = this.store.db.prepare('SELECT doc FROM api_keys WHERE id = ?').get(id) as
      | { doc: string }
      | undefined;
    return row ? (JSON.parse(row.doc) as ApiKeyRecord) : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Audit

export class SqliteAuditLog implements AuditStore {
  private readonly store: EmbeddedStore;

  constructor(store: EmbeddedStore) {
    this.store = store;
    installApiSchema(store);
  }

  async install(): Promise<void> {
    installApiSchema(this.store);
  }

  async record(entry: AuditInput): Promise<void> {
    const doc = auditEntry(entry);
    this.store.db
      .prepare('INSERT INTO audit (id, at, actor, action, target_id, doc) VALUES (?, ?, ?, ?, ?, ?)')
      .run(doc.id, doc.at, doc.actor, doc.action, doc.target_id, JSON.stringify(doc));
  }

  async list(query: AuditQuery): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (query.actor) {
      where.push('actor = ?');
      params.push(query.actor);
    }
    if (query.action) {
      where.push('action = ?');
      params.push(query.action);
    }
    if (query.target_id) {
      where.push('target_id = ?');
      params.push(query.target_id);
    }
    const rows = this.store.db
      .prepare(
        `SELECT doc FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`,
      )
      .all(...params, query.size) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as AuditEntry);
  }
}

// ---------------------------------------------------------------------------------------------
// Rules

/** Rules with revisions: a current row per rule (guarded by its revision) and immutable revisions. */
export class SqliteRuleStore implements RuleStore {
  private readonly store: EmbeddedStore;

  constructor(store: EmbeddedStore) {
    this.store = store;
    installApiSchema(store);
  }

  async install(): Promise<void> {
    installApiSchema(this.store);
  }

  async list(): Promise<StoredRule[]> {
    const rows = this.store.db.prepare('SELECT doc FROM rules WHERE deleted = 0 ORDER BY id').all() as {
      doc: string;
    }[];
    return rows.map((r) => JSON.parse(r.doc) as StoredRule);
  }

  async get(id: string): Promise<StoredRule | undefined> {
    const current = this.readCurrent(id);
    return current && !current.deleted ? current : undefined;
  }

  private readCurrent(id: string): StoredRule | undefined {
    const row = this.store.db.prepare('SELECT doc FROM rules WHERE id = ?').get(id) as
      | { doc: string }
      | undefined;
    return row ? (JSON.parse(row.doc) as StoredRule) : undefined;
  }

  private live(id: string): StoredRule {
    const current = this.readCurrent(id);
    if (!current || current.deleted) throw new RuleNotFoundError(`rule ${id} does not exist`);
    return current;
  }

  async create(content: RuleContent, enabled: boolean, by: string): Promise<StoredRule> {
    const current = this.readCurrent(content.id);
    if (current && !current.deleted) throw new RuleExistsError(`rule ${content.id} already exists`);
    const now = new Date().toISOString();
    const rule: StoredRule = {
      ...content,
      revision: (current?.revision ?? 0) + 1,
      enabled,
      created_at: now,
      created_by: by,
      updated_at: now,
      updated_by: by,
      deleted: false,
    };
    this.write(rule, 'create', current?.revision);
    return rule;
  }

  async update(content: RuleContent, by: string, expectedRevision?: number): Promise<StoredRule> {
    const current = this.live(content.id);
    if (expectedRevision !== undefined && current.revision !== expectedRevision) {
      throw new RuleConflictError(
        `rule ${content.id} is at revision ${current.revision}, not ${expectedRevision}`,
      );
    }
    const rule: StoredRule = {
      ...current,
      ...content,
      revision: current.revision + 1,
      updated_at: new Date().toISOString(),
      updated_by: by,
    };
    this.write(rule, 'update', current.revision);
    return rule;
  }

  async setEnabled(id: string, enabled: boolean, by: string): Promise<StoredRule> {
    const current = this.live(id);
    if (current.enabled === enabled) return current;
    const rule: StoredRule = {
      ...current,
      enabled,
      revision: current.revision + 1,
      updated_at: new Date().toISOString(),
      updated_by: by,
    };
    this.write(rule, enabled ? 'enable' : 'disable', current.revision);
    return rule;
  }

  async delete(id: string, by: string): Promise<StoredRule> {
    const current = this.live(id);
    const rule: StoredRule = {
      ...current,
      deleted: true,
      enabled: false,
      revision: current.revision + 1,
      updated_at: new Date().toISOString(),
      updated_by: by,
    };
    this.write(rule, 'delete', current.revision);
    return rule;
  }

  async revisions(id: string): Promise<RuleRevision[]> {
    const rows = this.store.db
      .prepare('SELECT doc FROM rule_revisions WHERE id = ? ORDER BY revision DESC')
      .all(id) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as RuleRevision);
  }

  async revision(id: string, revision: number): Promise<RuleRevision | undefined> {
    const row = this.store.db
      .prepare('SELECT doc FROM rule_revisions WHERE id = ? AND revision = ?')
      .get(id, revision) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as RuleRevision) : undefined;
  }

  async fileStates(): Promise<Map<string, FileRuleState>> {
    const rows = this.store.db.prepare('SELECT doc FROM rule_file_states').all() as { doc: string }[];
    return new Map(rows.map((r) => JSON.parse(r.doc) as FileRuleState).map((state) => [state.id, state]));
  }

  async setFileEnabled(id: string, enabled: boolean, by: string): Promise<FileRuleState> {
    const state: FileRuleState = { id, enabled, updated_at: new Date().toISOString(), updated_by: by };
    this.store.db
      .prepare('INSERT OR REPLACE INTO rule_file_states (id, doc) VALUES (?, ?)')
      .run(id, JSON.stringify(state));
    return state;
  }

  /** Current row (guarded by the revision read) and the immutable revision, in one transaction. */
  private write(rule: StoredRule, change: RuleChange, readRevision: number | undefined): void {
    const db = this.store.db;
    const revision: RuleRevision = {
      id: rule.id,
      revision: rule.revision,
      version: rule.version,
      change,
      text: rule.text,
      enabled: rule.enabled,
      at: rule.updated_at,
      by: rule.updated_by,
    };
    const conflict = () => new RuleConflictError(`rule ${rule.id} was changed concurrently; retry`);
    inTransaction(db, () => {
      if (readRevision === undefined) {
        const r = db
          .prepare('INSERT OR IGNORE INTO rules (id, revision, deleted, doc) VALUES (?, ?, ?, ?)')
          .run(rule.id, rule.revision, rule.deleted ? 1 : 0, JSON.stringify(rule));
        if (Number(r.changes) === 0) throw conflict();
      } else {
        const r = db
          .prepare('UPDATE rules SET revision = ?, deleted = ?, doc = ? WHERE id = ? AND revision = ?')
          .run(rule.revision, rule.deleted ? 1 : 0, JSON.stringify(rule), rule.id, readRevision);
        if (Number(r.changes) === 0) throw conflict();
      }
      db.prepare('INSERT OR REPLACE INTO rule_revisions (id, revision, doc) VALUES (?, ?, ?)').run(
        rule.id,
        rule.revision,
        JSON.stringify(revision),
      );
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Inventory (the kv documents the replay keeps)

/**
 * The API inventory as the replay keeps it (one kv JSON document), read afresh for every call
 * so a replay into the same file shows at once; merges read, merge and write back.
 */
export class KvInventoryStore implements InventoryStore {
  private readonly store: EmbeddedStore;

  constructor(store: EmbeddedStore) {
    this.store = store;
  }

  private load(): MemoryInventoryStore {
    const saved = this.store.getJson<MemoryInventoryJSON>(INVENTORY_KEY);
    return saved ? MemoryInventoryStore.fromJSON(saved) : new MemoryInventoryStore();
  }

  async install(): Promise<void> {}

  async merge(deltas: readonly EndpointState[]): Promise<void> {
    const memory = this.load();
    await memory.merge(deltas);
    this.store.setJson(INVENTORY_KEY, memory.toJSON());
  }

  get(id: string): Promise<EndpointState | undefined> {
    return this.load().get(id);
  }

  list(query?: EndpointQuery): Promise<EndpointPage> {
    return this.load().list(query);
  }

  all(): AsyncIterable<EndpointState> {
    return this.load().all();
  }
}

/** Imported API specs, one kv JSON document. */
export class KvSpecStore implements SpecStore {
  private readonly store: EmbeddedStore;

  constructor(store: EmbeddedStore) {
    this.store = store;
  }

  private load(): MemorySpecStore {
    const saved = this.store.getJson<MemorySpecJSON>(SPECS_KEY);
    return saved ? MemorySpecStore.fromJSON(saved) : new MemorySpecStore();
  }

  async install(): Promise<void> {}

  list(): Promise<ImportedSpec[]> {
    return this.load().list();
  }

  async put(spec: ImportedSpec): Promise<void> {
    const memory = this.load();
    await memory.put(spec);
    this.store.setJson(SPECS_KEY, memory.toJSON());
  }

  async delete(id: string): Promise<boolean> {
    const memory = this.load();
    const deleted = await memory.delete(id);
    if (deleted) this.store.setJson(SPECS_KEY, memory.toJSON());
    return deleted;
  }
}
