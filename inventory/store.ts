/**
 * Where per-endpoint state lives. Two implementations behind one interface:
 * - `MemoryInventoryStore`: a map with `toJSON`/`fromJSON`, for the embedded mode (persist
 *   the JSON wherever it keeps state, e.g. a SQLite row).
 * - `ElasticsearchInventoryStore`: index `${prefix}-inventory`, document id = endpoint id,
 *   read-merge-write with optimistic concurrency (`if_seq_no`/`if_primary_term`, or `create`
 *   for new endpoints), retried on conflict. No scripts.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { ensureIndex } from '../core/store/elasticsearch.ts';
import { type EndpointState, mergeState } from './state.ts';

export type SortField = 'last_seen' | 'first_seen' | 'requests' | 'route' | 'clients_estimate';

export interface EndpointQuery {
  host?: string;
  method?: string;
  /** Route prefix, e.g. `/api/v1/`. */
  routePrefix?: string;
  sort?: SortField;
  order?: 'asc' | 'desc';
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface EndpointPage {
  items: { endpoint: EndpointState; cursor: string }[];
  /** Cursor for the next page, absent at the end. */
  next_cursor?: string;
}

export interface InventoryStore {
  /** Create indices or tables. Idempotent. */
  install(): Promise<void>;
  /** Merge deltas (one per endpoint id) into stored state. */
  merge(deltas: readonly EndpointState[]): Promise<void>;
  get(id: string): Promise<EndpointState | undefined>;
  list(query?: EndpointQuery): Promise<EndpointPage>;
  /** Every endpoint (for classification and export). */
  all(): AsyncIterable<EndpointState>;
}

export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

function sortValue(e: EndpointState, field: SortField): string | number {
  return e[field];
}

export function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

export function decodeCursor(cursor: string): unknown[] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 2) throw new Error('shape');
    return v;
  } catch {
    throw new InvalidCursorError('invalid cursor');
  }
}

function matches(e: EndpointState, q: EndpointQuery): boolean {
  if (q.host !== undefined && e.host !== q.host.toLowerCase()) return false;
  if (q.method !== undefined && e.method !== q.method.toUpperCase()) return false;
  if (
    q.routePrefix !== undefined &&
    !e.route_key.startsWith(q.routePrefix) &&
    !e.route.startsWith(q.routePrefix)
  )
    return false;
  return true;
}

export interface MemoryInventoryJSON {
  version: 1;
  endpoints: EndpointState[];
}

export class MemoryInventoryStore implements InventoryStore {
  private readonly map = new Map<string, EndpointState>();

  async install(): Promise<void> {}

  async merge(deltas: readonly EndpointState[]): Promise<void> {
    for (const d of deltas) {
      const cur = this.map.get(d.id);
      this.map.set(d.id, cur ? mergeState(cur, d) : structuredClone(d));
    }
  }

  async get(id: string): Promise<EndpointState | undefined> {
    const e = this.map.get(id);
    return e ? structuredClone(e) : undefined;
  }

  async list(q: EndpointQuery = {}): Promise<EndpointPage> {
    const field = q.sort ?? 'last_seen';
    const dir = (q.order ?? (field === 'route' ? 'asc' : 'desc')) === 'asc' ? 1 : -1;
    const limit = q.limit ?? 100;
    const cmp = (a: [string | number, string], b: [string | number, string]) =>
      (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0) * dir || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
    const after = q.cursor !== undefined ? (decodeCursor(q.cursor) as [string | number, string]) : undefined;
    const rows = [...this.map.values()]
      .filter((e) => matches(e, q))
      .map((e) => ({ e, k: [sortValue(e, field), e.id] as [string | number, string] }))
      .sort((a, b) => cmp(a.k, b.k))
      .filter((r) => after === undefined || cmp(r.k, after) > 0);
    const page = rows.slice(0, limit);
    const items = page.map((r) => ({ endpoint: structuredClone(r.e), cursor: encodeCursor(r.k) }));
    return rows.length > limit && items.length > 0
      ? { items, next_cursor: items[items.length - 1]!.cursor }
      : { items };
  }

  async *all(): AsyncIterable<EndpointState> {
    for (const e of this.map.values()) yield structuredClone(e);
  }

  toJSON(): MemoryInventoryJSON {
    return { version: 1, endpoints: [...this.map.values()] };
  }

  static fromJSON(json: MemoryInventoryJSON): MemoryInventoryStore {
    const s = new MemoryInventoryStore();
    for (const e of json.endpoints) s.map.set(e.id, structuredClone(e));
    return s;
  }
}

export function inventoryIndex(prefix: string): string {
  return `${prefix}-inventory`;
}

export const INVENTORY_MAPPINGS: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    host: { type: 'keyword' },
    method: { type: 'keyword' },
    route: { type: 'keyword' },
    route_key: { type: 'keyword' },
    route_variants: { type: 'keyword' },
    first_seen: { type: 'date' },
    last_seen: { type: 'date' },
    requests: { type: 'long' },
    status_classes: {
      properties: Object.fromEntries(
        ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'].map((k) => [k, { type: 'long' }]),
      ),
    },
    status_codes: { type: 'object', enabled: false },
    status_overflow: { type: 'long' },
    auth: {
      properties: {
        present: { type: 'long' },
        absent: { type: 'long' },
        unknown: { type: 'long' },
        anonymous_success: { type: 'long' },
        last_anonymous_success: { type: 'date' },
      },
    },
    params: { type: 'keyword' },
    params_overflow: { type: 'boolean' },
    clients_estimate: { type: 'long' },
    keys_estimate: { type: 'long' },
    bytes_p50: { type: 'double' },
    bytes_p95: { type: 'double' },
    sketch: { type: 'object', enabled: false },
  },
};

