/**
 * Searches that answer from every shard or fail. By default Elasticsearch answers a search
 * even when some shards could not take part (a node just left, a primary being promoted): the
 * hits and aggregations of the others, with `_shards.failed` > 0. A detection run that took
 * such an answer for the whole truth would miss incidents and still move its checkpoint on; with
 * this client it fails instead, and the range is run again (the checkpoint stays).
 */
import type { Client } from '@elastic/elasticsearch';

export class PartialResultsError extends Error {
  override name = 'PartialResultsError';
}

interface ShardCounts {
  _shards?: { total: number; failed: number; failures?: { reason?: { reason?: string } }[] };
}

function assertWhole(response: ShardCounts, what: string): void {
  const shards = response._shards;
  if (shards && shards.failed > 0) {
    const why = shards.failures?.[0]?.reason?.reason;
    throw new PartialResultsError(
      `${what}: ${shards.failed} of ${shards.total} shards did not answer${why ? ` (${why})` : ''}; run again once the cluster has recovered`,
    );
  }
}

/** `es` with its search and msearch refusing partial results (every other call unchanged). */
export function wholeResultsOnly(es: Client): Client {
  return new Proxy(es, {
    get(target, property, receiver) {
      if (property === 'search') {
        return async (params: Parameters<Client['search']>[0], options?: Parameters<Client['search']>[1]) => {
          const response = await target.search({ allow_partial_search_results: false, ...params }, options);
          assertWhole(response as ShardCounts, 'search');
          return response;
        };
      }
      if (property === 'msearch') {
        return async (
          params: Parameters<Client['msearch']>[0],
          options?: Parameters<Client['msearch']>[1],
        ) => {
          const response = await target.msearch(params, options);
          for (const r of response.responses) if (!('error' in r)) assertWhole(r as ShardCounts, 'msearch');
          return response;
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
}
