/**
 * The audit log: every change made through the API (who, what, when, on what) as one
 * document in `${prefix}-audit`. Written (acknowledged by Elasticsearch) before the response
 * is sent; searchable after the next refresh.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { ensureIndex } from '../core/store/elasticsearch.ts';

export interface AuditEntry {
  id: string;
  at: string;
  /** Key id and name, or "cli:<user>". */
  actor: string;
  actor_role: string;
  /** e.g. incident.status, rule.create, key.revoke. */
  action: string;
  target_type: string;
  target_id: string;
  request_id: string | null;
  /** JSON of what changed (before/after or the request). */
  details: string;
}

export const auditMappings = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    at: { type: 'date' },
    actor: { type: 'keyword' },
    actor_role: { type: 'keyword' },
    action: { type: 'keyword' },
    target_type: { type: 'keyword' },
    target_id: { type: 'keyword' },
    request_id: { type: 'keyword' },
    details: { type: 'keyword', index: false, doc_values: false },
  },
} as const;

export type AuditInput = Omit<AuditEntry, 'id' | 'at' | 'details'> & { details?: unknown };

export interface AuditQuery {
  actor?: string;
  action?: string;
  target_id?: string;
  size: number;
}

/** Where the audit log lives: Elasticsearch (AuditLog) or the embedded SQLite file. */
export interface AuditStore {
  install(): Promise<void>;
  record(entry: AuditInput): Promise<void>;
  /** Newest first. */
  list(query: AuditQuery): Promise<AuditEntry[]>;
}

export function auditEntry(entry: AuditInput): AuditEntry {
  return {
    ...entry,
    id: randomUUID(),
    at: new Date().toISOString(),
    details: JSON.stringify(entry.details ?? {}),
  };
}

export class AuditLog implements AuditStore {
  readonly index: string;
  private readonly client: Client;

  constructor(client: Client, prefix: string) {
    this.client = client;
    this.index = `${prefix}-audit`;
  }

  async install(): Promise<void> {
    await ensureIndex(this.client, this.index, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: auditMappings,
    });
  }

  async record(entry: AuditInput): Promise<void> {
    const doc = auditEntry(entry);
    await this.client.index({ index: this.index, id: doc.id, document: doc });
  }

  async list(query: AuditQuery): Promise<AuditEntry[]> {
    const filter = [];
    if (query.actor) filter.push({ term: { actor: query.actor } });
    if (query.action) filter.push({ term: { action: query.action } });
    if (query.target_id) filter.push({ term: { target_id: query.target_id } });
    const r = await this.client.search<AuditEntry>({
      index: this.index,
      size: query.size,
      query: { bool: { filter } },
      sort: [{ at: 'desc' }, { id: 'desc' }],
      ignore_unavailable: true,
    });
    return r.hits.hits.map((h) => h._source!);
  }
}
