/**
 * The partials index (`<prefix>-partials`, docs/partials.md): one document per (batch, day
 * chunk) holding the cells of every partial rule, and compacted documents per (rule version,
 * chunk). Ids derive from the batch, so a redelivered batch overwrites its own documents.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { bulkWrite, ensureIndex, indexNames } from '../../core/store/elasticsearch.ts';
import type { FoldedBatch } from './fold.ts';

export const partialsMappings = {
  dynamic: 'strict',
  properties: {
    level: { type: 'keyword' },
    chunk: { type: 'date' },
    batch: { type: 'keyword' },
    rules: { type: 'keyword' },
    rule: { type: 'keyword' },
    events: { type: 'long' },
    gen: { type: 'long' },
    folded: { type: 'keyword', index: false, doc_values: false },
    written_at: { type: 'date' },
    body: { type: 'object', enabled: false },
  },
} as const;

export interface PartialDoc {
  level: 'batch' | 'compact';
  chunk: number;
  batch?: string;
  rules?: string[];
  rule?: string;
  events: number;
  gen?: number;
  folded?: string[];
  written_at: string;
  body: Record<string, unknown>;
}

const ready = new WeakMap<Client, Set<string>>();

/** Create the partials index once per process and client. */
export async function ensurePartialsIndex(es: Client, prefix: string): Promise<string> {
  const index = indexNames(prefix).partials;
  let seen = ready.get(es);
  if (!seen) {
    seen = new Set();
    ready.set(es, seen);
  }
  if (!seen.has(index)) {
    await ensureIndex(es, index, {
      settings: { number_of_shards: 1, number_of_replicas: 0, refresh_interval: '1s' },
      mappings: partialsMappings,
    });
    seen.add(index);
  }
  return index;
}

export function batchDocId(batchId: string, chunk: number): string {
  return createHash('sha256').update(`${batchId}\u0000${chunk}`).digest('hex').slice(0, 32);
}

export function compactDocId(rule: string, chunk: number, gen: number): string {
  return createHash('sha256')
    .update(`compact\u0000${rule}\u0000${chunk}\u0000${gen}`)
    .digest('hex')
    .slice(0, 32);
}

/** Write (overwrite) a batch's partial documents. Throws on failure, so the batch is retried. */
export async function writeBatchPartials(
  es: Client,
  prefix: string,
  batchId: string,
  folded: FoldedBatch,
  refresh: boolean | 'wait_for' = false,
): Promise<number> {
  if (folded.chunks.size === 0) return 0;
  const index = await ensurePartialsIndex(es, prefix);
  const at = new Date().toISOString();
  const res = await bulkWrite(
    es,
    [...folded.chunks].map(([chunk, c]) => ({
      op: 'index' as const,
      index,
      id: batchDocId(batchId, chunk),
      doc: {
        level: 'batch',
        chunk,
        batch: batchId,
        rules: folded.rules,
        events: c.events,
        written_at: at,
        body: c.body,
      } satisfies PartialDoc,
    })),
    { refresh },
  );
  if (res.rejected + res.retryable > 0) {
    const err = res.items.find((i) => !i.ok)?.error;
    throw new Error(`partials of batch ${batchId} not written: ${err?.type ?? ''} ${err?.reason ?? ''}`);
  }
  return folded.chunks.size;
}
