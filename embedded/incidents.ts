/**
 * The incident repository of the embedded mode: the same interface and semantics as the
 * Elasticsearch one (detections/incidents/repository.ts) over EmbeddedStore's incidents table.
 *
 * - Filters, sort keys and cursors as in Elasticsearch: the requested field, then created_at
 *   and id, all in the same order, so the order is total and a cursor (the last row's sort
 *   values) stays valid while the detection engine adds incidents.
 * - Changes are read-modify-write guarded by the row's version (the writer's incident store
 *   bumps it too), retried on a conflict like the Elasticsearch repository.
 * - Words of the title match like Elasticsearch's standard analyser (lower-cased words, all
 *   of them).
 */
import { randomUUID } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import {
  ENTITY_ROLES,
  type Incident,
  type IncidentStatus,
  SEVERITIES,
  type Severity,
  STATUSES,
} from '../core/schema/incident.ts';
import {
  type BulkStatusResult,
  decodeCursor,
  encodeCursor,
  IllegalTransitionError,
  type IncidentComment,
  IncidentConflictError,
  IncidentNotFoundError,
  type IncidentPage,
  type IncidentQuery,
  type IncidentRepository,
  type IncidentSortField,
  type IncidentStats,
  type IncidentSummary,
  InvalidQueryError,
  intervalMs,
  MAX_STATS_BUCKETS,
  planTriage,
  type StatsQuery,
  type TriageChange,
} from '../detections/incidents/repository.ts';
import type { EmbeddedStore } from './store.ts';

/** Lower-cased words, as Elasticsearch's standard analyser splits them (near enough). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
}

const registered = new WeakSet<DatabaseSync>();

/** SQL functions the repository needs (registered once per connection). */
function registerFunctions(db: DatabaseSync): void {
  if (registered.has(db)) return;
  // gw_words_match(title, query JSON array): every query word is a word of the title.
  db.function('gw_words_match', { deterministic: true }, (title, query) => {
    const have = new Set(words(String(title ?? '')));
    return (JSON.parse(String(query)) as string[]).every((w) => have.has(w)) ? 1 : 0;
  });
  registered.add(db);
}

/** Sort columns (SQL expressions) per sort field; created_at and id break ties. */
const SORT_SQL: Record<IncidentSortField, string[]> = {
  created_at: ['created_at', 'id'],
  last_seen: ['last_seen', 'created_at', 'id'],
  severity: ['severity_rank', 'created_at', 'id'],
  risk: ["json_extract(doc, '$.risk')", 'created_at', 'id'],
};

/** An ISO timestamp as stored (toISOString), or an InvalidQueryError. */
function isoOf(value: string, what: string): string {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidQueryError(`${what} "${value}" is not a timestamp`);
  return new Date(t).toISOString();
}

const summary = ({ history: _h, comments: _c, detection_ids: _d, ...rest }: Incident): IncidentSummary =>
  rest;

export interface SqliteIncidentRepositoryOptions {
  clock?: () => Date;
  /** Attempts on a concurrent-write conflict before giving up. */
  maxAttempts?: number;
}

export class SqliteIncidentRepository implements IncidentRepository {
  private readonly db: DatabaseSync;
  private readonly clock: () => Date;
  private readonly maxAttempts: number;

  constructor(store: EmbeddedStore, options: SqliteIncidentRepositoryOptions = {}) {
    this.db = store.db;
    this.clock = options.clock ?? (() => new Date());
    this.maxAttempts = options.maxAttempts ?? 5;
    registerFunctions(this.db);
  }

