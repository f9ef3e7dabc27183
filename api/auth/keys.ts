/**
 * API keys: `gw_<id>_<secret>`. The id (public, 16 hex digits) finds the record; the secret
 * (32 random bytes, base64url) is stored only as SHA-256(salt ‖ secret) with a per-key random
 * salt and compared in constant time. A key is shown once, when created.
 *
 * Records live in `${prefix}-api-keys`; verified records are cached briefly (revocation
 * through this process takes effect at once, through another within `cacheMs`).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import { ensureIndex } from '../../core/store/elasticsearch.ts';

export const ROLES = ['viewer', 'analyst', 'admin', 'ingest'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  salt: string;
  hash: string;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
  revoked_by: string | null;
}

/** What callers may see about a key (never the hash or salt). */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'salt' | 'hash'>;

export interface Principal {
  keyId: string;
  name: string;
  role: Role;
}

const TOKEN = /^gw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export const apiKeyMappings = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    name: { type: 'keyword' },
    role: { type: 'keyword' },
    salt: { type: 'keyword', index: false },
    hash: { type: 'keyword', index: false },
    created_at: { type: 'date' },
    created_by: { type: 'keyword' },
    revoked_at: { type: 'date' },
    revoked_by: { type: 'keyword' },
  },
} as const;

export function apiKeysIndex(prefix: string): string {
  return `${prefix}-api-keys`;
}

function digest(salt: string, secret: string): Buffer {
  return createHash('sha256').update(Buffer.from(salt, 'base64url')).update(secret, 'utf8').digest();
}

export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

const info = ({ salt: _s, hash: _h, ...rest }: ApiKeyRecord): ApiKeyInfo => rest;

/** What a key record may show (never the hash or salt). */
export const keyInfo = info;

/** Where keys live: Elasticsearch (ApiKeyStore) or the embedded SQLite file (embedded/api-stores.ts). */
export interface KeyStore {
  install(): Promise<void>;
  /** Create a key; the returned token is the only time the secret exists outside the caller. */
  create(role: Role, name: string, createdBy: string): Promise<{ token: string; key: ApiKeyInfo }>;
  list(): Promise<ApiKeyInfo[]>;
  get(id: string): Promise<ApiKeyInfo | undefined>;
  /** Revoke; returns the key, or undefined when no such key exists. Revoking twice is a no-op. */
  revoke(id: string, by: string): Promise<ApiKeyInfo | undefined>;
  /** The principal a bearer token stands for, or undefined (unknown, malformed, revoked, wrong secret). */
  verify(token: string): Promise<Principal | undefined>;
}

/** A new key: its record (salted hash only) and the token shown once. */
export function newKeyRecord(
  role: Role,
  name: string,
  createdBy: string,
): { token: string; record: ApiKeyRecord } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('base64url');
  const record: ApiKeyRecord = {
    id,
    name,
    role,
    salt,
    hash: digest(salt, secret).toString('base64url'),
    created_at: new Date().toISOString(),
    created_by: createdBy,
    revoked_at: null,
    revoked_by: null,
  };
  return { token: `gw_${id}_${secret}`, record };
}

/** The principal for a record and the secret presented (constant-time comparison). */
export function verifyRecord(record: ApiKeyRecord | null | undefined, secret: string): Principal | undefined {
  if (!record || record.revoked_at) return undefined;
  const expected = Buffer.from(record.hash, 'base64url');
  const actual = digest(record.salt, secret);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
  return { keyId: record.id, name: record.name, role: record.role };
}

export class ApiKeyStore implements KeyStore {
  readonly index: string;
  private readonly client: Client;
  private readonly cacheMs: number;
  private readonly cache = new Map<string, { record: ApiKeyRecord | null; until: number }>();

  constructor(client: Client, prefix: string, options: { cacheMs?: number } = {}) {
    this.client = client;
    this.index = apiKeysIndex(prefix);
    this.cacheMs = options.cacheMs ?? 10_000;
  }

  async install(): Promise<void> {
    await ensureIndex(this.client, this.index, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: apiKeyMappings,
    });
  }

  /** Create a key; the returned token is the only time the secret exists outside the caller. */
  async create(role: Role, name: string, createdBy: string): Promise<{ token: string; key: ApiKeyInfo }> {
    const { token, record } = newKeyRecord(role, name, createdBy);
    const id = record.id;
    await this.client.create({ index: this.index, id, document: record, refresh: 'wait_for' });
    this.cache.delete(id);
    return { token, key: info(record) };
  }

  async list(): Promise<ApiKeyInfo[]> {
    const r = await this.client.search<ApiKeyRecord>({
      index: this.index,
      size: 10_000,
      sort: [{ created_at: 'asc' }, { id: 'asc' }],
      ignore_unavailable: true,
    });
    return r.hits.hits.map((h) => info(h._source!));
  }

  async get(id: string): Promise<ApiKeyInfo | undefined> {
    const record = await this.read(id);
    return record ? info(record) : undefined;
  }

  /** Revoke; returns the key, or undefined when no such key exists. Revoking twice is a no-op. */
  async revoke(id: string, by: string): Promise<ApiKeyInfo | undefined> {
    const record = await this.read(id);
    if (!record) return undefined;
    this.cache.delete(id);
    if (record.revoked_at) return info(record);
    const patch = { revoked_at: new Date().toISOString(), revoked_by: by };
    await this.client.update({ index: this.index, id, doc: patch, refresh: 'wait_for' });
    this.cache.delete(id);
    return info({ ...record, ...patch });
  }

  /** The principal a bearer token stands for, or undefined (unknown, malformed, revoked, wrong secret). */
  async verify(token: string): Promise<Principal | undefined> {
    const parsed = parseToken(token);
    if (!parsed) return undefined;
    return verifyRecord(await this.cached(parsed.id), parsed.secret);
  }

  private async cached(id: string): Promise<ApiKeyRecord | null> {
    const now = Date.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) return hit.record;
    const record = (await this.read(id)) ?? null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(id, { record, until: now + this.cacheMs });
    return record;
  }

  private async read(id: string): Promise<ApiKeyRecord | undefined> {
    try {
      const r = await this.client.get<ApiKeyRecord>({ index: this.index, id });
      return r.found ? r._source : undefined;
    } catch (err) {
      if (err instanceof errors.ResponseError && err.statusCode === 404) return undefined;
      throw err;
    }
  }
}
