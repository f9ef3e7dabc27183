/**
 * The Elasticsearch incident store used by the writer: the incidents index, partial-document
 * updates guarded by if_seq_no / if_primary_term.
 */
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import type { Incident } from '../../core/schema/incident.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import type { IncidentStore } from './writer.ts';

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
    findSuppressing: (found, statuses, since) =>
      first(
        {
          bool: {
            filter: [
              { term: { 'rule.id': found.rule.id } },
              { term: { suppression_key: found.suppression_key! } },
              { terms: { status: statuses } },
              { range: { 'window.end': { gt: since, lte: found.window.end } } },
            ],
            must_not: [{ term: { id: found.id } }],
          },
        },
        [{ 'window.end': 'asc' }],
      ),
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