  async list(q: IncidentQuery): Promise<IncidentPage> {
    const sort = q.sort ?? 'created_at';
    const order = q.order ?? 'desc';
    const limit = Math.max(1, Math.min(q.limit ?? 50, 500));
    const where: string[] = [];
    const params: (string | number)[] = [];
    const anyOf = (expr: string, values: readonly string[]) => {
      where.push(`${expr} IN (${values.map(() => '?').join(',')})`);
      params.push(...values);
    };
    if (q.status?.length) anyOf('status', q.status);
    if (q.severity?.length) anyOf("json_extract(doc, '$.severity')", q.severity);
    if (q.rule?.length) anyOf('rule_id', q.rule);
    if (q.tags?.length) {
      where.push(
        `EXISTS (SELECT 1 FROM json_each(doc, '$.tags') t WHERE t.value IN (${q.tags.map(() => '?').join(',')}))`,
      );
      params.push(...q.tags);
    }
    if (q.assignee !== undefined) {
      where.push("json_extract(doc, '$.assignee') = ?");
      params.push(q.assignee);
    }
    if (q.entity?.length) {
      const marks = q.entity.map(() => '?').join(',');
      where.push(
        `(${ENTITY_ROLES.map(
          (r) => `EXISTS (SELECT 1 FROM json_each(doc, '$.entities.${r}') e WHERE e.value IN (${marks}))`,
        ).join(' OR ')})`,
      );
      for (const _ of ENTITY_ROLES) params.push(...q.entity);
    }
    if (q.from) {
      where.push('last_seen >= ?');
      params.push(isoOf(q.from, 'from'));
    }
    if (q.to) {
      where.push("json_extract(doc, '$.first_seen') <= ?");
      params.push(isoOf(q.to, 'to'));
    }
    if (q.text?.trim()) {
      const ws = words(q.text);
      // Nothing to match on (punctuation only): Elasticsearch's match finds nothing either.
      if (ws.length === 0) return { items: [], next_cursor: null };
      where.push("gw_words_match(json_extract(doc, '$.title'), ?)");
      params.push(JSON.stringify(ws));
    }
    const cols = SORT_SQL[sort];
    if (q.cursor) {
      const after = decodeCursor(q.cursor, sort, order).v;
      where.push(`(${cols.join(', ')}) ${order === 'desc' ? '<' : '>'} (${cols.map(() => '?').join(', ')})`);
      params.push(...after);
    }
    const dir = order === 'desc' ? 'DESC' : 'ASC';
    const rows = this.db
      .prepare(
        `SELECT doc, ${cols.map((c, i) => `${c} AS k${i}`).join(', ')} FROM incidents
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY ${cols.map((c) => `${c} ${dir}`).join(', ')} LIMIT ?`,
      )
      .all(...params, limit + 1) as Record<string, string | number>[];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const next =
      rows.length > limit && last
        ? encodeCursor({ s: sort, o: order, v: cols.map((_, i) => last[`k${i}`]!) })
        : null;
    return { items: page.map((r) => summary(JSON.parse(String(r.doc)) as Incident)), next_cursor: next };
  }

  async get(id: string): Promise<Incident | undefined> {
    return this.read(id)?.incident;
  }

  private read(id: string): { incident: Incident; version: number } | undefined {
    const row = this.db.prepare('SELECT doc, version FROM incidents WHERE id = ?').get(id) as
      | { doc: string; version: number }
      | undefined;
    return row ? { incident: JSON.parse(row.doc) as Incident, version: Number(row.version) } : undefined;
  }

  /** Write a whole incident if the row is still at `version`; false on a conflict. */
  private write(next: Incident, version: number): boolean {
    const r = this.db
      .prepare(
        `UPDATE incidents SET doc = ?, status = ?, severity_rank = ?, last_seen = ?, version = version + 1
         WHERE id = ? AND version = ?`,
      )
      .run(JSON.stringify(next), next.status, next.severity_rank, next.last_seen, next.id, version);
    return Number(r.changes) > 0;
  }

