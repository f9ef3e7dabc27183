/**
 * `gatewatch incidents list|show|triage|comment` — incidents from the terminal, through the
 * same repository the REST API uses: Elasticsearch (ElasticsearchIncidentRepository), or with
 * `--embedded [--db <file>]` the SQLite file a replay wrote (SqliteIncidentRepository).
 * Changes are recorded in the incident's history and in the audit log, as the API does, with
 * the actor `cli:<user>`. Ids may be shortened to any unique prefix (lists show 12 characters).
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Client } from '@elastic/elasticsearch';
import type { Command } from 'commander';
import { AuditLog, type AuditStore } from '../../api/audit.ts';
import {
  type Incident,
  type IncidentStatus,
  SEVERITIES,
  type Severity,
  STATUSES,
} from '../../core/schema/incident.ts';
import { createEsClient } from '../../core/store/elasticsearch.ts';
import {
  ElasticsearchIncidentRepository,
  IllegalTransitionError,
  IncidentNotFoundError,
  type IncidentQuery,
  type IncidentRepository,
  type IncidentSortField,
  InvalidCursorError,
  InvalidQueryError,
  type TriageChange,
} from '../../detections/incidents/repository.ts';
import { SqliteAuditLog } from '../../embedded/api-stores.ts';
import { SqliteIncidentRepository } from '../../embedded/incidents.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { configOf } from '../config.ts';
import { describeUserError, EXIT, UserError } from '../errors.ts';
import { entityOf, incidentListTable, SHORT_ID } from '../incident-table.ts';

interface StoreOptions {
  embedded?: boolean;
  db?: string;
}

/** The repository and audit log of one store, and how to resolve a shortened id there. */
interface Backend {
  repo: IncidentRepository;
  audit(): Promise<AuditStore>;
  /** Ids starting with the prefix (at most `limit`). */
  idsStartingWith(prefix: string, limit: number): Promise<string[]>;
  close(): Promise<void>;
}

const SORTS: IncidentSortField[] = ['created_at', 'last_seen', 'severity', 'risk'];

const actor = () => `cli:${userInfo().username}`;

function embeddedBackend(path: string): Backend {
  if (path !== ':memory:' && !existsSync(path))
    throw new UserError(
      `no embedded store at ${path}: replay logs into it first (npm run demo, or gatewatch replay <logs>), or name another file with --db`,
    );
  const store = new EmbeddedStore(path);
  return {
    repo: new SqliteIncidentRepository(store),
    audit: async () => new SqliteAuditLog(store),
    async idsStartingWith(prefix, limit) {
      const rows = store.db
        .prepare('SELECT id FROM incidents WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT ?')
        .all(prefix.length, prefix, limit) as { id: string }[];
      return rows.map((r) => r.id);
    },
    async close() {
      store.close();
    },
  };
}

function elasticsearchBackend(es: Client, prefix: string): Backend {
  const repo = new ElasticsearchIncidentRepository(es, prefix);
  return {
    repo,
    async audit() {
      const log = new AuditLog(es, prefix);
      await log.install();
      return log;
    },
    async idsStartingWith(idPrefix, limit) {
      const r = await es.search<{ id: string }>({
        index: repo.index,
        size: limit,
        query: { prefix: { id: idPrefix } },
        _source: ['id'],
        sort: [{ id: 'asc' }],
        ignore_unavailable: true,
      });
      return r.hits.hits.map((h) => h._source!.id);
    },
    async close() {
      await es.close();
    },
  };
}

/** Run `fn` against the store the options name; store errors become one-line user errors. */
async function withBackend<T>(cmd: Command, where: StoreOptions, fn: (b: Backend) => Promise<T>): Promise<T> {
  if (where.db && !where.embedded)
    throw new UserError('--db needs --embedded (the SQLite file a replay wrote)');
  const config = configOf(cmd);
  const backend = where.embedded
    ? embeddedBackend(where.db ?? config.embedded.path)
    : elasticsearchBackend(createEsClient(config.elasticsearch), config.elasticsearch.indexPrefix);
  try {
    return await fn(backend);
  } catch (err) {
    if (err instanceof IncidentNotFoundError)
      throw new UserError(`no incident ${err.id} (incidents list shows the ids)`, EXIT.failure);
    if (err instanceof IllegalTransitionError) throw new UserError(err.message, EXIT.failure);
    if (err instanceof InvalidCursorError || err instanceof InvalidQueryError)
      throw new UserError(err.message);
    const type = (err as { meta?: { body?: { error?: { type?: string } } } }).meta?.body?.error?.type;
    if (type === 'index_not_found_exception')
      throw new UserError(
        `no incidents in Elasticsearch yet: the index ${config.elasticsearch.indexPrefix}-incidents does not exist (the detection workers create it; check elasticsearch.indexPrefix), or add --embedded for a replay's file`,
        EXIT.failure,
      );
    const known = describeUserError(err);
    if (known?.exitCode === EXIT.unavailable && !where.embedded)
      throw new UserError(
        `${known.message}; for the embedded store a replay wrote, add --embedded`,
        known.exitCode,
      );
    throw err;
  } finally {
    await backend.close();
  }
}