export interface ElasticsearchInventoryOptions {
  /** Refresh after writes (tests; default false). */
  refresh?: boolean;
  /** Attempts per endpoint on version conflicts (default 8). */
  maxAttempts?: number;
}

export class ElasticsearchInventoryStore implements InventoryStore {
  readonly index: string;
  private readonly refresh: boolean;
  private readonly maxAttempts: number;

  private readonly es: Client;

  constructor(es: Client, prefix: string, options: ElasticsearchInventoryOptions = {}) {
    this.es = es;
    this.index = inventoryIndex(prefix);
    this.refresh = options.refresh ?? false;
    this.maxAttempts = options.maxAttempts ?? 8;
  }

  async install(): Promise<void> {
    await ensureIndex(this.es, this.index, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: INVENTORY_MAPPINGS,
    });
  }

  async merge(deltas: readonly EndpointState[]): Promise<void> {
    for (let i = 0; i < deltas.length; i += 500) await this.mergeChunk(deltas.slice(i, i + 500));
  }

  private async mergeChunk(deltas: readonly EndpointState[]): Promise<void> {
    let todo = [...deltas];
    for (let attempt = 1; todo.length > 0; attempt++) {
      if (attempt > this.maxAttempts) {
        throw new Error(
          `inventory merge: ${todo.length} endpoints still conflicting after ${this.maxAttempts} attempts`,
        );
      }
      const current = await this.es.mget<EndpointState>({ index: this.index, ids: todo.map((d) => d.id) });
      const operations: unknown[] = [];
      todo.forEach((d, i) => {
        const doc = current.docs[i] as estypes.GetGetResult<EndpointState> | undefined;
        if (doc?.found && doc._source) {
          operations.push({
            index: {
              _index: this.index,
              _id: d.id,
              if_seq_no: doc._seq_no,
              if_primary_term: doc._primary_term,
            },
          });
          operations.push(mergeState(doc._source, d));
        } else {
          operations.push({ create: { _index: this.index, _id: d.id } });
          operations.push(d);
        }
      });
      const res = await this.es.bulk({ operations, refresh: this.refresh ? 'wait_for' : false });
      const retry: EndpointState[] = [];
      const failures: string[] = [];
      res.items.forEach((item, i) => {
        const op = (item.index ?? item.create)!;
        if (op.status === 409) retry.push(todo[i]!);
        else if (op.status === 429 || op.status >= 500) retry.push(todo[i]!);
        else if (op.status >= 300) failures.push(`${op._id}: ${op.error?.type} ${op.error?.reason ?? ''}`);
      });
      if (failures.length > 0)
        throw new Error(`inventory merge rejected: ${failures.slice(0, 3).join('; ')}`);
      todo = retry;
      if (todo.length > 0)
        await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt * Math.random())));
    }
  }

  async get(id: string): Promise<EndpointState | undefined> {
    const r = await this.es.get<EndpointState>({ index: this.index, id }, { ignore: [404] });
    return r.found ? r._source : undefined;
  }

  async list(q: EndpointQuery = {}): Promise<EndpointPage> {
    const field = q.sort ?? 'last_seen';
    const order = q.order ?? (field === 'route' ? 'asc' : 'desc');
    const limit = q.limit ?? 100;
    const filter: estypes.QueryDslQueryContainer[] = [];
    if (q.host !== undefined) filter.push({ term: { host: q.host.toLowerCase() } });
    if (q.method !== undefined) filter.push({ term: { method: q.method.toUpperCase() } });
    if (q.routePrefix !== undefined) {
      filter.push({
        bool: {
          should: [{ prefix: { route_key: q.routePrefix } }, { prefix: { route: q.routePrefix } }],
          minimum_should_match: 1,
        },
      });
    }
    const res = await this.es.search<EndpointState>({
      index: this.index,
      size: limit + 1,
      query: { bool: { filter } },
      sort: [{ [field]: { order } }, { id: { order } }],
      ...(q.cursor !== undefined ? { search_after: decodeCursor(q.cursor) as estypes.SortResults } : {}),
      track_total_hits: false,
    });
    const hits = res.hits.hits;
    const items = hits
      .slice(0, limit)
      .map((h) => ({ endpoint: h._source!, cursor: encodeCursor(h.sort as unknown[]) }));
    return hits.length > limit && items.length > 0
      ? { items, next_cursor: items[items.length - 1]!.cursor }
      : { items };
  }

  async *all(): AsyncIterable<EndpointState> {
    let after: estypes.SortResults | undefined;
    for (;;) {
      const res = await this.es.search<EndpointState>({
        index: this.index,
        size: 1000,
        sort: [{ id: 'asc' }],
        ...(after ? { search_after: after } : {}),
        track_total_hits: false,
      });
      for (const h of res.hits.hits) yield h._source!;
      if (res.hits.hits.length < 1000) return;
      after = res.hits.hits[res.hits.hits.length - 1]!.sort;
    }
  }
}
