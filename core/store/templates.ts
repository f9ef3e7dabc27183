/**
 * Index templates Gatewatch installs at start-up. The events template is derived from the
 * event schema; the others are small and written out here.
 */
import type { Client } from '@elastic/elasticsearch';
import { eventMappings } from '../schema/mapping.ts';
import { ensureIndex, indexNames, putIndexTemplate } from './elasticsearch.ts';

export const deadLetterMappings = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    '@timestamp': { type: 'date' },
    source: { type: 'keyword' },
    format: { type: 'keyword' },
    reason: { type: 'keyword', ignore_above: 4096 },
    stage: { type: 'keyword' },
    raw: { type: 'keyword', index: false, doc_values: false },
    raw_truncated: { type: 'boolean' },
    raw_bytes: { type: 'long' },
    event_id: { type: 'keyword' },
    replayed_at: { type: 'date' },
    replay_count: { type: 'long' },
  },
} as const;

export interface TemplateOptions {
  prefix: string;
  shards?: number;
  replicas?: number;
}

/** Install the events and dead-letter templates. Idempotent; run by every process at start. */
export async function installCoreTemplates(client: Client, options: TemplateOptions): Promise<void> {
  const names = indexNames(options.prefix);
  await putIndexTemplate(client, {
    name: names.eventsTemplate,
    patterns: [names.eventsPattern],
    mappings: eventMappings(),
    aliases: [names.eventsAlias],
    shards: options.shards,
    replicas: options.replicas,
  });
  await putIndexTemplate(client, {
    name: names.deadLetters,
    patterns: [names.deadLetters],
    mappings: deadLetterMappings,
    shards: 1,
    replicas: options.replicas,
  });
  // Created up front (not on first write) so readers never meet a shard still being allocated.
  await ensureIndex(client, names.deadLetters);
  // An index created before a field was added to the mapping gets it (additions only).
  await client.indices.putMapping({ index: names.deadLetters, properties: deadLetterMappings.properties });
  await client.cluster.health({ index: names.deadLetters, wait_for_status: 'yellow', timeout: '30s' });
}
