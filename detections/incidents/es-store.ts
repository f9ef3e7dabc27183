/**
 * The Elasticsearch incident store used by the writer: the incidents index, partial-document
 * updates guarded by if_seq_no / if_primary_term.
 */
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import type { Incident } from '../../core/schema/incident.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { suppressionKeyOf } from '../engine/types.ts';
import { type EntityNames, entityNamesFrom, type IncidentStore } from './writer.ts';

/** The incidents index is installed by the repository (one definition, with index sorting). */
export { installIncidentIndex as ensureIncidentIndex } from './repository.ts';

const isStatus = (err: unknown, status: number) =>
  err instanceof errors.ResponseError && err.statusCode === status;

export function elasticsearchIncidentStore(client: Client, prefix: string): IncidentStore {
  const index = indexNames(prefix).incidents;
  const first = async (query: object, sort?: object[]) => {
    const r = await client.search<Incident>({
      index,
      size: 1,
      query,
      ...(sort ? { sort: sort as never } : {}),
    });
    return r.hits.hits[0]?._source;
  };
  return {
    async get(id) {
      try {
        const r = await client.get<Incident>({ index, id });
        return { incident: r._source!, version: `${r._seq_no}:${r._primary_term}` };
      } catch (err) {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }
    },
    findByDetectionId: (detectionId) => first({ term: { detection_ids: detectionId } }),
    async findSuppressing(found, statuses, since) {
      const r = await client.search<Incident>({
        index,
        size: 20,
        query: {
          bool: {
            filter: [{ terms: { status: statuses } }, { range: { last_seen: { gt: since } } }],
            should: [
              { term: { suppression_keys: suppressionKeyOf(found.rule.id, found.suppression_key!) } },
              // Incidents written before suppression_keys existed.
              {
                bool: {
                  filter: [
                    { term: { 'rule.id': found.rule.id } },
                    { term: { suppression_key: found.suppression_key! } },
                  ],
                },
              },
            ],
            minimum_should_match: 1,
            must_not: [{ term: { id: found.id } }],
          },
        },
        sort: [{ 'window.end': 'asc' }, { id: 'asc' }] as never,
      });
      return r.hits.hits.map((h) => h._source!);
    },
    async findFolding(entity, keys, statuses, from, to) {
      const colon = entity.indexOf(':');
      const r = await client.search<Incident>({
        index,
        size: 20,
        query: {
          bool: {
            filter: [
              { terms: { status: statuses } },
              { range: { last_seen: { gte: from } } },
              { range: { first_seen: { lte: to } } },
            ],
            should: [
              { term: { [`entities.${entity.slice(0, colon)}`]: entity.slice(colon + 1) } },
              { terms: { entity_key: keys } },
            ],
            minimum_should_match: 1,
          },
        },
        sort: [{ last_seen: 'desc' }, { id: 'asc' }] as never,
      });
      return r.hits.hits.map((h) => h._source!);
    },
    async create(incident) {
      try {
        await client.create({ index, id: incident.id, document: incident, refresh: 'wait_for' });
        return 'created';
      } catch (err) {
        if (isStatus(err, 409)) return 'exists';
        throw err;
      }
    },
    async update(id, patch, version) {
      const [seq, term] = version.split(':').map(Number);
      try {
        await client.update({
          index,
          id,
          doc: patch,
          if_seq_no: seq!,
          if_primary_term: term!,
          refresh: 'wait_for',
        });
        return 'ok';
      } catch (err) {
        if (isStatus(err, 409)) return 'conflict';
        throw err;
      }
    },
  };
}

/** API key names from the events index: one terms aggregation over the incident's span. */
export function elasticsearchEntityNames(client: Client, prefix: string): EntityNames {
  const index = indexNames(prefix).eventsAlias;
  return entityNamesFrom(async (fingerprints, from, to) => {
    const out = new Map<string, string>();
    try {
      const r = await client.search({
        index,
        size: 0,
        ignore_unavailable: true,
        allow_no_indices: true,
        query: {
          bool: {
            filter: [
              { terms: { 'gatewatch.api_key.fingerprint': fingerprints } },
              { exists: { field: 'gatewatch.api_key.name' } },
              { range: { '@timestamp': { gte: from, lte: to, format: 'epoch_millis' } } },
            ],
          },
        },
        aggs: {
          keys: {
            terms: { field: 'gatewatch.api_key.fingerprint', size: fingerprints.length },
            aggs: { name: { terms: { field: 'gatewatch.api_key.name', size: 1 } } },
          },
        },
      });
      const buckets = (
        r.aggregations?.keys as
          | { buckets: { key: string; name: { buckets: { key: string }[] } }[] }
          | undefined
      )?.buckets;
      for (const b of buckets ?? []) {
        const name = b.name.buckets[0]?.key;
        if (name !== undefined) out.set(b.key, name);
      }
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
    return out;
  });
}
