/**
 * Compaction (docs/partials.md): a day chunk's batch documents are merged, per rule version,
 * with that version's compacted document of the chunk (generation g) into generation g + 1,
 * which lists the batch ids it holds (`folded`); then generation g and the batch documents are
 * deleted. A crash between the write and the deletes leaves documents that generation g + 1
 * lists: readers skip them, and the next compaction deletes them.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { indexNames } from '../../core/store/elasticsearch.ts';
import type { GroupBuckets } from '../engine/aggregate.ts';
import { DAY_MS } from '../engine/es/run.ts';
import { CellMerger, type EncodedCells, encodeCells } from './cells.ts';
import { compactDocId, ensurePartialsIndex, type PartialDoc } from './store.ts';

export interface CompactionResult {
  chunks: number;
  /** Batch documents folded (and deleted). */
  batchDocs: number;
  /** Compacted documents written. */
  written: number;
}

async function* docs(
  es: Client,
  index: string,
  query: estypes.QueryDslQueryContainer,
): AsyncGenerator<PartialDoc> {
  let after: estypes.SortResults | undefined;
  for (;;) {
    const res = await es.search<PartialDoc>({
      index,
      size: 200,
      query,
      sort: [{ chunk: 'asc' }, { batch: 'asc' }, { rule: 'asc' }, { gen: 'asc' }],
      ...(after ? { search_after: after } : {}),
      track_total_hits: false,
    });
    for (const h of res.hits.hits) yield { ...h._source!, _id: h._id } as PartialDoc & { _id: string };
    if (res.hits.hits.length < 200) return;
    after = res.hits.hits[res.hits.hits.length - 1]!.sort;
  }
}

/** A merger that keeps cells as they are (no plan knowledge needed: sizes come from the cells). */
function mergerFor(enc: EncodedCells, exactValues: number): CellMerger {
  const first = enc.c[0];
  const plan = {
    metrics: [],
    filters: (first?.[5] ?? []).map(() => ({ op: 'true' }) as const),
    statsFields: (first?.[6] ?? []).map((_, i) => `s${i}`),
    termsFields: (first?.[7] ?? []).map((_, i) => `t${i}`),
    refs: [],
  };
  // buckets of every size: the merger only needs bucket starts, a 1 ms "bucket" keeps them all
  return new CellMerger(plan, 1, exactValues, {
    start: Number.NEGATIVE_INFINITY,
    end: Number.POSITIVE_INFINITY,
  });
}

/** Compact every chunk that ends before `before` and still has batch documents. */
export async function compactPartials(
  es: Client,
  prefix: string,
  options: { before: number; exactValues?: number; maxChunks?: number; refresh?: boolean },
): Promise<CompactionResult> {
  const index = await ensurePartialsIndex(es, prefix);
  const exactValues = options.exactValues ?? 256;
  const found = await es.search({
    index,
    size: 0,
    query: {
      bool: {
        filter: [
          { term: { level: 'batch' } },
          { range: { chunk: { lt: options.before - DAY_MS + 1, format: 'epoch_millis' } } },
        ],
      },
    },
    aggs: { c: { terms: { field: 'chunk', size: options.maxChunks ?? 1000, order: { _key: 'asc' } } } },
  });
  const agg = found.aggregations?.c as estypes.AggregationsLongTermsAggregate | undefined;
  const chunks = ((agg?.buckets ?? []) as estypes.AggregationsLongTermsBucket[]).map((b) => Number(b.key));
  const result: CompactionResult = { chunks: 0, batchDocs: 0, written: 0 };
  for (const chunk of chunks) {
    if (chunk + DAY_MS > options.before) continue;
    const r = await compactChunk(es, index, chunk, exactValues);
    result.chunks++;
    result.batchDocs += r.batchDocs;
    result.written += r.written;
  }
  if (options.refresh) await es.indices.refresh({ index });
  return result;
}

