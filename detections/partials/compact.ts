/**
 * Compaction (docs/partials.md): a day chunk's batch documents are merged, per rule version,
 * with that version's compacted generation of the chunk (g) into generation g + 1, which lists
 * the batch ids it holds (`folded`); then generation g and the batch documents are deleted.
 * A generation is written as parts of at most `partCells` cells and `partBytes` of JSON (split by
 * group, a group never split), part 0 last:
 * it carries the number of parts and the folded batches, so a generation cut short while being
 * written is incomplete and skipped by readers (`newestGeneration`). A crash between the
 * writes and the deletes leaves documents that generation g + 1 lists: readers skip them, and
 * the next compaction deletes them.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { bulkWrite, indexNames } from '../../core/store/elasticsearch.ts';
import type { GroupBuckets } from '../engine/aggregate.ts';
import { DAY_MS } from '../engine/es/run.ts';
import { CellMerger, type EncodedCells, encodeCells } from './cells.ts';
import {
  compactDocId,
  ensurePartialsIndex,
  newestGeneration,
  type PartialDoc,
  partialsSort,
} from './store.ts';

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
      sort: partialsSort,
      ...(after ? { search_after: after } : {}),
      track_total_hits: false,
    });
    for (const h of res.hits.hits) yield { ...h._source!, _id: h._id } as PartialDoc & { _id: string };
    if (res.hits.hits.length < 200) return;
    after = res.hits.hits[res.hits.hits.length - 1]!.sort;
  }
}

/**
 * Cells per compacted document (a part): bounds document size and memory per request, and is
 * the unit a run fetches (smaller parts: fewer cells of groups that cannot fire come along).
 */
export const PART_CELLS = 10_000;
/** Body bytes per compacted document: a part above it is split again (by group). */
export const PART_BYTES = 4_000_000;
/**
 * Body bytes per bulk request when writing compacted documents: well under a small node's
 * indexing pressure limit (10 % of its heap, 54 MB at 512 MB, shared with ingest).
 */
const BULK_BYTES = 8_000_000;

/**
 * A generation's cells as parts: runs of whole groups of at most `partCells` cells, each split
 * in halves again while its JSON exceeds `partBytes` (cells with large value maps). Groups come
 * busiest first (`byTotal`), so the groups a run must decide — those with enough events for
 * their rule to fire — sit together in the first parts and the rest are never fetched.
 */
function encodeParts(
  groups: GroupBuckets[],
  exactValues: number,
  partCells: number,
  partBytes: number,
): { enc: EncodedCells; bytes: number; groups: GroupBuckets[] }[] {
  const runs: GroupBuckets[][] = [[]];
  let cells = 0;
  for (const g of groups) {
    if (cells > 0 && cells + g.buckets.size > partCells) {
      runs.push([]);
      cells = 0;
    }
    runs[runs.length - 1]!.push(g);
    cells += g.buckets.size;
  }
  const out: { enc: EncodedCells; bytes: number; groups: GroupBuckets[] }[] = [];
  const encode = (gs: GroupBuckets[]) => {
    const enc = encodeCells(gs, exactValues);
    const bytes = JSON.stringify(enc).length;
    if (bytes > partBytes && gs.length > 1) {
      const half = Math.ceil(gs.length / 2);
      encode(gs.slice(0, half));
      encode(gs.slice(half));
    } else out.push({ enc, bytes, groups: gs });
  };
  for (const run of runs) encode(run);
  return out;
}

/** Events of a group in the chunk (its cells' counts). */
const totalOf = (g: GroupBuckets): number => {
  let n = 0;
  for (const p of g.buckets.values()) n += p.count;
  return n;
};

/**
 * Per group of a generation: its events in the chunk, the part holding its cells, and (unless
 * the day has too many group-hours) its events and where-counts per hour. Stored on part 0, so
 * a run reads it first and fetches only the parts of groups that can fire (docs/partials.md,
 * "Reading only the groups that can fire").
 */
