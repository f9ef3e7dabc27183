/**
 * Small but real implementations of the API's ports, for tests and for running the API before
 * the detection engine and ingest runtime are wired in:
 *
 * - `evaluateFilter`: the rule language's FilterExpr evaluated in process (the documented
 *   semantics: missing field → false, `!=` is `not ==`, any value of a multi-valued field);
 * - `compileFilter`: FilterExpr → Elasticsearch query DSL (the subset the tests use; regex and
 *   case-insensitive string ops included);
 * - `InProcessDetection`: filter rules over supplied events → incidents (one per group of the
 *   rule's entity fields); preview reads stored events through `compileFilter`;
 * - `ElasticsearchEventSearch`: search_after pages over `${prefix}-events-*`;
 * - `InMemoryIngestAdmin`: sources and dead letters held in memory.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import type { Incident } from '../../core/schema/incident.ts';
import { type estypes, indexNames } from '../../core/store/elasticsearch.ts';
import type {
  DeadLetter,
  DetectionPort,
  EventSearchPage,
  EventSearchPort,
  EventSearchRequest,
  FilterExpr,
  IngestAdminPort,
  PreviewResult,
  RuleIR,
  RuleStatus,
  RunRecord,
  SourceStatus,
  StoredEvent,
  TimeRange,
} from '../ports.ts';
import { InvalidEventCursorError } from '../ports.ts';

export function fieldValues(event: StoredEvent, field: string): unknown[] {
  let nodes: unknown[] = [event];
  const direct = (event as Record<string, unknown>)[field];
  if (direct !== undefined) nodes = [direct];
  else {
    for (const part of field.split('.')) {
      nodes = nodes.flatMap((n) => {
        if (n === null || typeof n !== 'object') return [];
        const v = (n as Record<string, unknown>)[part];
        return v === undefined ? [] : [v];
      });
    }
  }
  return nodes.flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v) => v !== null && v !== undefined);
}

function compare(a: unknown, op: string, b: unknown): boolean {
  if (op === '==') return a === b || (typeof a === 'number' && Number(b) === a) || String(a) === String(b);
  if (op === '!=') return !compare(a, '==', b);
  const x = typeof b === 'number' ? Number(a) : String(a);
  const y = typeof b === 'number' ? b : String(b);
  if (typeof x === 'number' && Number.isNaN(x)) return false;
  return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
}

export function evaluateFilter(f: FilterExpr, e: StoredEvent): boolean {
  switch (f.op) {
    case 'true':
      return true;
    case 'and':
      return f.args.every((a) => evaluateFilter(a, e));
    case 'or':
      return f.args.some((a) => evaluateFilter(a, e));
    case 'not':
      return !evaluateFilter(f.arg, e);
    case 'exists':
      return fieldValues(e, f.field).length > 0;
    case 'cmp':
      if (f.cmp === '!=') return !fieldValues(e, f.field).some((v) => compare(v, '==', f.value));
      return fieldValues(e, f.field).some((v) => compare(v, f.cmp, f.value));
    case 'in':
      return fieldValues(e, f.field).some((v) => f.values.some((x) => compare(v, '==', x)));
    case 'contains':
    case 'startswith':
    case 'endswith':
      return fieldValues(e, f.field).some((v) => {
        const s = f.caseInsensitive ? String(v).toLowerCase() : String(v);
        const t = f.caseInsensitive ? f.value.toLowerCase() : f.value;
        return f.op === 'contains' ? s.includes(t) : f.op === 'startswith' ? s.startsWith(t) : s.endsWith(t);
      });
    case 'wildcard': {
      const re = new RegExp(
        `^${f.pattern.replace(/\\(.)|([*?])|([^\\*?]+)/g, (_m, esc, wc, lit) =>
          esc
            ? esc.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
            : wc === '*'
              ? '.*'
              : wc === '?'
                ? '.'
                : lit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )}$`,
        f.caseInsensitive ? 'is' : 's',
      );
      return fieldValues(e, f.field).some((v) => re.test(String(v)));
    }
    case 'regex': {
      const flags = f.pattern.startsWith('(?i)') ? 'i' : '';
      const re = new RegExp(f.pattern.replace(/^\(\?i\)/, ''), flags);
      return fieldValues(e, f.field).some((v) => re.test(String(v)));
    }
    case 'cidr':
      return false;
  }
}

const escapeWildcard = (s: string) => s.replace(/[*?\\]/g, '\\$&');

export function compileFilter(f: FilterExpr): estypes.QueryDslQueryContainer {
  switch (f.op) {
    case 'true':
      return { match_all: {} };
    case 'and':
      return { bool: { filter: f.args.map(compileFilter) } };
    case 'or':
      return { bool: { should: f.args.map(compileFilter), minimum_should_match: 1 } };
    case 'not':
      return { bool: { must_not: [compileFilter(f.arg)] } };
    case 'exists':
      return { exists: { field: f.field } };
    case 'cmp': {
      if (f.cmp === '==') return { term: { [f.field]: f.value } };
      if (f.cmp === '!=') return { bool: { must_not: [{ term: { [f.field]: f.value } }] } };
      const op = { '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte' }[f.cmp];
      return { range: { [f.field]: { [op]: f.value } } };
    }
    case 'in':
      return { terms: { [f.field]: f.values } };
    case 'contains':
    case 'startswith':
    case 'endswith': {
      const v = escapeWildcard(f.value);
      const pattern = f.op === 'contains' ? `*${v}*` : f.op === 'startswith' ? `${v}*` : `*${v}`;
      return { wildcard: { [f.field]: { value: pattern, case_insensitive: f.caseInsensitive } } };
    }
    case 'wildcard':
      return { wildcard: { [f.field]: { value: f.pattern, case_insensitive: f.caseInsensitive } } };
    case 'regex':
      return {
        regexp: {
          [f.field]: {
            value: f.pattern.replace(/^\(\?i\)/, ''),
            case_insensitive: f.pattern.startsWith('(?i)'),
          },
        },
      };
    case 'cidr':
      return { bool: { should: f.cidrs.map((c) => ({ term: { [f.field]: c } })), minimum_should_match: 1 } };
  }
}

/** One incident per distinct combination of the rule's entity fields among matching events. */
export function filterRuleIncidents(rule: RuleIR, events: StoredEvent[], now = new Date()): Incident[] {
  const groups = new Map<string, { group: Record<string, string>; events: StoredEvent[] }>();
  for (const e of events) {
    if (!evaluateFilter(rule.filter, e)) continue;
    const group: Record<string, string> = {};
    for (const ent of rule.output.entities) {
      const v = fieldValues(e, ent.field)[0];
      if (v !== undefined) group[ent.field] = String(v);
    }
    const key = JSON.stringify(group);
    const g = groups.get(key) ?? { group, events: [] };
    g.events.push(e);
    groups.set(key, g);
  }
  const out: Incident[] = [];
  for (const [key, g] of groups) {
    const times = g.events
      .map((e) => Date.parse(String(e['@timestamp'] ?? now.toISOString())))
      .sort((a, b) => a - b);
    const first = new Date(times[0] ?? now.getTime()).toISOString();
    const last = new Date(times[times.length - 1] ?? now.getTime()).toISOString();
    const id = createHash('sha256')
      .update(`${rule.id}\0${rule.version}\0${key}\0${first}`)
      .digest('hex')
      .slice(0, 32);
    const entities: Incident['entities'] = {};
    for (const ent of rule.output.entities) {
      const v = g.group[ent.field];
      if (v !== undefined) entities[ent.role] = [...(entities[ent.role] ?? []), v];
    }
    const at = now.toISOString();
    out.push({
      id,
      rule: { id: rule.id, version: rule.version, title: rule.title, kind: rule.kind },
      severity: rule.severity,
      severity_rank: { low: 1, medium: 2, high: 3, critical: 4 }[rule.severity],
      risk: rule.risk,
      title: rule.title,
      summary: `${g.events.length} matching event(s)`,
      status: 'new',
      assignee: null,
      tags: rule.tags,
      group: g.group,
      group_key: key,
      entities,
      window: { start: first, end: last },
      first_seen: first,
      last_seen: last,
      occurrences: 1,
      detection_ids: [id],
      event_count: g.events.length,
      metrics: { count: g.events.length },
      evidence: {
        event_ids: g.events.slice(0, 10).map((e) => String(fieldValues(e, 'event.id')[0] ?? '')),
        query: '',
      },
      suppression_key: null,
      created_at: at,
      updated_at: at,
      acknowledged_at: null,
      resolved_at: null,
      history: [],
      comments: [],
    });
  }
  return out;
}

