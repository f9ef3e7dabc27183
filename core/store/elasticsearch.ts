/**
 * A thin typed layer over @elastic/elasticsearch: bulk writes with per-item results,
 * paginated search (point-in-time + search_after), templates and aliases, and a probe of
 * what the connected node supports. Everything Gatewatch stores goes through here.
 */

import { readFileSync } from 'node:fs';
import type { estypes } from '@elastic/elasticsearch';
import { Client, errors } from '@elastic/elasticsearch';
import { ConfigError, durationMs } from '../config/load.ts';
import type { GatewatchConfig } from '../config/schema.ts';

export type { estypes };
export { errors as esErrors };

/** The node URLs of `elasticsearch.url` (several nodes of one cluster are separated by commas). */
export function nodeUrls(url: string): string[] {
  return url
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
}

export function createEsClient(config: GatewatchConfig['elasticsearch']): Client {
  const auth = config.apiKey
    ? { apiKey: config.apiKey }
    : config.username
      ? { username: config.username, password: config.password ?? '' }
      : undefined;
  const nodes = nodeUrls(config.url);
  let ca: Buffer | undefined;
  if (config.caFile !== undefined) {
    try {
      ca = readFileSync(config.caFile);
    } catch (err) {
      throw new ConfigError(
        `config: elasticsearch.caFile: cannot read ${config.caFile}: ${(err as Error).message}`,
      );
    }
  }
  return new Client({
    nodes,
    ...(auth ? { auth } : {}),
    ...(ca ? { tls: { ca } } : {}),
    requestTimeout: durationMs(config.requestTimeout),
    // Retries are the caller's business (per-item backoff, dead letters): on one node the
    // client's own retry would only re-send whole bulk bodies. With several nodes, a request
    // that could not reach one (connection refused or reset, 502/503/504; never a timeout) is
    // sent to the next: the client spreads requests round the nodes and leaves a dead one out
    // until it answers again.
    maxRetries: nodes.length > 1 ? nodes.length - 1 : 0,
  });
}

/** Names of everything Gatewatch creates in Elasticsearch, from one prefix. */
export function indexNames(prefix: string) {
  return {
    eventsTemplate: `${prefix}-events`,
    eventsPattern: `${prefix}-events-*`,
    eventsAlias: `${prefix}-events`,
    /** Daily indices: the day is taken from the event's own @timestamp (UTC). */
    eventsIndexFor: (timestamp: string) => `${prefix}-events-${timestamp.slice(0, 10).replaceAll('-', '.')}`,
    incidents: `${prefix}-incidents`,
    deadLetters: `${prefix}-dead-letters`,
    ruleRuns: `${prefix}-rule-runs`,
    rules: `${prefix}-rules`,
    state: `${prefix}-state`,
    /** Rule partials maintained as events arrive (docs/partials.md). */
    partials: `${prefix}-partials`,
    /** Deployment settings Gatewatch creates itself (the fingerprint secret when none is configured). */
    settings: `${prefix}-settings`,
  };
}

export interface IndexTemplateSpec {
  name: string;
  patterns: string[];
  mappings: Record<string, unknown>;
  aliases?: string[];
  shards?: number;
  replicas?: number;
  priority?: number;
}

/** Install (or replace) a composable index template. Idempotent. */
export async function putIndexTemplate(client: Client, spec: IndexTemplateSpec): Promise<void> {
  await client.indices.putIndexTemplate({
    name: spec.name,
    index_patterns: spec.patterns,
    priority: spec.priority ?? 100,
    template: {
      settings: {
        number_of_shards: spec.shards ?? 1,
        number_of_replicas: spec.replicas ?? 0,
        'index.refresh_interval': '1s',
      },
      mappings: spec.mappings as estypes.MappingTypeMapping,
      ...(spec.aliases ? { aliases: Object.fromEntries(spec.aliases.map((a) => [a, {}])) } : {}),
    },
  });
}