export interface GroupSummary {
  g: (string | number | boolean)[][];
  n: number[];
  p: number[];
  /** Per group: [hour of the day, events, where-count 0, where-count 1, …] for each hour with cells. */
  h?: number[][][];
}

/** Group-hours a summary keeps per rule version and day; past it, day totals only. */
const SUMMARY_HOURS = 200_000;
const HOUR_MS = 3_600_000;

/**
 * A cell counts in the hour its bucket starts: a window holds the cells whose buckets start
 * inside it, so the hours a window spans hold all of them.
 */
function hourlyOf(g: GroupBuckets, chunk: number): number[][] {
  const hours = new Map<number, number[]>();
  for (const [t, p] of g.buckets) {
    const h = Math.floor((t - chunk) / HOUR_MS);
    let row = hours.get(h);
    if (!row) {
      row = [h, 0, ...p.wheres.map(() => 0)];
      hours.set(h, row);
    }
    row[1]! += p.count;
    for (let i = 0; i < p.wheres.length; i++) row[i + 2]! += p.wheres[i]!;
  }
  return [...hours.values()].sort((a, b) => a[0]! - b[0]!);
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
  options: {
    before: number;
    exactValues?: number;
    maxChunks?: number;
    refresh?: boolean;
    /** Cells per compacted document (default PART_CELLS). */
    partCells?: number;
    /** Body bytes per compacted document, unless one group holds more (default PART_BYTES). */
    partBytes?: number;
  },
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
    const r = await compactChunk(es, index, chunk, exactValues, {
      cells: options.partCells ?? PART_CELLS,
      bytes: options.partBytes ?? PART_BYTES,
    });
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
  partSize: { cells: number; bytes: number },
): Promise<{ batchDocs: number; written: number }> {
  // every compacted document of the chunk, per rule version
  const compacted = new Map<string, (PartialDoc & { _id: string })[]>();
  for await (const d of docs(es, index, {
    bool: { filter: [{ term: { chunk } }, { term: { level: 'compact' } }] },
  })) {
    const doc = d as PartialDoc & { _id: string };
    const list = compacted.get(doc.rule!);
    if (list) list.push(doc);
    else compacted.set(doc.rule!, [doc]);
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
      const all = compacted.get(rule) ?? [];
      const parts = newestGeneration(all);
      a = {
        events: parts.reduce((n, p) => n + p.events, 0),
        folded: new Set(parts.flatMap((p) => p.folded ?? [])),
        // above every generation there, also one cut short (its ids are never reused)
        gen: all.reduce((g, p) => Math.max(g, p.gen ?? 0), 0) + 1,
      };
      for (const p of parts) {
        const enc = p.body?.[rule] as EncodedCells | undefined;
        if (!enc || enc.c.length === 0) continue;
        a.merger ??= mergerFor(enc, exactValues);
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
  let written = 0;
  // Parts 1.. of every generation first, then the parts 0 (a crash in between leaves only
  // incomplete generations); bulk requests of at most BULK_BYTES (a part alone may reach
  // PART_BYTES), one refresh at the end, so every part is searchable before anything is deleted.
  type Entry = { id: string; doc: PartialDoc; bytes: number };
  const flush = async (docs: Entry[], refresh: boolean) => {
    if (docs.length === 0) return;
    // Elasticsearch sheds load with 429s (indexing pressure, queues full): those are sent again.
    let pending = docs;
    for (let attempt = 1; ; attempt++) {
      const res = await bulkWrite(
        es,
        pending.map((d) => ({ op: 'index' as const, index, id: d.id, doc: d.doc })),
        refresh ? { refresh: 'wait_for' } : {},
      );
      const failed = res.items.flatMap((item, i) => (item.ok ? [] : [{ item, doc: pending[i]! }]));
      written += pending.length - failed.length;
      if (failed.length === 0) return;
      const fatal = failed.find((f) => !f.item.retryable);
      if (fatal || attempt >= 6) {
        const err = (fatal ?? failed[0]!).item.error;
        throw new Error(
          `compaction of ${new Date(chunk).toISOString().slice(0, 10)} not written: ${err?.type ?? ''} ${err?.reason ?? ''}`,
        );
      }
      pending = failed.map((f) => f.doc);
      await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
    }
  };
  const writer = () => {
    let batch: Entry[] = [];
    let bytes = 0;
    return {
      async add(e: Entry) {
        if (batch.length > 0 && bytes + e.bytes > BULK_BYTES) {
          await flush(batch, false);
          batch = [];
          bytes = 0;
        }
        batch.push(e);
        bytes += e.bytes;
      },
      done: (refresh: boolean) => flush(batch, refresh),
    };
  };
  const rest = writer();
  const heads: Entry[] = [];
  for (const [rule, a] of acc) {
    const merged: GroupBuckets[] = a.merger ? [...a.merger.result().values()] : [];
    const totals = new Map(merged.map((g) => [g, totalOf(g)]));
    const groups = merged.sort((x, y) => totals.get(y)! - totals.get(x)! || (x.key < y.key ? -1 : 1));
    const parts = encodeParts(groups, exactValues, partSize.cells, partSize.bytes);
    const summary: GroupSummary = { g: [], n: [], p: [], h: [] };
    let hours = 0;
    parts.forEach((part, i) => {
      for (const g of part.groups) {
        summary.g.push(g.values);
        summary.n.push(totals.get(g)!);
        summary.p.push(i);
        if (summary.h) {
          const rows = hourlyOf(g, chunk);
          hours += rows.length;
          if (hours > SUMMARY_HOURS) delete summary.h;
          else summary.h.push(rows);
        }
      }
    });
    for (const [part, { enc, bytes }] of parts.entries()) {
      const doc: PartialDoc = {
        level: 'compact',
        chunk,
        rule,
        // the events and the folded batches are the generation's: on its part 0 only
        events: part === 0 ? a.events : 0,
        cells: enc.c.length,
        bytes,
        gen: a.gen,
        part,
        ...(part === 0 ? { parts: parts.length, folded: [...a.folded], summary: { [rule]: summary } } : {}),
        written_at: at,
        body: { [rule]: enc },
      };
      const entry = { id: compactDocId(rule, chunk, a.gen, part), doc, bytes };
      if (part === 0) heads.push(entry);
      else await rest.add(entry);
    }
  }
  await rest.done(false);
  const first = writer();
  for (const h of heads) await first.add(h);
  await first.done(true);
  // every older generation of the rule versions compacted (complete or cut short), those left
  // behind their newest complete generation by an earlier crash, and the batches now held
  const superseded = [...compacted].flatMap(([rule, list]) => {
    const below = acc.get(rule)?.gen ?? newestGeneration(list)[0]?.gen ?? 0;
    return list.filter((d) => (d.gen ?? 0) < below).map((d) => d._id);
  });
  const remove = [...superseded, ...batchIds];
  for (let i = 0; i < remove.length; i += 1000) {
    const del = await es.bulk({
      operations: remove.slice(i, i + 1000).map((id) => ({ delete: { _index: index, _id: id } })),
    });
    if (del.errors) throw new Error('compaction: some superseded partial documents were not deleted');
  }
  return { batchDocs: batchIds.length, written };
}

/** Bytes and documents of the partials index (for /metrics and the bench). */
export async function partialsSize(es: Client, prefix: string): Promise<{ docs: number; bytes: number }> {
  const index = indexNames(prefix).partials;
  const s = await es.indices.stats({ index, metric: ['docs', 'store'] }).catch(() => undefined);
  const all = s?._all?.primaries;
  return { docs: all?.docs?.count ?? 0, bytes: all?.store?.size_in_bytes ?? 0 };
}