export class InProcessDetection implements DetectionPort {
  readonly runs = new Map<string, RunRecord[]>();
  readonly changes: string[] = [];
  private readonly es: Client;
  private readonly prefix: string;

  constructor(es: Client, prefix: string) {
    this.es = es;
    this.prefix = prefix;
  }

  async test(rules: RuleIR[], events: StoredEvent[]): Promise<Incident[]> {
    return rules.flatMap((r) => (r.kind === 'filter' ? filterRuleIncidents(r, events) : []));
  }

  async preview(rule: RuleIR, range: TimeRange): Promise<PreviewResult> {
    if (rule.kind !== 'filter')
      return {
        incidents: [],
        detections: 0,
        degraded: { reason: `${rule.kind} rules are not previewed in process` },
      };
    const r = await this.es.search<StoredEvent>({
      index: indexNames(this.prefix).eventsPattern,
      size: 10_000,
      ignore_unavailable: true,
      allow_no_indices: true,
      query: {
        bool: {
          filter: [
            compileFilter(rule.filter),
            { range: { '@timestamp': { gte: range.start, lt: range.end, format: 'epoch_millis' } } },
          ],
        },
      },
    });
    const events = r.hits.hits.map((h) => h._source!);
    const incidents = filterRuleIncidents(rule, events);
    return { incidents, detections: incidents.length };
  }