/** The full id of a (possibly shortened) id. */
async function resolveId(backend: Backend, id: string): Promise<string> {
  if (id.length >= 32) return id;
  if (id.length < 4) throw new UserError(`incident id "${id}" is too short: give at least 4 characters`);
  const found = await backend.idsStartingWith(id, 5);
  if (found.includes(id)) return id;
  if (found.length === 0)
    throw new UserError(`no incident ${id} (incidents list shows the ids)`, EXIT.failure);
  if (found.length > 1)
    throw new UserError(
      `incident id "${id}" is ambiguous: ${found.map((f) => f.slice(0, SHORT_ID)).join(', ')}${found.length === 5 ? ', …' : ''} — give more characters`,
    );
  return found[0]!;
}

/** A comma-separated or repeated option's values, each checked against `allowed`. */
function listOf<T extends string>(
  values: string[] | undefined,
  flag: string,
  allowed?: readonly T[],
): T[] | undefined {
  if (!values) return undefined;
  const out = values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
  if (allowed) {
    const bad = out.find((v) => !(allowed as readonly string[]).includes(v));
    if (bad !== undefined) throw new UserError(`${flag}: "${bad}" is not one of ${allowed.join(', ')}`);
  }
  return out as T[];
}

function oneOf<T extends string>(
  value: string | undefined,
  flag: string,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new UserError(`${flag}: "${value}" is not one of ${allowed.join(', ')}`);
  return value as T;
}

function isoTime(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new UserError(`${flag}: "${value}" is not an ISO-8601 time (e.g. 2024-05-14T13:00:00Z)`);
  return new Date(t).toISOString();
}

export interface ListOptions extends StoreOptions {
  status?: string[];
  severity?: string[];
  rule?: string[];
  entity?: string[];
  tag?: string[];
  assignee?: string;
  search?: string;
  from?: string;
  to?: string;
  sort: string;
  order: string;
  limit: string;
  cursor?: string;
  json?: boolean;
}

/** `incidents list`: one page of incidents, filtered and sorted, as a table or JSON. */
export async function list(opts: ListOptions, cmd: Command): Promise<void> {
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500)
    throw new UserError(`--limit: "${opts.limit}" is not a whole number from 1 to 500`);
  const status = listOf(opts.status, '--status', STATUSES);
  const severity = listOf(opts.severity, '--severity', SEVERITIES);
  const from = isoTime(opts.from, '--from');
  const to = isoTime(opts.to, '--to');
  const query: IncidentQuery = {
    ...(status ? { status: status as IncidentStatus[] } : {}),
    ...(severity ? { severity: severity as Severity[] } : {}),
    ...(opts.rule ? { rule: listOf(opts.rule, '--rule')! } : {}),
    ...(opts.entity ? { entity: listOf(opts.entity, '--entity')! } : {}),
    ...(opts.tag ? { tags: listOf(opts.tag, '--tag')! } : {}),
    ...(opts.assignee !== undefined ? { assignee: opts.assignee } : {}),
    ...(opts.search !== undefined ? { text: opts.search } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    sort: oneOf(opts.sort, '--sort', SORTS)!,
    order: oneOf(opts.order, '--order', ['asc', 'desc'] as const)!,
    limit,
    ...(opts.cursor ? { cursor: opts.cursor } : {}),
  };
  const page = await withBackend(cmd, opts, (b) => b.repo.list(query));
  if (opts.json) {
    console.log(JSON.stringify(page, null, 2));
    return;
  }
  if (page.items.length === 0) {
    console.error('no incidents match');
    return;
  }
  console.log(incidentListTable(page.items));
  const more = page.next_cursor ? `; the next page: --cursor ${page.next_cursor}` : '';
  console.error(`${page.items.length} incident(s)${more}; details: incidents show <id>`);
}