/** Create a concrete index if absent (templates apply). Safe against concurrent creators. */
/**
 * Create `index` with `body` (settings, mappings), or, when it exists already, add the fields this
 * version's mappings have that the index lacks (an index made by an earlier version has a strict
 * mapping without them, and every write carrying one would fail).
 */
export async function ensureIndex(client: Client, index: string, body: Record<string, unknown> = {}) {
  try {
    await client.indices.create({ index, ...body });
  } catch (err) {
    if (
      !(err instanceof errors.ResponseError && err.body?.error?.type === 'resource_already_exists_exception')
    )
      throw err;
    const mappings = body.mappings as { properties?: Record<string, unknown> } | undefined;
    if (mappings?.properties === undefined) return;
    try {
      await client.indices.putMapping({ index, properties: mappings.properties as never });
    } catch (e) {
      const reason = e instanceof errors.ResponseError ? (e.body?.error?.reason ?? e.message) : String(e);
      throw new Error(
        `index ${index} was made by another Gatewatch version with an incompatible mapping (${reason}): reindex it or give this deployment a new elasticsearch.indexPrefix`,
      );
    }
  }
}

/** Point `alias` at `index` (adds, never removes). */
export async function ensureAlias(client: Client, index: string, alias: string): Promise<void> {
  await client.indices.updateAliases({ actions: [{ add: { index, alias } }] });
}

export type BulkOp = 'create' | 'index' | 'update';

export interface BulkItem<T = unknown> {
  op: BulkOp;
  index: string;
  id: string;
  /** The document (create/index) or the partial document (update). */
  doc: T;
  /** For update: create the document with `doc` if missing. */
  upsert?: boolean;
  /** `index` must be an alias: fail (404) rather than auto-create an index of that name. */
  requireAlias?: boolean;
}

export interface BulkItemResult {
  id: string;
  index: string;
  status: number;
  /** Written now, or already present with the same id under create semantics. */
  ok: boolean;
  /** A create that found the document already there (409): a harmless replay. */
  duplicate: boolean;
  /** A failure worth retrying later (429, 5xx, shard unavailable). */
  retryable: boolean;
  /** The concrete index the operation went to (`index` may be an alias). */
  writtenTo?: string;
  error?: { type: string; reason: string };
}

export interface BulkResult {
  items: BulkItemResult[];
  took: number;
  written: number;
  duplicates: number;
  retryable: number;
  rejected: number;
}

/**
 * Bulk write with per-item results in request order. A transport failure (node down,
 * timeout) throws: the caller keeps the batch and retries it whole. Item failures never
 * throw: they are classified so the caller retries the retryable ones and dead-letters the
 * rest. A document that cannot be sent at all is such an item failure too, not a failure of
 * the request: one nested too deeply to serialise, or one too large for the node's request
 * limit (a 413 splits the request until the offending document stands alone).
 */
