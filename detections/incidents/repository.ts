/**
 * The incident repository: what the REST API (and any other triage front end) reads and
 * changes. Storage-neutral interface; the Elasticsearch implementation lives here too, an
 * embedded one can implement the same interface.
 *
 * The detection engine creates and updates incidents (deterministic ids, see ./writer.ts);
 * this repository only lists, reads and triages them. Every change is a partial-document
 * update guarded by if_seq_no / if_primary_term (no scripts: Painless may be absent), retried
 * after a concurrent write by re-reading and re-checking the transition.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import {
  ENTITY_ROLES,
  INCIDENT_DETAIL_FIELDS,
  type Incident,
  type IncidentStatus,
  type IncidentSummary,
  incidentMappings,
  SEVERITIES,
  SEVERITY_RANK,
  type Severity,
  STATUSES,
  TRANSITIONS,
} from '../../core/schema/incident.ts';
import { ensureIndex, type estypes, indexNames } from '../../core/store/elasticsearch.ts';
import { SearchBatcher } from '../../core/store/search-batcher.ts';

export type IncidentSortField = 'created_at' | 'last_seen' | 'severity' | 'risk';
export type HistoryEntry = Incident['history'][number];
export type IncidentComment = Incident['comments'][number];

export interface IncidentQuery {
  status?: IncidentStatus[];
  severity?: Severity[];
  /** Rule ids. */
  rule?: string[];
  /** Entity values (any entity role: ip, user, api_key, route, asn, country). */
  entity?: string[];
  tags?: string[];
  assignee?: string;
  /** Words in the title. */
  text?: string;
  /** Incidents whose activity [first_seen, last_seen] overlaps [from, to]. ISO timestamps. */
  from?: string;
  to?: string;
  sort?: IncidentSortField;
  order?: 'asc' | 'desc';
  /** Page size. */
  limit?: number;
  /** Opaque cursor from a previous page's `next_cursor`. */
  cursor?: string;
}

/** An incident without its long parts (evidence, detection ids, history, comments). */
export type { IncidentSummary };

export interface IncidentPage {
  items: IncidentSummary[];
  /** Absent when this is the last page. */
  next_cursor: string | null;
}

export interface TriageChange {
  status?: IncidentStatus;
  /** null unassigns. */
  assignee?: string | null;
  severity?: Severity;
  /** Free text stored on the history entries. */
  note?: string;
}

export interface BulkStatusResult {
  id: string;
  ok: boolean;
  /** not_found | illegal_transition | conflict */
  error?: string;
  detail?: string;
}

export interface StatsQuery {
  from: string;
  to: string;
  /** Fixed histogram interval: 1m … 30d. */
  interval: string;
}

export interface IncidentStats {
  from: string;
  to: string;
  interval: string;
  total: number;
  by_status: Record<IncidentStatus, number>;
  by_severity: Record<Severity, number>;
  by_rule: { rule_id: string; count: number }[];
  over_time: { start: string; count: number; by_severity: Record<Severity, number> }[];
  /** Mean time from creation to first acknowledgement, over incidents created in range. */
  mean_time_to_acknowledge_ms: number | null;
  acknowledged: number;
  /** Mean time from creation to resolution (resolved or false positive). */
  mean_time_to_resolve_ms: number | null;
  resolved: number;
}

export interface IncidentRepository {
  list(query: IncidentQuery): Promise<IncidentPage>;
  get(id: string): Promise<Incident | undefined>;
  /** Status / assignee / severity in one change; records history. */
  triage(id: string, change: TriageChange, actor: string): Promise<Incident>;
  updateStatus(id: string, status: IncidentStatus, actor: string, note?: string): Promise<Incident>;
  assign(id: string, assignee: string | null, actor: string): Promise<Incident>;
  comment(id: string, text: string, actor: string): Promise<IncidentComment>;
  bulkStatus(
    ids: string[],
    status: IncidentStatus,
    actor: string,
    note?: string,
  ): Promise<BulkStatusResult[]>;
  stats(query: StatsQuery): Promise<IncidentStats>;
}

export class IncidentNotFoundError extends Error {
  override name = 'IncidentNotFoundError';
  readonly id: string;
  constructor(id: string) {
    super(`incident ${id} does not exist`);
    this.id = id;
  }
}

