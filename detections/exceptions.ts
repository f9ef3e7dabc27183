/**
 * Rule exceptions: "this entity is expected for this rule" — an analyst's decision, stored
 * with who made it, why, and until when (or for good). The detection engine consults the
 * exceptions of a rule where a run's incidents are written (./incidents/writer.ts): a
 * detection whose entities include an excepted one is dropped before it creates, updates or
 * is merged into an incident, and the run record counts it as excepted.
 *
 * An exception is never deleted: lifting it records who lifted it and when, so the rule's
 * page keeps the whole story. Stores: Elasticsearch (here) and the embedded SQLite file
 * (embedded/exceptions.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import type { EntityType } from '../core/schema/entities.ts';
import type { Incident } from '../core/schema/incident.ts';

export interface RuleException {
  id: string;
  rule_id: string;
  entity: { type: EntityType; value: string };
  reason: string;
  created_at: string;
  created_by: string;
  /** null: for good. */
  expires_at: string | null;
  /** The incident it was made from, if any. */
  incident_id: string | null;
  removed_at: string | null;
  removed_by: string | null;
}

export interface NewException {
  rule_id: string;
  entity: { type: EntityType; value: string };
  reason: string;
  expires_at: string | null;
  incident_id: string | null;
}

export interface ExceptionQuery {
  rule_id?: string;
  /** Only exceptions in force at this time (not lifted, not expired). */
  activeAt?: number;
}

export interface ExceptionStore {
  install(): Promise<void>;
  create(exception: NewException, by: string, at: number): Promise<RuleException>;
  get(id: string): Promise<RuleException | undefined>;
  /** Newest first. */
  list(query: ExceptionQuery): Promise<RuleException[]>;
  /** Lift an exception (kept, marked removed); undefined when it does not exist. */
  remove(id: string, by: string, at: number): Promise<RuleException | undefined>;
}

export function newException(input: NewException, by: string, at: number): RuleException {
  return {
    id: randomUUID(),
    ...input,
    created_at: new Date(at).toISOString(),
    created_by: by,
    removed_at: null,
    removed_by: null,
  };
}

/** In force at `now`: not lifted and not expired. */
export function isActive(exception: RuleException, now: number): boolean {
  return (
    exception.removed_at === null && (exception.expires_at === null || Date.parse(exception.expires_at) > now)
  );
}

/** The exception of `rule` that covers an incident: one of its entities is excepted. */
export function exceptionFor(
  incident: { rule: { id: string }; entities: Incident['entities'] },
  exceptions: readonly RuleException[],
  now: number,
): RuleException | undefined {
  return exceptions.find(
    (e) =>
      e.rule_id === incident.rule.id &&
      isActive(e, now) &&
      (incident.entities[e.entity.type] ?? []).some((v) => String(v) === e.entity.value),
  );
}

/** Split a run's incidents into those to write and those an exception drops. */
export function applyExceptions<
  T extends { id: string; rule: { id: string }; entities: Incident['entities'] },
>(
  incidents: readonly T[],
  exceptions: readonly RuleException[],
  now: number,
): { kept: T[]; excepted: { incident: T; exception: RuleException }[] } {
  const kept: T[] = [];
  const excepted: { incident: T; exception: RuleException }[] = [];
  for (const incident of incidents) {
    const exception = exceptionFor(incident, exceptions, now);
    if (exception) excepted.push({ incident, exception });
    else kept.push(incident);
  }
  return { kept, excepted };
}

// ---------------------------------------------------------------------------------------------
// Elasticsearch

export const exceptionMappings = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    rule_id: { type: 'keyword' },
    entity: { properties: { type: { type: 'keyword' }, value: { type: 'keyword' } } },
    reason: { type: 'text' },
    created_at: { type: 'date' },
    created_by: { type: 'keyword' },
    expires_at: { type: 'date' },
    incident_id: { type: 'keyword' },
    removed_at: { type: 'date' },
    removed_by: { type: 'keyword' },
  },
} as const;

export const exceptionsIndex = (prefix: string) => `${prefix}-rule-exceptions`;

export class ElasticsearchExceptionStore implements ExceptionStore {
  private readonly es: Client;
  private readonly index: string;

  constructor(es: Client, prefix: string) {
    this.es = es;
    this.index = exceptionsIndex(prefix);
  }

  async install(): Promise<void> {
    try {
      await this.es.indices.create({
        index: this.index,
        settings: { number_of_shards: 1, number_of_replicas: 0 },
        mappings: exceptionMappings,
      });
    } catch (err) {
      if (
        err instanceof errors.ResponseError &&
        err.body?.error?.type === 'resource_already_exists_exception'
      )
        return;
      throw err;
    }
  }

  async create(input: NewException, by: string, at: number): Promise<RuleException> {
    const exception = newException(input, by, at);
    await this.es.create({ index: this.index, id: exception.id, document: exception, refresh: 'wait_for' });
    return exception;
  }

  async get(id: string): Promise<RuleException | undefined> {
    try {
      return (await this.es.get<RuleException>({ index: this.index, id }))._source;
    } catch (err) {
      if (err instanceof errors.ResponseError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  async list(query: ExceptionQuery): Promise<RuleException[]> {
    const filter: object[] = [];
    if (query.rule_id) filter.push({ term: { rule_id: query.rule_id } });
    if (query.activeAt !== undefined) {
      filter.push({ bool: { must_not: { exists: { field: 'removed_at' } } } });
      filter.push({
        bool: {
          should: [
            { bool: { must_not: { exists: { field: 'expires_at' } } } },
            { range: { expires_at: { gt: query.activeAt, format: 'epoch_millis' } } },
          ],
          minimum_should_match: 1,
        },
      });
    }
    const r = await this.es.search<RuleException>({
      index: this.index,
      size: 10_000,
      query: { bool: { filter } },
      sort: [{ created_at: 'desc' }, { id: 'asc' }],
      ignore_unavailable: true,
    });
    return r.hits.hits.map((h) => h._source!);
  }

  async remove(id: string, by: string, at: number): Promise<RuleException | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      let current: { _source?: RuleException; _seq_no?: number; _primary_term?: number };
      try {
        current = await this.es.get<RuleException>({ index: this.index, id });
      } catch (err) {
        if (err instanceof errors.ResponseError && err.statusCode === 404) return undefined;
        throw err;
      }
      const exception = current._source!;
      if (exception.removed_at !== null) return exception;
      const removed = { ...exception, removed_at: new Date(at).toISOString(), removed_by: by };
      try {
        await this.es.index({
          index: this.index,
          id,
          document: removed,
          if_seq_no: current._seq_no!,
          if_primary_term: current._primary_term!,
          refresh: 'wait_for',
        });
        return removed;
      } catch (err) {
        if (err instanceof errors.ResponseError && err.statusCode === 409) continue;
        throw err;
      }
    }
    throw new Error(`exception ${id}: too many concurrent changes`);
  }
}