export async function bulkWrite(
  client: Client,
  items: BulkItem[],
  options: { refresh?: boolean | 'wait_for' } = {},
): Promise<BulkResult> {
  const result: BulkResult = { items: [], took: 0, written: 0, duplicates: 0, retryable: 0, rejected: 0 };
  if (items.length === 0) return result;
  const results: BulkItemResult[] = new Array(items.length);
  const unsendable = (i: number, status: number, type: string, reason: string) => {
    const requested = items[i]!;
    results[i] = {
      id: requested.id,
      index: requested.index,
      status,
      ok: false,
      duplicate: false,
      retryable: false,
      error: { type, reason },
    };
  };
  // Each document is serialised here, one by one, so one that cannot be (the client would
  // throw for the whole request) is set apart with its reason.
  const lines: string[] = [];
  const sent: number[] = [];
  /** Where item i's action line sits in `lines`. */
  const lineOf = new Int32Array(items.length);
  items.forEach((item, i) => {
    let doc: string | undefined;
    try {
      doc = JSON.stringify(
        item.op === 'update' ? { doc: item.doc, doc_as_upsert: item.upsert ?? false } : item.doc,
      );
    } catch (err) {
      unsendable(
        i,
        400,
        'serialization_exception',
        err instanceof RangeError
          ? `the document is nested too deeply to be serialised (${err.message})`
          : `the document cannot be serialised: ${(err as Error).message}`,
      );
      return;
    }
    if (doc === undefined) {
      unsendable(i, 400, 'serialization_exception', 'the document is empty');
      return;
    }
    lineOf[i] = lines.length;
    lines.push(
      JSON.stringify({
        [item.op]: {
          _index: item.index,
          _id: item.id,
          ...(item.requireAlias ? { require_alias: true } : {}),
        },
      }),
      doc,
    );
    sent.push(i);
  });
  const send = async (part: number[]): Promise<void> => {
    if (part.length === 0) return;
    let response: estypes.BulkResponse;
    try {
      response = await client.bulk({
        operations: part.flatMap((i) => [lines[lineOf[i]!]!, lines[lineOf[i]! + 1]!]),
        refresh: options.refresh ?? false,
      });
    } catch (err) {
      if (!(err instanceof errors.ResponseError) || err.statusCode !== 413) throw err;
      if (part.length === 1) {
        const bytes = Buffer.byteLength(lines[lineOf[part[0]!]! + 1]!);
        return unsendable(
          part[0]!,
          413,
          'request_entity_too_large',
          `the document (${bytes} bytes) is larger than Elasticsearch accepts in one request (http.max_content_length)`,
        );
      }
      const half = Math.ceil(part.length / 2);
      await send(part.slice(0, half));
      await send(part.slice(half));
      return;
    }
    result.took += response.took;
    response.items.forEach((entry, k) => {
      const i = part[k]!;
      const requested = items[i]!;
      const op = (entry.create ?? entry.index ?? entry.update ?? entry.delete)!;
      const status = op.status;
      const duplicate = requested.op === 'create' && status === 409;
      const ok = (status >= 200 && status < 300) || duplicate;
      const retryable = !ok && (status === 429 || status >= 500);
      const item: BulkItemResult = {
        id: requested.id,
        index: requested.index,
        status,
        ok,
        duplicate,
        retryable,
        ...(op._index ? { writtenTo: op._index } : {}),
      };
      if (op.error && !duplicate) item.error = { type: op.error.type, reason: op.error.reason ?? '' };
      results[i] = item;
    });
  };
  await send(sent);
  for (const item of results) {
    result.items.push(item);
    if (item.duplicate) result.duplicates++;
    else if (item.ok) result.written++;
    else if (item.retryable) result.retryable++;
    else result.rejected++;
  }
  return result;
}

export interface SearchPageOptions {
  index: string;
  query?: estypes.QueryDslQueryContainer;
  sort?: estypes.Sort;
  pageSize?: number;
  source?: string[] | boolean;
  /** Doc-value fields returned under `hit.fields` (cheaper than `_source` for a few keywords). */
  docvalueFields?: string[];
  /**
   * Return only each hit's sort values and doc-value fields (no _index, _id, _score): less to
   * send and parse when the caller reads nothing else.
   */
  lean?: boolean;
  /** Stop after this many hits in total (undefined: read to the end). */
  limit?: number;
}

/**
 * Iterate every hit matching a query, in a stable order, with a point-in-time so the result
 * does not shift under concurrent writes. Pages of `pageSize` via search_after.
 */