export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
  readonly from: IncidentStatus;
  readonly to: IncidentStatus;
  constructor(from: IncidentStatus, to: IncidentStatus) {
    super(
      `an incident in status ${from} cannot move to ${to} (allowed: ${TRANSITIONS[from].join(', ') || 'none'})`,
    );
    this.from = from;
    this.to = to;
  }
}

/** Too many concurrent writers on one incident. */
export class IncidentConflictError extends Error {
  override name = 'IncidentConflictError';
}

export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

export class InvalidQueryError extends Error {
  override name = 'InvalidQueryError';
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (shared by every implementation)

/** Apply a triage change to an incident: returns the partial document, or undefined if nothing changes. */
export function planTriage(
  incident: Incident,
  change: TriageChange,
  actor: string,
  now: string,
): Partial<Incident> | undefined {
  const entries: HistoryEntry[] = [];
  const patch: Partial<Incident> = {};
  const note = change.note !== undefined ? { note: change.note } : {};
  if (change.status !== undefined && change.status !== incident.status) {
    if (!TRANSITIONS[incident.status].includes(change.status)) {
      throw new IllegalTransitionError(incident.status, change.status);
    }
    patch.status = change.status;
    entries.push({ at: now, by: actor, field: 'status', from: incident.status, to: change.status, ...note });
    if (incident.acknowledged_at === null) patch.acknowledged_at = now;
    if (change.status === 'resolved' || change.status === 'false_positive') patch.resolved_at = now;
    else if (incident.resolved_at !== null) patch.resolved_at = null;
  }
  if (change.assignee !== undefined && change.assignee !== incident.assignee) {
    patch.assignee = change.assignee;
    entries.push({
      at: now,
      by: actor,
      field: 'assignee',
      from: incident.assignee,
      to: change.assignee,
      ...note,
    });
  }
  if (change.severity !== undefined && change.severity !== incident.severity) {
    patch.severity = change.severity;
    patch.severity_rank = SEVERITY_RANK[change.severity];
    entries.push({
      at: now,
      by: actor,
      field: 'severity',
      from: incident.severity,
      to: change.severity,
      ...note,
    });
  }
  if (entries.length === 0) return undefined;
  patch.history = [...incident.history, ...entries];
  patch.updated_at = now;
  return patch;
}

interface CursorState {
  /** Sort field and order the cursor belongs to. */
  s: IncidentSortField;
  o: 'asc' | 'desc';
  /** search_after values. */
  v: (string | number)[];
}

export function encodeCursor(state: CursorState): string {
  return Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, sort: IncidentSortField, order: 'asc' | 'desc'): CursorState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('cursor is not one this API issued');
  }
  const c = parsed as Partial<CursorState> | null;
  if (
    !c ||
    typeof c !== 'object' ||
    !Array.isArray(c.v) ||
    !c.v.every((x) => typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x))) ||
    c.v.length !== sortFields(sort).length
  ) {
    throw new InvalidCursorError('cursor is not one this API issued');
  }
  if (c.s !== sort || c.o !== order) {
    throw new InvalidCursorError(`cursor was issued for sort=${c.s}&order=${c.o}; repeat the same sort`);
  }
  return c as CursorState;
}

/** Sort keys: the requested field, then created_at and id, so the order is total. */
function sortFields(sort: IncidentSortField): string[] {
  const primary = sort === 'severity' ? 'severity_rank' : sort;
  return [...new Set([primary, 'created_at', 'id'])];
}

/** The filters and title words of a listing query. */
function listQuery(q: IncidentQuery): {
  filter: estypes.QueryDslQueryContainer[];
  must: estypes.QueryDslQueryContainer[];
} {
  const filter: estypes.QueryDslQueryContainer[] = [];
  if (q.status?.length) filter.push({ terms: { status: q.status } });
  if (q.severity?.length) filter.push({ terms: { severity: q.severity } });
  if (q.rule?.length) filter.push({ terms: { 'rule.id': q.rule } });
  if (q.tags?.length) filter.push({ terms: { tags: q.tags } });
  if (q.assignee !== undefined) filter.push({ term: { assignee: q.assignee } });
  if (q.entity?.length) {
    filter.push({
      bool: {
        should: ENTITY_ROLES.map((r) => ({ terms: { [`entities.${r}`]: q.entity! } })),
        minimum_should_match: 1,
      },
    });
  }
  if (q.from) filter.push({ range: { last_seen: { gte: q.from } } });
  if (q.to) filter.push({ range: { first_seen: { lte: q.to } } });
  const must: estypes.QueryDslQueryContainer[] = [];
  if (q.text?.trim()) must.push({ match: { 'title.text': { query: q.text, operator: 'and' } } });
  return { filter, must };
}