  async runNow(ruleId: string): Promise<RunRecord> {
    const now = new Date();
    const record: RunRecord = {
      id: randomUUID(),
      rule_id: ruleId,
      rule_version: 'test',
      started_at: now.toISOString(),
      finished_at: now.toISOString(),
      duration_ms: 0,
      range_start: new Date(now.getTime() - 300_000).toISOString(),
      range_end: now.toISOString(),
      outcome: 'ok',
      detections: 0,
      incidents_created: 0,
      incidents_updated: 0,
      incidents_suppressed: 0,
      es_ms: 0,
      worker_ms: 0,
    };
    this.runs.set(ruleId, [record, ...(this.runs.get(ruleId) ?? [])]);
    return record;
  }

  async runHistory(ruleId: string, limit: number): Promise<RunRecord[]> {
    return (this.runs.get(ruleId) ?? []).slice(0, limit);
  }

  async status(ruleId: string): Promise<RuleStatus> {
    const last = this.runs.get(ruleId)?.[0];
    return last
      ? { degraded: last.outcome === 'degraded' || last.outcome === 'error', last_run: last }
      : { degraded: false };
  }

  async rulesChanged(ruleId: string): Promise<void> {
    this.changes.push(ruleId);
  }
}

export class ElasticsearchEventSearch implements EventSearchPort {
  private readonly es: Client;
  private readonly prefix: string;

  constructor(es: Client, prefix: string) {
    this.es = es;
    this.prefix = prefix;
  }

  async search(request: EventSearchRequest): Promise<EventSearchPage> {
    let after: (string | number)[] | undefined;
    if (request.cursor) {
      try {
        after = JSON.parse(Buffer.from(request.cursor, 'base64url').toString('utf8'));
      } catch {
        /* below */
      }
      if (!Array.isArray(after) || after.length !== 2)
        throw new InvalidEventCursorError('cursor is not one this API issued');
    }
    const r = await this.es.search<StoredEvent>({
      index: indexNames(this.prefix).eventsPattern,
      size: request.size + 1,
      ignore_unavailable: true,
      allow_no_indices: true,
      query: {
        bool: {
          filter: [
            compileFilter(request.filter),
            {
              range: {
                '@timestamp': { gte: request.range.start, lt: request.range.end, format: 'epoch_millis' },
              },
            },
          ],
        },
      },
      sort: [{ '@timestamp': { order: request.order } }, { 'event.id': { order: request.order } }],
      ...(after ? { search_after: after } : {}),
    });
    const hits = r.hits.hits;
    const page = hits.slice(0, request.size);
    const last = page[page.length - 1];
    return {
      events: page.map((h) => h._source!),
      next_cursor:
        hits.length > request.size && last?.sort
          ? Buffer.from(JSON.stringify(last.sort)).toString('base64url')
          : null,
    };
  }

  async get(id: string): Promise<StoredEvent | undefined> {
    try {
      const r = await this.es.search<StoredEvent>({
        index: indexNames(this.prefix).eventsPattern,
        size: 1,
        ignore_unavailable: true,
        allow_no_indices: true,
        query: { ids: { values: [id] } },
      });
      return r.hits.hits[0]?._source;
    } catch (err) {
      if (err instanceof errors.ResponseError && err.statusCode === 404) return undefined;
      throw err;
    }
  }
}

export class InMemoryIngestAdmin implements IngestAdminPort {
  readonly sourceList: SourceStatus[];
  readonly letters: DeadLetter[];

  constructor(sources: SourceStatus[] = [], letters: DeadLetter[] = []) {
    this.sourceList = sources;
    this.letters = letters;
  }

  async sources(): Promise<SourceStatus[]> {
    return this.sourceList;
  }

  async deadLetters(query: { source?: string; size: number; cursor?: string }) {
    const all = this.letters
      .filter((l) => !query.source || l.source === query.source)
      .sort((a, b) => b.at.localeCompare(a.at) || b.id.localeCompare(a.id));
    const offset = query.cursor ? Number(Buffer.from(query.cursor, 'base64url').toString('utf8')) || 0 : 0;
    const items = all.slice(offset, offset + query.size);
    const next =
      offset + query.size < all.length
        ? Buffer.from(String(offset + query.size)).toString('base64url')
        : null;
    return { items, next_cursor: next };
  }

  async replayDeadLetters(request: { ids?: string[]; source?: string }) {
    let replayed = 0;
    const now = new Date().toISOString();
    for (const l of this.letters) {
      const chosen = request.ids
        ? request.ids.includes(l.id)
        : l.source === request.source && l.replayed_at === null;
      if (!chosen) continue;
      l.replayed_at = now;
      replayed++;
    }
    return { replayed, failed: 0 };
  }
}
