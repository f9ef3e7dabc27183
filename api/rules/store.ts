/**
 * Rule storage with versions, in `${prefix}-rules`. Each rule has a current document
 * (`current:<id>`) and one immutable document per revision (`revision:<id>:<n>`). Changes are
 * guarded by if_seq_no / if_primary_term on the current document, so two concurrent edits
 * cannot both become revision n+1.
 */
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import { ensureIndex, indexNames } from '../../core/store/elasticsearch.ts';

export interface StoredRule {
  id: string;
  /** 1, 2, 3 … one per change of text or state. */
  revision: number;
  /** The rule IR's content hash (parser). */
  version: string;
  title: string;
  kind: string;
  severity: string;
  enabled: boolean;
  text: string;
  created_at: string;
  created_by: string;
  updated_at: string;
  updated_by: string;
  deleted: boolean;
}

export type RuleChange = 'create' | 'update' | 'enable' | 'disable' | 'delete';

export interface RuleRevision {
  id: string;
  revision: number;
  version: string;
  change: RuleChange;
  text: string;
  enabled: boolean;
  at: string;
  by: string;
}

export interface RuleContent {
  id: string;
  version: string;
  title: string;
  kind: string;
  severity: string;
  text: string;
}

/**
 * The enabled state an admin set through the API for a rule that comes from a rule file (the
 * built-in pack or the operator's own files). The file stays as it is; loaders apply this.
 */
export interface FileRuleState {
  id: string;
  enabled: boolean;
  updated_at: string;
  updated_by: string;
}

export class RuleExistsError extends Error {
  override name = 'RuleExistsError';
}
export class RuleNotFoundError extends Error {
  override name = 'RuleNotFoundError';
}
export class RuleConflictError extends Error {
  override name = 'RuleConflictError';
}

export interface RuleStore {
  install(): Promise<void>;
  list(): Promise<StoredRule[]>;
  get(id: string): Promise<StoredRule | undefined>;
  create(content: RuleContent, enabled: boolean, by: string): Promise<StoredRule>;
  /** expectedRevision: fail with RuleConflictError when the rule moved on. */
  update(content: RuleContent, by: string, expectedRevision?: number): Promise<StoredRule>;
  setEnabled(id: string, enabled: boolean, by: string): Promise<StoredRule>;
  delete(id: string, by: string): Promise<StoredRule>;
  revisions(id: string): Promise<RuleRevision[]>;
  revision(id: string, revision: number): Promise<RuleRevision | undefined>;
  /** Enabled states set for file rules, by rule id. */
  fileStates(): Promise<Map<string, FileRuleState>>;
  setFileEnabled(id: string, enabled: boolean, by: string): Promise<FileRuleState>;
}

const mappings = {
  dynamic: 'strict',
  properties: {
    doc_type: { type: 'keyword' },
    id: { type: 'keyword' },
    revision: { type: 'integer' },
    version: { type: 'keyword' },
    change: { type: 'keyword' },
    title: { type: 'keyword' },
    kind: { type: 'keyword' },
    severity: { type: 'keyword' },
    enabled: { type: 'boolean' },
    text: { type: 'keyword', index: false, doc_values: false },
    created_at: { type: 'date' },
    created_by: { type: 'keyword' },
    updated_at: { type: 'date' },
    updated_by: { type: 'keyword' },
    deleted: { type: 'boolean' },
    at: { type: 'date' },
    by: { type: 'keyword' },
  },
} as const;

const isStatus = (err: unknown, status: number) =>
  err instanceof errors.ResponseError && err.statusCode === status;

export class ElasticsearchRuleStore implements RuleStore {
  readonly index: string;
  private readonly client: Client;

  constructor(client: Client, prefix: string) {
    this.client = client;
    this.index = indexNames(prefix).rules;
  }

