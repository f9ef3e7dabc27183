/**
 * What an integration test file gets: the server URLs from the global setup, a unique
 * prefix for its indices and queues, and clean-up of everything under that prefix.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@elastic/elasticsearch';
import { inject } from 'vitest';
import { indexNames } from '../../core/store/elasticsearch.ts';

export interface IntegrationContext {
  redisUrl: string;
  elasticsearchUrl: string;
  /** Lower-case, index-safe, unique per call: use for index prefixes and BullMQ prefixes. */
  prefix: string;
  es: Client;
  /** Events matching `query` in this context's events indices, after a refresh. */
  countEvents(query?: object): Promise<number>;
  /** Delete this context's indices and templates. */
  cleanup(): Promise<void>;
}

export function integrationContext(name: string): IntegrationContext {
  const redisUrl = inject('redisUrl');
  const elasticsearchUrl = inject('elasticsearchUrl');
  const prefix = `gwt-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${randomBytes(3).toString('hex')}`;
  const es = new Client({ node: elasticsearchUrl, maxRetries: 0, requestTimeout: 60_000 });
  return {
    redisUrl,
    elasticsearchUrl,
    prefix,
    es,
    async countEvents(query = { match_all: {} }) {
      const where = { ignore_unavailable: true, allow_no_indices: true };
      await es.indices.refresh({ index: `${prefix}-*`, ...where });
      return (await es.count({ index: indexNames(prefix).eventsAlias, query, ...where })).count;
    },
    async cleanup() {
      await es.indices.delete({ index: `${prefix}*`, ignore_unavailable: true, allow_no_indices: true });
      const templates = await es.indices
        .getIndexTemplate({ name: `${prefix}*` })
        .catch(() => ({ index_templates: [] }));
      for (const t of templates.index_templates) await es.indices.deleteIndexTemplate({ name: t.name });
      await es.close();
    },
  };
}
