/**
 * The partials index (`<prefix>-partials`, docs/partials.md): one document per (batch, day
 * chunk) holding the cells of every partial rule, and compacted documents per (rule version,
 * chunk). Ids derive from the batch, so a redelivered batch overwrites its own documents.
 */
import { createHash } from 'node:crypto';
import type { Client, estypes } from '@elastic/elasticsearch';
import { bulkWrite, ensureIndex, indexNames } from '../../core/store/elasticsearch.ts';
import { type BuildProgress, buildProgress } from './build.ts';
import { firstSeenKeyFields, writeFirstSeenKeys } from './first-seen-keys.ts';
import type { FoldedBatch } from './fold.ts';

export const partialsMappings = {
  dynamic: 'strict',
  properties: {
    /** `batch`, `compact`, or `key` (a first-seen key, first-seen-keys.ts). */
    level: { type: 'keyword' },
    chunk: { type: 'date' },
    batch: { type: 'keyword' },
    rules: { type: 'keyword' },
    rule: { type: 'keyword' },
    events: { type: 'long' },
    /** Cells in the body (all rules of a batch document; its rule's in a compacted one). */
    cells: { type: 'long' },
    /** Bytes of the body as JSON. */
    bytes: { type: 'long' },
    gen: { type: 'long' },
    /** Part of a compacted generation (a large day is split by group). */
    part: { type: 'long' },
    /** On part 0 (written last): how many parts the generation has, so a cut-short one is known. */
    parts: { type: 'long' },
    folded: { type: 'keyword', index: false, doc_values: false },
    written_at: { type: 'date' },
    /** Level `sequence`: the watermark the sequence state was kept at (./sequence-state.ts). */
    watermark: { type: 'date' },
    body: { type: 'object', enabled: false },
    /** On part 0: per rule version, each group's events in the chunk and its part (compact.ts). */
    summary: { type: 'object', enabled: false },
    ...firstSeenKeyFields,
  },
} as const;

export interface PartialDoc {
  /** `build`: a rule version's build status (build.ts), not cells. */
  level: 'batch' | 'compact' | 'build';
  chunk: number;
  batch?: string;
  rules?: string[];
  rule?: string;
  events: number;
  cells?: number;
  bytes?: number;
  gen?: number;
  part?: number;
  parts?: number;
  folded?: string[];
  written_at: string;
  body: Record<string, unknown>;
  summary?: Record<string, unknown>;
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
      // cells are JSON kept in _source: compressed with DEFLATE rather than LZ4
      settings: {
        number_of_shards: 1,
        number_of_replicas: 0,
        refresh_interval: '1s',
        codec: 'best_compression',
      },
      mappings: partialsMappings,
    });
    seen.add(index);
  }
  return index;
}

export function batchDocId(batchId: string, chunk: number): string {
  return createHash('sha256').update(`${batchId}\u0000${chunk}`).digest('hex').slice(0, 32);
}

export function compactDocId(rule: string, chunk: number, gen: number, part = 0): string {
  return createHash('sha256')
    .update(`compact\u0000${rule}\u0000${chunk}\u0000${gen}${part > 0 ? `\u0000${part}` : ''}`)
    .digest('hex')
    .slice(0, 32);
}

/** Sort keys that make a partials search's order total (for `search_after`). */
export const partialsSort: estypes.SortCombinations[] = [
  { chunk: 'asc' },
  { batch: 'asc' },
  { rule: 'asc' },
  { gen: 'asc' },
  // indices made before parts existed have no mapping for it
  { part: { order: 'asc', unmapped_type: 'long' } },
];

/**
 * The newest complete generation among one rule version's compacted documents of one chunk: a
 * generation is complete when its part 0 (written last, with the number of parts) and every
 * other part are there. A compaction cut short while writing leaves an incomplete, newer one,
 * which readers skip. Documents from before parts existed are one-part generations.
 */