async function compactChunk(
  es: Client,
  index: string,
  chunk: number,
  exactValues: number,
): Promise<{ batchDocs: number; written: number }> {
  // the newest compacted document of every rule version in the chunk
  const newest = new Map<string, PartialDoc & { _id: string }>();
  const stale: string[] = [];
  for await (const d of docs(es, index, {
    bool: { filter: [{ term: { chunk } }, { term: { level: 'compact' } }] },
  })) {
    const doc = d as PartialDoc & { _id: string };
    const cur = newest.get(doc.rule!);
    if (!cur || (doc.gen ?? 0) > (cur.gen ?? 0)) {
      if (cur) stale.push(cur._id);
      newest.set(doc.rule!, doc);
    } else stale.push(doc._id);
  }
  interface Acc {
    merger?: CellMerger;
    events: number;
    folded: Set<string>;
    gen: number;
  }
  const acc = new Map<string, Acc>();
  const accOf = (rule: string): Acc => {
    let a = acc.get(rule);
    if (!a) {
      const base = newest.get(rule);
      a = { events: base?.events ?? 0, folded: new Set(base?.folded ?? []), gen: (base?.gen ?? 0) + 1 };
      const enc = base?.body?.[rule] as EncodedCells | undefined;
      if (enc && enc.c.length > 0) {
        a.merger = mergerFor(enc, exactValues);
        a.merger.add(enc);
      }
      acc.set(rule, a);
    }
    return a;
  };
  const batchIds: string[] = [];
  for await (const d of docs(es, index, {
    bool: { filter: [{ term: { chunk } }, { term: { level: 'batch' } }] },
  })) {
    const doc = d as PartialDoc & { _id: string };
    batchIds.push(doc._id);
    for (const rule of doc.rules ?? []) {
      const a = accOf(rule);
      // already held by the compacted generation (a redelivery after its compaction)
      if (a.folded.has(doc.batch!)) continue;
      a.folded.add(doc.batch!);
      a.events += doc.events;
      const enc = doc.body?.[rule] as EncodedCells | undefined;
      if (!enc || enc.c.length === 0) continue;
      a.merger ??= mergerFor(enc, exactValues);
      a.merger.add(enc);
    }
  }
  if (batchIds.length === 0) return { batchDocs: 0, written: 0 };
  const at = new Date().toISOString();
  const ops: estypes.BulkOperationContainer[] = [];
  const bodies: unknown[] = [];
  for (const [rule, a] of acc) {
    const groups: GroupBuckets[] = a.merger ? [...a.merger.result().values()] : [];
    const cells = encodeCells(groups, exactValues);
    const doc: PartialDoc = {
      level: 'compact',
      chunk,
      rule,
      events: a.events,
      cells: cells.c.length,
      bytes: JSON.stringify(cells).length,
      gen: a.gen,
      folded: [...a.folded],
      written_at: at,
      body: { [rule]: cells },
    };
    ops.push({ index: { _index: index, _id: compactDocId(rule, chunk, a.gen) } });
    bodies.push(doc);
  }
  const write = await es.bulk({ operations: ops.flatMap((op, i) => [op, bodies[i]]), refresh: 'wait_for' });
  if (write.errors)
    throw new Error(`compaction of ${new Date(chunk).toISOString().slice(0, 10)} not written`);
  // the generations now superseded, and the batches they hold
  const superseded = [
    ...[...acc.keys()].flatMap((r) => (newest.get(r) ? [newest.get(r)!._id] : [])),
    ...stale,
  ];
  const remove = [...superseded, ...batchIds];
  for (let i = 0; i < remove.length; i += 1000) {
    const del = await es.bulk({
      operations: remove.slice(i, i + 1000).map((id) => ({ delete: { _index: index, _id: id } })),
    });
    if (del.errors) throw new Error('compaction: some superseded partial documents were not deleted');
  }
  return { batchDocs: batchIds.length, written: ops.length };
}

/** Bytes and documents of the partials index (for /metrics and the bench). */
export async function partialsSize(es: Client, prefix: string): Promise<{ docs: number; bytes: number }> {
  const index = indexNames(prefix).partials;
  const s = await es.indices.stats({ index, metric: ['docs', 'store'] }).catch(() => undefined);
  const all = s?._all?.primaries;
  return { docs: all?.docs?.count ?? 0, bytes: all?.store?.size_in_bytes ?? 0 };
}