  /** Read, compute a patch, write it guarded by the version read; retry on conflicts. */
  private modify<T>(
    id: string,
    plan: (incident: Incident, now: string) => { patch?: Partial<Incident>; result: (merged: Incident) => T },
  ): T {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const current = this.read(id);
      if (!current) throw new IncidentNotFoundError(id);
      const now = this.clock().toISOString();
      const { patch, result } = plan(current.incident, now);
      if (!patch) return result(current.incident);
      const merged = { ...current.incident, ...patch };
      if (this.write(merged, current.version)) return result(merged);
    }
    throw new IncidentConflictError(
      `incident ${id} kept changing under ${this.maxAttempts} attempts; try again`,
    );
  }

  async triage(id: string, change: TriageChange, actor: string): Promise<Incident> {
    return this.modify(id, (incident, now) => ({
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

  async comment(id: string, text: string, actor: string): Promise<IncidentComment> {
    const comment: IncidentComment = { id: randomUUID(), at: '', by: actor, text };
    return this.modify(id, (incident, now) => {
      comment.at = now;
      return { patch: { comments: [...incident.comments, comment], updated_at: now }, result: () => comment };
    });
  }

  async bulkStatus(
    ids: string[],
    status: IncidentStatus,
    actor: string,
    note?: string,
  ): Promise<BulkStatusResult[]> {
    const out: BulkStatusResult[] = [];
    for (const id of new Set(ids)) {
      try {
        await this.updateStatus(id, status, actor, note);
        out.push({ id, ok: true });
      } catch (err) {
        if (err instanceof IncidentNotFoundError)
          out.push({ id, ok: false, error: 'not_found', detail: err.message });
        else if (err instanceof IllegalTransitionError)
          out.push({ id, ok: false, error: 'illegal_transition', detail: err.message });
        else if (err instanceof IncidentConflictError)
          out.push({ id, ok: false, error: 'conflict', detail: err.message });
        else throw err;
      }
    }
    return out;
  }

  async stats(q: StatsQuery): Promise<IncidentStats> {
    const step = intervalMs(q.interval);
    const fromMs = Date.parse(q.from);
    const toMs = Date.parse(q.to);
    if (!(toMs > fromMs)) throw new InvalidQueryError('`to` must be after `from`');
    if ((toMs - fromMs) / step > MAX_STATS_BUCKETS) {
      throw new InvalidQueryError(`more than ${MAX_STATS_BUCKETS} buckets: choose a larger interval`);
    }
    const from = new Date(fromMs).toISOString();
    const to = new Date(toMs).toISOString();
    const rows = this.db
      .prepare(
        `SELECT status, rule_id, created_at, json_extract(doc, '$.severity') AS severity,
                json_extract(doc, '$.acknowledged_at') AS acknowledged_at,
                json_extract(doc, '$.resolved_at') AS resolved_at
         FROM incidents WHERE created_at >= ? AND created_at < ?`,
      )
      .all(from, to) as {
      status: string;
      rule_id: string;
      created_at: string;
      severity: string;
      acknowledged_at: string | null;
      resolved_at: string | null;
    }[];
    const zero = <K extends string>(keys: readonly K[]) =>
      Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
    const byStatus = zero(STATUSES);
    const bySeverity = zero(SEVERITIES);
    const byRule = new Map<string, number>();
    // Buckets as Elasticsearch's fixed-interval date histogram: aligned to the epoch,
    // from the one holding `from` to the one holding `to - 1`, empty ones included.
    const first = Math.floor(fromMs / step) * step;
    const last = Math.floor((toMs - 1) / step) * step;
    const buckets: IncidentStats['over_time'] = [];
    for (let t = first; t <= last; t += step) {
      buckets.push({ start: new Date(t).toISOString(), count: 0, by_severity: zero(SEVERITIES) });
    }
    const ack = { n: 0, sum: 0 };
    const res = { n: 0, sum: 0 };
    for (const r of rows) {
      if (r.status in byStatus) byStatus[r.status as IncidentStatus]++;
      const severity = (SEVERITIES as readonly string[]).includes(r.severity)
        ? (r.severity as Severity)
        : undefined;
      if (severity) bySeverity[severity]++;
      byRule.set(r.rule_id, (byRule.get(r.rule_id) ?? 0) + 1);
      const created = Date.parse(r.created_at);
      const bucket = buckets[Math.floor((created - first) / step)];
      if (bucket) {
        bucket.count++;
        if (severity) bucket.by_severity[severity]++;
      }
      if (r.acknowledged_at) {
        ack.n++;
        ack.sum += Date.parse(r.acknowledged_at) - created;
      }
      if (r.resolved_at) {
        res.n++;
        res.sum += Date.parse(r.resolved_at) - created;
      }
    }
    const mean = (m: { n: number; sum: number }) => (m.n > 0 ? Math.max(0, Math.round(m.sum / m.n)) : null);
    return {
      from,
      to,
      interval: q.interval,
      total: rows.length,
      by_status: byStatus,
      by_severity: bySeverity,
      // As a terms aggregation: most incidents first, then by rule id; the top 100.
      by_rule: [...byRule]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .slice(0, 100)
        .map(([rule_id, count]) => ({ rule_id, count })),
      over_time: buckets,
      mean_time_to_acknowledge_ms: mean(ack),
      acknowledged: ack.n,
      mean_time_to_resolve_ms: mean(res),
      resolved: res.n,
    };
  }
}