export function newestGeneration<D extends PartialDoc>(compacted: readonly D[]): D[] {
  const byGen = new Map<number, D[]>();
  for (const d of compacted) {
    const g = d.gen ?? 0;
    const list = byGen.get(g);
    if (list) list.push(d);
    else byGen.set(g, [d]);
  }
  for (const g of [...byGen.keys()].sort((a, b) => b - a)) {
    const docs = byGen.get(g)!;
    const head = docs.find((d) => (d.part ?? 0) === 0);
    if (head && new Set(docs.map((d) => d.part ?? 0)).size === (head.parts ?? 1)) return docs;
  }
  return [];
}

/**
 * Write (overwrite) a batch's partial documents, after upserting its first-seen keys: a batch
 * document names its first_seen rule versions only once their keys are in the key index, so the
 * day coverage proves them. Throws on failure, so the batch is retried.
 */
export async function writeBatchPartials(
  es: Client,
  prefix: string,
  batchId: string,
  folded: FoldedBatch,
  refresh: boolean | 'wait_for' = false,
): Promise<number> {
  if (folded.chunks.size === 0) return 0;
  const index = await ensurePartialsIndex(es, prefix);
  if (folded.keys)
    await writeFirstSeenKeys(es, index, folded.keys.upserts, {
      ...(folded.keys.keepMs !== undefined ? { keepMs: folded.keys.keepMs } : {}),
    });
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
        cells: Object.values(c.body).reduce((a, b) => a + b.c.length, 0),
        bytes: JSON.stringify(c.body).length,
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

export interface PartialsStats {
  /** The index on disk (primaries). */
  bytes: number;
  /** `key`: first-seen key documents (first-seen-keys.ts). */
  documents: { batch: number; compact: number; key: number };
  /** Per rule version: cells and body bytes of its compacted documents. */
  rules: { rule: string; cells: number; bytes: number }[];
  /** Cells and body bytes of batch documents not compacted yet (all rules). */
  pending: { cells: number; bytes: number };
  /** Per rule version with a background build (build.ts): days built, to build, events folded. */
  builds: BuildProgress[];
}

/** What the partials hold, for /metrics and the bench: index size, documents, per rule. */
export async function partialsStats(es: Client, prefix: string): Promise<PartialsStats | undefined> {
  const index = indexNames(prefix).partials;
  const [stats, agg] = await Promise.all([
    es.indices.stats({ index, metric: ['store'] }).catch(() => undefined),
    es
      .search({
        index,
        size: 0,
        aggs: {
          levels: {
            terms: { field: 'level', size: 3 },
            aggs: { cells: { sum: { field: 'cells' } }, bytes: { sum: { field: 'bytes' } } },
          },
          rules: {
            filter: { term: { level: 'compact' } },
            aggs: {
              r: {
                terms: { field: 'rule', size: 1000 },
                aggs: { cells: { sum: { field: 'cells' } }, bytes: { sum: { field: 'bytes' } } },
              },
            },
          },
        },
      })
      .catch(() => undefined),
  ]);
  if (!stats || !agg) return undefined;
  const builds = await buildProgress(es, index).catch(() => []);
  type Sum = { key: string; doc_count: number; cells: { value: number }; bytes: { value: number } };
  const levels = (agg.aggregations?.levels as { buckets: Sum[] } | undefined)?.buckets ?? [];
  const rules = (agg.aggregations?.rules as { r: { buckets: Sum[] } } | undefined)?.r.buckets ?? [];
  const level = (l: string) => levels.find((b) => b.key === l);
  return {
    bytes: stats._all?.primaries?.store?.size_in_bytes ?? 0,
    documents: {
      batch: level('batch')?.doc_count ?? 0,
      compact: level('compact')?.doc_count ?? 0,
      key: level('key')?.doc_count ?? 0,
    },
    rules: rules.map((b) => ({ rule: b.key, cells: b.cells.value, bytes: b.bytes.value })),
    pending: { cells: level('batch')?.cells.value ?? 0, bytes: level('batch')?.bytes.value ?? 0 },
    builds,
  };
}