const INTERVAL = /^([1-9][0-9]*)(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MAX_STATS_BUCKETS = 2000;

export function intervalMs(interval: string): number {
  const m = INTERVAL.exec(interval);
  if (!m) throw new InvalidQueryError(`interval "${interval}" is not like 5m, 1h, 1d`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

// ---------------------------------------------------------------------------------------------
// Elasticsearch

export interface EsIncidentRepositoryOptions {
  /**
   * Refresh after a single triage write so the next list shows it (default true: triage is
   * human-paced; bulk changes refresh once at the end).
   */
  refresh?: boolean | 'wait_for';
  clock?: () => Date;
  /** Attempts on a concurrent-write conflict before giving up. */
  maxAttempts?: number;
  /** Listing requests to Elasticsearch in flight at once; more wait and leave as one _msearch (default 2). */
  listConcurrency?: number;
}

const isStatus = (err: unknown, status: number) =>
  err instanceof errors.ResponseError && err.statusCode === status;

/**
 * Install the incidents template (sorted by created_at desc, id desc: the default listing
 * order, so a page needs no full sort) and create the index. Idempotent.
 */
export async function installIncidentIndex(client: Client, prefix: string): Promise<void> {
  const index = indexNames(prefix).incidents;
  const put = (mappings: unknown) =>
    client.indices.putIndexTemplate({
      name: index,
      index_patterns: [index],
      priority: 100,
      template: {
        settings: {
          number_of_shards: 1,
          number_of_replicas: 0,
          'index.refresh_interval': '1s',
          // The default listing order (newest first, id as tie-breaker) is the index order, so
          // a page is read without sorting the whole index (early termination).
          'index.sort.field': ['created_at', 'id'],
          'index.sort.order': ['desc', 'desc'],
        },
        mappings: mappings as estypes.MappingTypeMapping,
      },
    });
  await put(incidentMappings);
  // The mappings again for an index an earlier version created: its new fields are added.
  await ensureIndex(client, index, { mappings: incidentMappings });
}

/** List pages leave out the long parts of an incident (see IncidentSummarySchema). */
const SUMMARY_EXCLUDES: string[] = [...INCIDENT_DETAIL_FIELDS];
/** Summaries held for listing (about 1 KB each). */
const SUMMARY_CACHE_SIZE = 20_000;
/** How long the created_at extent used to size oldest-first probes is reused. */
const EXTENT_TTL_MS = 30_000;

type SortValues = (string | number)[];
interface PageHit {
  source: IncidentSummary;
  sort: SortValues;
}
interface BoolQuery {
  filter: estypes.QueryDslQueryContainer[];
  must: estypes.QueryDslQueryContainer[];
}
/** Date fields that follow the index order closely: ascending by them reverses it. */
type WindowField = 'created_at' | 'last_seen';

export class ElasticsearchIncidentRepository implements IncidentRepository {
  readonly index: string;
  private readonly refresh: boolean | 'wait_for';
  private readonly clock: () => Date;
  private readonly maxAttempts: number;

  private readonly client: Client;
  /** List pages: concurrent listings leave together as one _msearch (see SearchBatcher). */
  readonly searches: SearchBatcher;
  /** Incident summaries by id at one version (see summaries()); shared by responses, read-only. */
  private readonly summaryCache = new Map<string, { seq: number; term: number; source: IncidentSummary }>();
  /** Extent of a date field in the index; sizes ascending-order windows only (never decides what a page holds). */
  private readonly extents = new Map<
    WindowField,
    { min: number; max: number; count: number; until: number }
  >();

  constructor(client: Client, prefix: string, options: EsIncidentRepositoryOptions = {}) {
    this.client = client;
    this.searches = new SearchBatcher(client, { maxInFlight: options.listConcurrency ?? 2 });
    this.index = indexNames(prefix).incidents;
    this.refresh = options.refresh ?? true;
    this.clock = options.clock ?? (() => new Date());
    this.maxAttempts = options.maxAttempts ?? 5;
  }

  install(prefix: string): Promise<void> {
    return installIncidentIndex(this.client, prefix);
  }

  /**
   * One page. The index is sorted by created_at desc, id desc, so the default order reads a
   * page and stops. Two other common orders are answered the same cheap way:
   * - severity (desc): the page's first severity rank is read in index order (one rank, then
   *   created_at desc, id desc is the index order); only a page crossing into lower ranks runs
   *   the general sort over those lower ranks;
   * - created_at or last_seen asc (oldest first): a reversed index order would put every
   *   document through the top-k heap, so the search is bounded to `field <= t` (for created_at a
   *   doc-id range on the sorted index) with t sized from the field's extent; if the window holds
   *   less than a page, it grows, and at last the unbounded search runs. Each answer is exact: the
   *   window only ever excludes documents that sort after everything the page returns;
   * - severity asc: rank by rank from the lowest, each rank oldest first in windows.
   */
  async list(q: IncidentQuery): Promise<IncidentPage> {
    const sort = q.sort ?? 'created_at';
    const order = q.order ?? 'desc';
    const limit = Math.max(1, Math.min(q.limit ?? 50, 500));
    const query = listQuery(q);
    const after = q.cursor ? decodeCursor(q.cursor, sort, order).v : undefined;
    let hits: PageHit[];
    if (sort === 'severity' && order === 'desc') {
      hits = await this.bySeverityDesc(query, q.severity, limit, after);
    } else if (sort === 'severity' && order === 'asc') {
      hits = await this.bySeverityAsc(query, q.severity, limit, after);
    } else if ((sort === 'created_at' || sort === 'last_seen') && order === 'asc') {
      hits = await this.ascending(query, sort, sortFields(sort), limit, after);
    } else {
      hits = await this.page(query, sortFields(sort), order, limit + 1, after);
    }
    const page = hits.slice(0, limit);
    const last = page[page.length - 1];
    const next = hits.length > limit && last ? encodeCursor({ s: sort, o: order, v: last.sort }) : null;
    return { items: page.map((h) => h.source), next_cursor: next };
  }

  private async page(
    query: BoolQuery,
    fields: string[],
    order: 'asc' | 'desc',
    size: number,
    after: SortValues | undefined,
  ): Promise<PageHit[]> {
    // Only ids, versions and sort values: summaries come from the version-checked cache below.
    const response = await this.searches.search<IncidentSummary>({
      index: this.index,
      size,
      query: { bool: query },
      sort: fields.map((f) => ({ [f]: { order } })) as estypes.Sort,
      // No stored fields at all (not even _id, which is the last sort value): the fetch reads
      // doc values only, never a compressed stored-fields block.
      stored_fields: ['_none_'],
      seq_no_primary_term: true,
      track_total_hits: false,
      ...(after ? { search_after: after } : {}),
    });
    const hits = response.hits.hits;
    const sources = await this.summaries(hits);
    const page: PageHit[] = [];
    hits.forEach((h, i) => {
      const source = sources[i];
      // Gone since the search (deleted): not listed.
      if (source) page.push({ source, sort: h.sort as SortValues });
    });
    return page;
  }

  /**
   * The summaries of searched incidents at the versions the search saw. An incident version
   * (sequence number and primary term) never changes content, so a summary held for that exact
   * version is the document itself; only the others are read (one multi-get of the last
   * refreshed state, as the search saw it). Listing a page then costs Elasticsearch its query
   * and ids, not parsing and re-serialising fifty sources every time.
   */
  private async summaries(hits: estypes.SearchHit<unknown>[]): Promise<(IncidentSummary | undefined)[]> {
    const out: (IncidentSummary | undefined)[] = new Array(hits.length);
    const missing: number[] = [];
    // The search returns no stored fields, not even _id: the id is the last sort value.
    const ids = hits.map((h) => String((h.sort as SortValues).at(-1)));
    hits.forEach((h, i) => {
      const held = this.summaryCache.get(ids[i]!);
      if (held && held.seq === h._seq_no && held.term === h._primary_term) out[i] = held.source;
      else missing.push(i);
    });
    if (missing.length === 0) return out;
    const r = await this.client.mget<IncidentSummary>({
      index: this.index,
      ids: missing.map((i) => ids[i]!),
      _source_excludes: SUMMARY_EXCLUDES,
      realtime: false,
    });
    r.docs.forEach((doc, k) => {
      if (!('found' in doc) || !doc.found || !doc._source) return;
      out[missing[k]!] = doc._source;
      this.holdSummary(doc._id, doc._seq_no!, doc._primary_term!, doc._source);
    });
    return out;
  }

  private holdSummary(id: string, seq: number, term: number, source: IncidentSummary): void {
    this.summaryCache.delete(id);
    this.summaryCache.set(id, { seq, term, source });
    // Oldest first out: listings show recent incidents, which stay.
    if (this.summaryCache.size > SUMMARY_CACHE_SIZE) {
      const oldest = this.summaryCache.keys().next().value;
      if (oldest !== undefined) this.summaryCache.delete(oldest);
    }
  }

  private async bySeverityDesc(
    query: BoolQuery,
    severities: Severity[] | undefined,
    limit: number,
    after: SortValues | undefined,
  ): Promise<PageHit[]> {
    const rank = startRank(severityRanks(severities), after, Math.max);
    const first = await this.page(
      { filter: [...query.filter, { term: { severity_rank: rank } }], must: query.must },
      ['created_at', 'id'],
      'desc',
      limit + 1,
      after?.slice(1),
    );
    const hits = first.map((h) => ({ source: h.source, sort: [rank, ...h.sort] }));
    if (hits.length > limit || rank === 1) return hits;
    const rest = await this.page(
      { filter: [...query.filter, { range: { severity_rank: { lt: rank } } }], must: query.must },
      sortFields('severity'),
      'desc',
      limit + 1 - hits.length,
      undefined,
    );
    return [...hits, ...rest];
  }

  private async bySeverityAsc(
    query: BoolQuery,
    severities: Severity[] | undefined,
    limit: number,
    after: SortValues | undefined,
  ): Promise<PageHit[]> {
    const ranks = severityRanks(severities);
    const first = startRank(ranks, after, Math.min);
    const hits: PageHit[] = [];
    for (let rank = first; rank <= 4 && hits.length <= limit; rank++) {
      if (rank !== first && !ranks.includes(rank)) continue;
      const within = await this.ascending(
        { filter: [...query.filter, { term: { severity_rank: rank } }], must: query.must },
        'created_at',
        ['created_at', 'id'],
        limit - hits.length,
        rank === first ? after?.slice(1) : undefined,
      );
      hits.push(...within.map((h) => ({ source: h.source, sort: [rank, ...h.sort] })));
    }
    return hits;
  }

  /** Up to limit + 1 hits in ascending `fields` order (the first being `field`), searched in windows. */
  private async ascending(
    query: BoolQuery,
    field: WindowField,
    fields: string[],
    limit: number,
    after: SortValues | undefined,
  ): Promise<PageHit[]> {
    const extent = await this.extentOf(field);
    const from = after ? after[0] : extent.min;
    if (extent.count > 0 && typeof from === 'number' && Number.isFinite(from)) {
      const perMs = extent.count / Math.max(1, extent.max - extent.min);
      let span = Math.max(60_000, (4 * (limit + 1)) / perMs);
      for (let probe = 0; probe < 2; probe++, span *= 16) {
        const until = Math.floor(from + span);
        if (until >= extent.max) break;
        const window = {
          filter: [...query.filter, { range: { [field]: { lte: until, format: 'epoch_millis' } } }],
          must: query.must,
        };
        const hits = await this.page(window, fields, 'asc', limit + 1, after);
        if (hits.length > limit) return hits;
        // A filter this selective matches few documents anywhere: the plain search is cheap.
        if (hits.length * 16 < limit + 1) break;
      }
    }
    return this.page(query, fields, 'asc', limit + 1, after);
  }

  private async extentOf(field: WindowField): Promise<{ min: number; max: number; count: number }> {
    const now = Date.now();
    const cached = this.extents.get(field);
    if (cached && cached.until > now) return cached;
    const r = await this.client.search({
      index: this.index,
      size: 0,
      track_total_hits: true,
      aggs: { min: { min: { field } }, max: { max: { field } } },
    });
    // biome-ignore lint/suspicious/noExplicitAny: aggregation responses are untyped
    const aggs = r.aggregations as any;
    const total = r.hits.total;
    const extent = {
      min: aggs?.min?.value ?? 0,
      max: aggs?.max?.value ?? 0,
      count: typeof total === 'number' ? total : (total?.value ?? 0),
      until: now + EXTENT_TTL_MS,
    };
    this.extents.set(field, extent);
    return extent;
  }

  async get(id: string): Promise<Incident | undefined> {
    return (await this.read(id))?.incident;
  }

  private async read(id: string): Promise<{ incident: Incident; seq: number; term: number } | undefined> {
    try {
      const r = await this.client.get<Incident>({ index: this.index, id });
      if (!r.found || !r._source) return undefined;
      return { incident: r._source, seq: r._seq_no!, term: r._primary_term! };
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /** Read, compute a patch, write it guarded by the version read; retry on conflicts. */
  private async modify<T>(
    id: string,
    refresh: boolean | 'wait_for',
    plan: (incident: Incident, now: string) => { patch?: Partial<Incident>; result: (merged: Incident) => T },
  ): Promise<T> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const current = await this.read(id);
      if (!current) throw new IncidentNotFoundError(id);
      const now = this.clock().toISOString();
      const { patch, result } = plan(current.incident, now);
      if (!patch) return result(current.incident);
      try {
        await this.client.update({
          index: this.index,
          id,
          doc: patch,
          if_seq_no: current.seq,
          if_primary_term: current.term,
          refresh,
        });
        return result({ ...current.incident, ...patch });
      } catch (err) {
        if (isStatus(err, 409)) continue;
        if (isStatus(err, 404)) throw new IncidentNotFoundError(id);
        throw err;
      }
    }
    throw new IncidentConflictError(
      `incident ${id} kept changing under ${this.maxAttempts} attempts; try again`,
    );
  }

  triage(id: string, change: TriageChange, actor: string): Promise<Incident> {
    return this.triageWith(id, change, actor, this.refresh);
  }

  private triageWith(id: string, change: TriageChange, actor: string, refresh: boolean | 'wait_for') {
    return this.modify(id, refresh, (incident, now) => ({
      patch: planTriage(incident, change, actor, now),
      result: (merged) => merged,
    }));
  }

  updateStatus(id: string, status: IncidentStatus, actor: string, note?: string): Promise<Incident> {
    return this.triage(id, { status, ...(note !== undefined ? { note } : {}) }, actor);
  }

  assign(id: string, assignee: string | null, actor: string): Promise<Incident> {
    return this.triage(id, { assignee }, actor);
  }

  comment(id: string, text: string, actor: string): Promise<IncidentComment> {
    const comment: IncidentComment = { id: randomUUID(), at: '', by: actor, text };
    return this.modify(id, this.refresh, (incident, now) => {
      comment.at = now;
      return {
        patch: { comments: [...incident.comments, comment], updated_at: now },
        result: () => comment,
      };
    });
  }

  async bulkStatus(
    ids: string[],
    status: IncidentStatus,
    actor: string,
    note?: string,
  ): Promise<BulkStatusResult[]> {
    const unique = [...new Set(ids)];
    const results = new Map<string, BulkStatusResult>();
    const concurrency = 8;
    let next = 0;
    const worker = async () => {
      while (next < unique.length) {
        const id = unique[next++]!;
        try {
          await this.triageWith(id, { status, ...(note !== undefined ? { note } : {}) }, actor, false);
          results.set(id, { id, ok: true });
        } catch (err) {
          if (err instanceof IncidentNotFoundError)
            results.set(id, { id, ok: false, error: 'not_found', detail: err.message });
          else if (err instanceof IllegalTransitionError)
            results.set(id, { id, ok: false, error: 'illegal_transition', detail: err.message });
          else if (err instanceof IncidentConflictError)
            results.set(id, { id, ok: false, error: 'conflict', detail: err.message });
          else throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, unique.length) }, worker));
    if (this.refresh !== false && unique.length > 0) await this.client.indices.refresh({ index: this.index });
    return unique.map((id) => results.get(id)!);
  }

  async stats(q: StatsQuery): Promise<IncidentStats> {
    const step = intervalMs(q.interval);
    const fromMs = Date.parse(q.from);
    const toMs = Date.parse(q.to);
    if (!(toMs > fromMs)) throw new InvalidQueryError('`to` must be after `from`');
    if ((toMs - fromMs) / step > MAX_STATS_BUCKETS) {
      throw new InvalidQueryError(`more than ${MAX_STATS_BUCKETS} buckets: choose a larger interval`);
    }
    const bySeverity = { terms: { field: 'severity', size: SEVERITIES.length } };
    // Mean of (t − created_at) over a fixed set of incidents = mean(t) − mean(created_at): two
    // avg aggregations on date fields, no scripts.
    const response = await this.client.search({
      index: this.index,
      size: 0,
      track_total_hits: true,
      query: { range: { created_at: { gte: q.from, lt: q.to } } },
      aggs: {
        by_status: { terms: { field: 'status', size: STATUSES.length } },
        by_severity: bySeverity,
        by_rule: { terms: { field: 'rule.id', size: 100 } },
        over_time: {
          date_histogram: {
            field: 'created_at',
            fixed_interval: q.interval,
            min_doc_count: 0,
            extended_bounds: { min: fromMs, max: toMs - 1 },
          },
          aggs: { by_severity: bySeverity },
        },
        acknowledged: {
          filter: { exists: { field: 'acknowledged_at' } },
          aggs: { at: { avg: { field: 'acknowledged_at' } }, created: { avg: { field: 'created_at' } } },
        },
        resolved: {
          filter: { exists: { field: 'resolved_at' } },
          aggs: { at: { avg: { field: 'resolved_at' } }, created: { avg: { field: 'created_at' } } },
        },
      },
    });
    // biome-ignore lint/suspicious/noExplicitAny: aggregation responses are untyped
    const aggs = response.aggregations as any;
    const counts = <K extends string>(keys: readonly K[], buckets: { key: string; doc_count: number }[]) => {
      const out = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
      for (const b of buckets) if ((keys as readonly string[]).includes(b.key)) out[b.key as K] = b.doc_count;
      return out;
    };
    const mean = (agg: {
      doc_count: number;
      at: { value: number | null };
      created: { value: number | null };
    }) =>
      agg.doc_count > 0 && agg.at.value !== null && agg.created.value !== null
        ? Math.max(0, Math.round(agg.at.value - agg.created.value))
        : null;
    const total = response.hits.total;
    return {
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      interval: q.interval,
      total: typeof total === 'number' ? total : (total?.value ?? 0),
      by_status: counts(STATUSES, aggs.by_status.buckets),
      by_severity: counts(SEVERITIES, aggs.by_severity.buckets),
      by_rule: aggs.by_rule.buckets.map((b: { key: string; doc_count: number }) => ({
        rule_id: b.key,
        count: b.doc_count,
      })),
      over_time: aggs.over_time.buckets.map(
        (b: {
          key: number;
          doc_count: number;
          by_severity: { buckets: { key: string; doc_count: number }[] };
        }) => ({
          start: new Date(b.key).toISOString(),
          count: b.doc_count,
          by_severity: counts(SEVERITIES, b.by_severity.buckets),
        }),
      ),
      mean_time_to_acknowledge_ms: mean(aggs.acknowledged),
      acknowledged: aggs.acknowledged.doc_count,
      mean_time_to_resolve_ms: mean(aggs.resolved),
      resolved: aggs.resolved.doc_count,
    };
  }
}

/** The ranks of the severities a query asks for (all of them when it names none). */
function severityRanks(severities: Severity[] | undefined): number[] {
  return (severities?.length ? severities : SEVERITIES).map((s) => SEVERITY_RANK[s]);
}

/**
 * The severity rank a page starts at: the cursor's, else the highest (`Math.max`) or lowest
 * (`Math.min`) of the ranks asked for.
 */
function startRank(
  ranks: number[],
  after: SortValues | undefined,
  pick: (...ranks: number[]) => number,
): number {
  const rank = after ? after[0] : pick(...ranks);
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 1 || rank > 4) {
    throw new InvalidCursorError('cursor is not one this API issued');
  }
  return rank;
}