  async install(): Promise<void> {
    await ensureIndex(this.client, this.index, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings,
    });
  }

  async list(): Promise<StoredRule[]> {
    const r = await this.client.search<StoredRule & { doc_type: string }>({
      index: this.index,
      size: 10_000,
      query: { bool: { filter: [{ term: { doc_type: 'current' } }, { term: { deleted: false } }] } },
      sort: [{ id: 'asc' }],
      ignore_unavailable: true,
    });
    return r.hits.hits.map((h) => strip(h._source!));
  }

  async get(id: string): Promise<StoredRule | undefined> {
    const current = await this.readCurrent(id);
    return current && !current.rule.deleted ? current.rule : undefined;
  }

  private async readCurrent(id: string) {
    try {
      const r = await this.client.get<StoredRule & { doc_type: string }>({
        index: this.index,
        id: `current:${id}`,
      });
      if (!r.found || !r._source) return undefined;
      return { rule: strip(r._source), seq: r._seq_no!, term: r._primary_term! };
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async create(content: RuleContent, enabled: boolean, by: string): Promise<StoredRule> {
    const current = await this.readCurrent(content.id);
    if (current && !current.rule.deleted) throw new RuleExistsError(`rule ${content.id} already exists`);
    const now = new Date().toISOString();
    const rule: StoredRule = {
      ...content,
      revision: (current?.rule.revision ?? 0) + 1,
      enabled,
      created_at: now,
      created_by: by,
      updated_at: now,
      updated_by: by,
      deleted: false,
    };
    await this.write(rule, 'create', current);
    return rule;
  }

  async update(content: RuleContent, by: string, expectedRevision?: number): Promise<StoredRule> {
    const current = await this.live(content.id);
    if (expectedRevision !== undefined && current.rule.revision !== expectedRevision) {
      throw new RuleConflictError(
        `rule ${content.id} is at revision ${current.rule.revision}, not ${expectedRevision}`,
      );
    }
    const rule: StoredRule = {
      ...current.rule,
      ...content,
      revision: current.rule.revision + 1,
      updated_at: new Date().toISOString(),
      updated_by: by,
    };
    await this.write(rule, 'update', current);
    return rule;
  }

  async setEnabled(id: string, enabled: boolean, by: string): Promise<StoredRule> {
    const current = await this.live(id);
    if (current.rule.enabled === enabled) return current.rule;
    const rule: StoredRule = {
      ...current.rule,
      enabled,
      revision: current.rule.revision + 1,
      updated_at: new Date().toISOString(),
      updated_by: by,
    };
    await this.write(rule, enabled ? 'enable' : 'disable', current);
    return rule;
  }

  async delete(id: string, by: string): Promise<StoredRule> {
    const current = await this.live(id);
    const rule: StoredRule = {
      ...current.rule,
      deleted: true,
      enabled: false,
      revision: current.rule.revision + 1,
      updated_at: new Date().toISOString(),
      updated_by: by,
    };
    await this.write(rule, 'delete', current);
    return rule;
  }

  async revisions(id: string): Promise<RuleRevision[]> {
    const r = await this.client.search<RuleRevision & { doc_type: string }>({
      index: this.index,
      size: 10_000,
      query: { bool: { filter: [{ term: { doc_type: 'revision' } }, { term: { id } }] } },
      sort: [{ revision: 'desc' }],
      ignore_unavailable: true,
    });
    return r.hits.hits.map((h) => stripRevision(h._source!));
  }

  async revision(id: string, revision: number): Promise<RuleRevision | undefined> {
    try {
      const r = await this.client.get<RuleRevision & { doc_type: string }>({
        index: this.index,
        id: `revision:${id}:${revision}`,
      });
      return r.found && r._source ? stripRevision(r._source) : undefined;
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async fileStates(): Promise<Map<string, FileRuleState>> {
    const r = await this.client.search<FileRuleState & { doc_type: string }>({
      index: this.index,
      size: 10_000,
      query: { term: { doc_type: 'file-state' } },
      ignore_unavailable: true,
    });
    return new Map(
      r.hits.hits.map((h) => {
        const { doc_type: _d, ...state } = h._source!;
        return [state.id, state];
      }),
    );
  }

  async setFileEnabled(id: string, enabled: boolean, by: string): Promise<FileRuleState> {
    const state: FileRuleState = { id, enabled, updated_at: new Date().toISOString(), updated_by: by };
    await this.client.index({
      index: this.index,
      id: `file-state:${id}`,
      document: { doc_type: 'file-state', ...state },
      refresh: true,
    });
    return state;
  }

  private async live(id: string) {
    const current = await this.readCurrent(id);
    if (!current || current.rule.deleted) throw new RuleNotFoundError(`rule ${id} does not exist`);
    return current;
  }

  /** Current document first (guarded), then the immutable revision. */
  private async write(
    rule: StoredRule,
    change: RuleChange,
    current: { seq: number; term: number } | undefined,
  ) {
    try {
      await this.client.index({
        index: this.index,
        id: `current:${rule.id}`,
        document: { doc_type: 'current', ...rule },
        ...(current
          ? { if_seq_no: current.seq, if_primary_term: current.term }
          : { op_type: 'create' as const }),
        refresh: true,
      });
    } catch (err) {
      if (isStatus(err, 409)) throw new RuleConflictError(`rule ${rule.id} was changed concurrently; retry`);
      throw err;
    }
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
    await this.client.index({
      index: this.index,
      id: `revision:${rule.id}:${rule.revision}`,
      document: { doc_type: 'revision', ...revision },
      refresh: true,
    });
  }
}

function strip(doc: StoredRule & { doc_type?: string }): StoredRule {
  const { doc_type: _d, ...rule } = doc;
  return rule;
}

function stripRevision(doc: RuleRevision & { doc_type?: string }): RuleRevision {
  const { doc_type: _d, ...rev } = doc;
  return rev;
}