export async function* searchAll<T = Record<string, unknown>>(
  client: Client,
  options: SearchPageOptions,
): AsyncGenerator<estypes.SearchHit<T>> {
  const pageSize = options.pageSize ?? 1000;
  const pit = await client.openPointInTime({
    index: options.index,
    keep_alive: '2m',
    ignore_unavailable: true,
  });
  let searchAfter: estypes.SortResults | undefined;
  let seen = 0;
  try {
    for (;;) {
      const size = options.limit === undefined ? pageSize : Math.min(pageSize, options.limit - seen);
      if (size <= 0) return;
      const response = await client.search<T>({
        pit: { id: pit.id, keep_alive: '2m' },
        size,
        ...(options.query ? { query: options.query } : {}),
        sort: options.sort ?? [{ _shard_doc: 'asc' }],
        ...(options.source !== undefined ? { _source: options.source } : {}),
        ...(options.docvalueFields ? { docvalue_fields: options.docvalueFields } : {}),
        ...(options.lean ? { filter_path: ['hits.hits.sort', 'hits.hits.fields'] } : {}),
        ...(searchAfter ? { search_after: searchAfter } : {}),
        track_total_hits: false,
      });
      // filter_path leaves out `hits` altogether when there are none
      const hits = response.hits?.hits ?? [];
      for (const hit of hits) yield hit;
      seen += hits.length;
      if (hits.length < size) return;
      searchAfter = hits[hits.length - 1]!.sort;
    }
  } finally {
    await client.closePointInTime({ id: pit.id }).catch(() => undefined);
  }
}

/** Wait until the cluster answers with at least yellow health. */
export async function waitForElasticsearch(
  client: Client,
  timeoutMs = 60_000,
  /** Called on the first failed attempt and every `reportEveryMs` after (to say what start-up waits for). */
  onWaiting?: (err: Error) => void,
  reportEveryMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let reported = Number.NEGATIVE_INFINITY;
  while (Date.now() < deadline) {
    try {
      await client.cluster.health({ wait_for_status: 'yellow', timeout: '1s' });
      return;
    } catch (err) {
      if (Date.now() - reported >= reportEveryMs) {
        onWaiting?.(err as Error);
        reported = Date.now();
      }
      last = err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(`Elasticsearch did not become ready within ${timeoutMs} ms: ${(last as Error)?.message}`);
}

/** Elasticsearch answered that an index (or every index behind an alias) does not exist. */
export function isIndexNotFound(err: unknown): boolean {
  if (err instanceof errors.ResponseError) {
    return (
      (err.body as { error?: { type?: string } } | undefined)?.error?.type === 'index_not_found_exception'
    );
  }
  return err instanceof Error && err.message.startsWith('index_not_found_exception');
}

export interface EsCapabilities {
  version: string;
  /** `GET /` (rest-root module). Absent on the integ-test distribution. */
  rootEndpoint: boolean;
  /** Painless scripting (lang-painless module). */
  scripting: boolean;
  /** Ingest pipelines (ingest-common module). */
  ingestPipelines: boolean;
  /** Human-readable notes on what is degraded and why. */
  notes: string[];
}

/**
 * Probe what the node offers. Gatewatch is built on core features only (bulk, search,
 * composite/cardinality/percentiles aggregations, PIT, templates, aliases); this tells the
 * operator which optional modules are missing and what that changes.
 */
export async function probeCapabilities(client: Client): Promise<EsCapabilities> {
  const nodes = await client.nodes.info({ metric: ['plugins'] });
  const node = Object.values(nodes.nodes)[0];
  const modules = new Set((node?.modules ?? []).map((m) => m.name));
  const notes: string[] = [];
  const rootEndpoint = modules.has('rest-root');
  const scripting = modules.has('lang-painless');
  const ingestPipelines = modules.has('ingest-common');
  if (!rootEndpoint)
    notes.push('GET / is unavailable (rest-root module absent): readiness uses cluster health.');
  if (!scripting) notes.push('Painless is unavailable: incident updates use partial documents, not scripts.');
  if (!ingestPipelines)
    notes.push('Ingest pipelines are unavailable: Gatewatch enriches in its own workers.');
  return { version: node?.version ?? 'unknown', rootEndpoint, scripting, ingestPipelines, notes };
}