/** A readable account of one incident. */
export function describeIncident(i: Incident): string {
  const lines: string[] = [];
  const field = (name: string, value: string) => lines.push(`${`${name}:`.padEnd(14)}${value}`);
  lines.push(i.title, '');
  field('id', i.id);
  field('rule', `${i.rule.id} (version ${i.rule.version}, ${i.rule.kind})`);
  const others = (i.rules ?? []).filter((r) => r !== i.rule.id);
  if (others.length > 0) field('also', others.join(', '));
  field('severity', `${i.severity} (risk ${i.risk})`);
  field('status', i.status);
  field('assignee', i.assignee ?? '—');
  if (i.tags.length > 0) field('tags', i.tags.join(', '));
  field('entity', entityOf(i));
  const entities = Object.entries(i.entities).filter(([, v]) => v && v.length > 0);
  if (entities.length > 0) field('entities', entities.map(([k, v]) => `${k} ${v!.join(', ')}`).join('; '));
  field('window', `${i.window.start} … ${i.window.end}`);
  field('seen', `${i.first_seen} … ${i.last_seen}, ${i.occurrences} detection(s)`);
  field('events', String(i.event_count));
  const metrics = Object.entries(i.metrics);
  if (metrics.length > 0) field('metrics', metrics.map(([k, v]) => `${k} ${v}`).join(', '));
  lines.push('', i.summary);
  const detections = i.detections ?? [];
  if (detections.length > 1 || (i.rules ?? []).length > 1) {
    lines.push(
      '',
      `detections (${i.occurrences}${detections.length < i.occurrences ? `, ${detections.length} kept` : ''}):`,
    );
    for (const d of detections)
      lines.push(
        `  ${d.window.start} … ${d.window.end}  ${d.rule.id} (${d.rule.severity}): ${d.event_count} events — ${d.summary}`,
      );
  }
  lines.push('', 'evidence:');
  lines.push(`  query: ${i.evidence.query}`);
  const ids = i.evidence.event_ids;
  if (ids.length > 0)
    lines.push(
      `  events: ${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ` … (${ids.length} in all)` : ''}`,
    );
  if (i.history.length > 0) {
    lines.push('', 'history:');
    for (const h of i.history)
      lines.push(
        `  ${h.at}  ${h.by}: ${h.field} ${h.from ?? '—'} → ${h.to ?? '—'}${h.note ? ` (${h.note})` : ''}`,
      );
  }
  if (i.comments.length > 0) {
    lines.push('', 'comments:');
    for (const c of i.comments) lines.push(`  ${c.at}  ${c.by}: ${c.text}`);
  }
  return lines.join('\n');
}

/** `incidents show <id>`. */
export async function show(id: string, opts: StoreOptions & { json?: boolean }, cmd: Command): Promise<void> {
  const incident = await withBackend(cmd, opts, async (b) => {
    const full = await resolveId(b, id);
    const found = await b.repo.get(full);
    if (!found) throw new IncidentNotFoundError(full);
    return found;
  });
  console.log(opts.json ? JSON.stringify(incident, null, 2) : describeIncident(incident));
}

export interface TriageOptions extends StoreOptions {
  status?: string;
  assignee?: string;
  unassign?: boolean;
  severity?: string;
  note?: string;
  json?: boolean;
}

/** `incidents triage <id>`: status, assignee and/or severity, with an optional note. */
export async function triage(id: string, opts: TriageOptions, cmd: Command): Promise<void> {
  if (opts.assignee !== undefined && opts.unassign)
    throw new UserError('give --assignee or --unassign, not both');
  const status = oneOf(opts.status, '--status', STATUSES);
  const severity = oneOf(opts.severity, '--severity', SEVERITIES);
  const change: TriageChange = {
    ...(status ? { status } : {}),
    ...(severity ? { severity } : {}),
    ...(opts.assignee !== undefined ? { assignee: opts.assignee } : {}),
    ...(opts.unassign ? { assignee: null } : {}),
    ...(opts.note !== undefined ? { note: opts.note } : {}),
  };
  if (change.status === undefined && change.severity === undefined && change.assignee === undefined)
    throw new UserError(
      'incidents triage: give --status, --severity, --assignee or --unassign (and --note for why)',
    );
  const incident = await withBackend(cmd, opts, async (b) => {
    const full = await resolveId(b, id);
    const before = await b.repo.get(full);
    const after = await b.repo.triage(full, change, actor());
    await (await b.audit()).record({
      actor: actor(),
      actor_role: 'cli',
      action: 'incident.update',
      target_type: 'incident',
      target_id: full,
      request_id: null,
      details: {
        change,
        before: before
          ? { status: before.status, assignee: before.assignee, severity: before.severity }
          : null,
      },
    });
    return { before, after };
  });
  if (opts.json) {
    console.log(JSON.stringify(incident.after, null, 2));
    return;
  }
  const { before, after } = incident;
  const changed = (['status', 'severity', 'assignee'] as const)
    .filter((k) => before?.[k] !== after[k])
    .map((k) => `${k} ${before?.[k] ?? '—'} → ${after[k] ?? '—'}`);
  console.log(
    `${after.id.slice(0, SHORT_ID)} ${after.title}: ${changed.length > 0 ? changed.join(', ') : 'unchanged'}`,
  );
}

/** `incidents comment <id> <text...>`. */
export async function comment(
  id: string,
  words: string[],
  opts: StoreOptions & { json?: boolean },
  cmd: Command,
): Promise<void> {
  const text = words.join(' ').trim();
  if (text.length === 0) throw new UserError('incidents comment: give the comment text');
  const added = await withBackend(cmd, opts, async (b) => {
    const full = await resolveId(b, id);
    const c = await b.repo.comment(full, text, actor());
    await (await b.audit()).record({
      actor: actor(),
      actor_role: 'cli',
      action: 'incident.comment',
      target_type: 'incident',
      target_id: full,
      request_id: null,
      details: { comment_id: c.id },
    });
    return { id: full, comment: c };
  });
  if (opts.json) console.log(JSON.stringify(added.comment, null, 2));
  else console.log(`commented on ${added.id.slice(0, SHORT_ID)} (comment ${added.comment.id})`);
}
