/**
 * Reading a rule version's partials for one run (docs/partials.md, "Merge at read time"):
 * coverage per UTC day (partials' owned events vs the events stored that day), the cells of the
 * covered days merged, the other days read from the raw events, and windows that hold an inexact
 * cell and may fire re-read raw for their groups. Returns per-group buckets as the raw path's
 * `bucketize` does, so windows, `having` and baselines are computed by the same code.
 */
import type { estypes } from '@elastic/elasticsearch';
import type { HavingExpr } from '../../parser/ir.ts';
import {
  type AggPlan,
  combine,
  computeMetrics,
  type GroupBuckets,
  havingMaybe,
} from '../engine/aggregate.ts';
import { bucketize } from '../engine/es/bucketize.ts';
import { coarsen, DAY_MS, MAX_RANGES, mergeSpans, type Query, type Run } from '../engine/es/run.ts';
import type { TimeRange } from '../engine/types.ts';
import { groupKeyOf } from '../engine/values.ts';
import { type BuildProgress, buildProgress } from './build.ts';
import { CellMerger, type EncodedCells, inexact, type ValuesNeeded } from './cells.ts';
import type { GroupSummary } from './compact.ts';
import { compactDocId, newestGeneration, type PartialDoc, partialsSort } from './store.ts';

/** Where a run finds partials. */
export interface PartialsSource {
  /** The partials index (`<prefix>-partials`). */
  index: string;
  /** Distinct values kept exactly per merged cell (default 256, as ingest). */
  exactValues?: number;
}

/** What a run read from partials, for its record. */
export interface PartialsUse {
  /** Day chunks read from partials. */
  chunks: number;
  /** Day chunks read from the raw events, with why. */
  raw: { chunk: number; folded: number; stored: number }[];
  /** Groups whose windows were re-read raw because a cell held values only as sketches. */
  reread: number;
  /** When days were read raw: where the background build of this version stands. */
  build?: BuildProgress;
}

export interface PartialsRead {
  groups: GroupBuckets[];
  use: PartialsUse;
}

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** One line for the run record: what came from the raw events and why. */
export function describeUse(use: PartialsUse): string | undefined {
  const parts: string[] = [];
  if (use.raw.length > 0)
    parts.push(
      `read raw for ${use.raw
        .map(
          (r) =>
            `${dayOf(r.chunk)} (${r.folded.toLocaleString('en')} of ${r.stored.toLocaleString('en')} events in partials)`,
        )
        .join(', ')}`,
    );
  const b = use.build;
  if (use.raw.length > 0 && b && b.daysBuilt < b.daysToBuild)
    parts.push(
      `partials build in progress, ${b.daysBuilt} of ${b.daysToBuild} days built${b.waiting > 0 ? ` (${b.waiting} waiting for batches in flight)` : ''}`,
    );
  if (use.raw.length > 0 && b && b.stuck > 0)
    parts.push(
      `${b.stuck} built day(s) received events of an older rule set after their build was compacted`,
    );
  if (use.reread > 0) parts.push(`${use.reread} group(s) re-read raw for exact distinct values`);
  return parts.length > 0 ? `partials: ${use.chunks} day(s) from partials; ${parts.join('; ')}` : undefined;
}

/** One day chunk's coverage for a rule version: the events its partials hold against those stored. */
export interface ChunkCoverage {
  covered: boolean;
  folded: number;
  stored: number;
  /** Batch and compacted documents side by side, or several generations. */
  mixed: boolean;
  /** One compacted generation (when not mixed): its part 0 summarises its groups. */
  compacted: boolean;
}

interface ChunkCount {
  batches: number;
  batchEvents: number;
  compacts: number;
  /** Distinct generations among the compacted documents (one, unless a compaction was cut short). */
  gens: number;
  compactEvents: number;
}

/**
 * Per day chunk of `read`: whether this rule version's partials hold every stored event of it
 * (exactly once), with the two counts. Also the background build's test of what to build.
 */
export async function coverage(
  run: Run,
  source: PartialsSource,
  key: string,
  read: TimeRange,
): Promise<Map<number, ChunkCoverage>> {
  const first = Math.floor(read.start / DAY_MS) * DAY_MS;
  const last = Math.floor((read.end - 1) / DAY_MS) * DAY_MS;
  const days = (last - first) / DAY_MS + 1;
  const [stored, parts] = await Promise.all([
    run.es(() =>
      run.client.search({
        index: run.index,
        size: 0,
        query: { range: { '@timestamp': { gte: first, lt: last + DAY_MS, format: 'epoch_millis' } } },
        aggs: {
          d: { date_histogram: { field: '@timestamp', fixed_interval: `${DAY_MS}ms`, min_doc_count: 1 } },
        },
      }),
    ),
    run.es(() =>
      run.client.search({
        index: source.index,
        size: 0,
        query: partialsQuery(key, first, last),
        aggs: {
          c: {
            terms: { field: 'chunk', size: days + 1 },
            aggs: {
              b: { filter: { term: { level: 'batch' } }, aggs: { e: { sum: { field: 'events' } } } },
              k: {
                filter: { term: { level: 'compact' } },
                aggs: { e: { sum: { field: 'events' } }, n: { cardinality: { field: 'gen' } } },
              },
            },
          },
        },
      }),
    ),
  ]);
  const storedPer = new Map<number, number>();
  const perDay = stored.aggregations?.d as estypes.AggregationsDateHistogramAggregate | undefined;
  for (const b of (perDay?.buckets ?? []) as {
    key: number;
    doc_count: number;
  }[])
    storedPer.set(Number(b.key), b.doc_count);
  const counts = new Map<number, ChunkCount>();
  const perChunk = parts.aggregations?.c as estypes.AggregationsLongTermsAggregate | undefined;
  for (const b of (perChunk?.buckets ?? []) as (Record<string, unknown> & { key: number })[]) {
    const bb = b.b as { doc_count: number; e: { value: number } };
    const kk = b.k as { doc_count: number; e: { value: number }; n: { value: number } };
    counts.set(Number(b.key), {
      batches: bb.doc_count,
      batchEvents: bb.e.value,
      compacts: kk.doc_count,
      gens: kk.n.value,
      compactEvents: kk.e.value,
    });
  }
  const out = new Map<number, ChunkCoverage>();
  for (let chunk = first; chunk <= last; chunk += DAY_MS) {
    const s = storedPer.get(chunk) ?? 0;
    const c = counts.get(chunk);
    if (!c) {
      out.set(chunk, { covered: s === 0, folded: 0, stored: s, mixed: false, compacted: false });
      continue;
    }
    // Compacted and batch documents side by side (late batches, or a compaction interrupted
    // before its deletes), or several generations (one possibly cut short while being written):
    // the newest complete generation and the batches it does not hold count.
    const mixed = c.gens > 1 || (c.compacts > 0 && c.batches > 0);
    const folded = mixed ? await mixedCount(run, source, key, chunk) : c.batchEvents + c.compactEvents;
    out.set(chunk, { covered: folded === s, folded, stored: s, mixed, compacted: c.compacts > 0 });
  }
  return out;
}

function partialsQuery(key: string, firstChunk: number, lastChunk: number, chunks?: number[]): Query {
  return {
    bool: {
      filter: [
        chunks
          ? { terms: { chunk: chunks } }
          : { range: { chunk: { gte: firstChunk, lte: lastChunk, format: 'epoch_millis' } } },
      ],
      should: [
        { bool: { filter: [{ term: { level: 'batch' } }, { term: { rules: key } }] } },
        { bool: { filter: [{ term: { level: 'compact' } }, { term: { rule: key } }] } },
      ],
      minimum_should_match: 1,
    },
  };
}

/** The documents of a chunk that count: the newest compaction and the batches it does not hold. */
async function liveDocs(
  run: Run,
  source: PartialsSource,
  key: string,
  chunk: number,
  withBody: boolean,
): Promise<PartialDoc[]> {
  const docs: PartialDoc[] = [];
  const res = searchAllDocs(run, source, partialsQuery(key, 0, 0, [chunk]), [
    'level',
    'chunk',
    'batch',
    'gen',
    'part',
    'parts',
    'events',
    'folded',
    ...(withBody ? [`body.${key}`] : []),
  ]);
  for await (const d of res) docs.push(d);
  const newest = new Set(newestGeneration(docs.filter((d) => d.level === 'compact')));
  const folded = new Set([...newest].flatMap((d) => d.folded ?? []));
  return docs.filter((d) => (d.level === 'compact' ? newest.has(d) : !folded.has(d.batch ?? '')));
}

async function mixedCount(run: Run, source: PartialsSource, key: string, chunk: number): Promise<number> {
  const docs = await liveDocs(run, source, key, chunk, false);
  return docs.reduce((a, d) => a + d.events, 0);
}

async function* searchAllDocs(
  run: Run,
  source: PartialsSource,
  query: Query,
  fields: string[],
): AsyncGenerator<PartialDoc> {
  let after: estypes.SortResults | undefined;
  for (;;) {
    const res = await run.es(() =>
      run.client.search<PartialDoc>({
        index: source.index,
        size: 500,
        query,
        _source: fields,
        // unique: (chunk, batch) for batch documents, (chunk, rule, gen, part) for compacted ones
        sort: partialsSort,
        ...(after ? { search_after: after } : {}),
        track_total_hits: false,
      }),
    );
    const hits = res.hits.hits;
    for (const h of hits) yield h._source!;
    if (hits.length < 500) return;
    after = hits[hits.length - 1]!.sort;
  }
}

/** Lower bounds `having` puts on a window's counts: [slot (0: events, i + 1: where i), least]. */
export interface CountFloors {
  floors: [slot: number, least: number][];
  windowMs: number;
}

const HOUR_MS = 3_600_000;

/**
 * Coverage alone, for readers that take their data elsewhere (the first-seen key index): the
 * days of `read` and whether every one is covered for `key`, as `PartialsUse` (covered days
 * counted in `chunks`, the others in `raw`).
 */
export async function coveredDays(
  run: Run,
  source: PartialsSource,
  key: string,
  read: TimeRange,
): Promise<{ all: boolean; use: PartialsUse }> {
  const cov = await coverage(run, source, key, read);
  const raw = [...cov]
    .filter(([, c]) => !c.covered)
    .map(([chunk, c]) => ({ chunk, folded: c.folded, stored: c.stored }));
  return { all: raw.length === 0, use: { chunks: cov.size - raw.length, raw, reread: 0 } };
}

/**
 * Compacted days, read by the groups that can fire: part 0 of each day's generation lists every
 * group with the part holding its cells and its events and where-counts per hour (compact.ts
 * `GroupSummary`). A window spans at most ⌈W / 1 h⌉ + 1 consecutive hours, so a group's cells can
 * only matter where some run of that many hours holds at least every floor (`count() >= 30`,
 * `count(where) >= 25`); hours of a day in the read without a summary (not compacted, read raw,
 * mixed) count as unbounded, hours outside the read as empty. Only the parts holding a group
 * on a day such a run touches are fetched; the other groups' cells of that day lie in windows
 * that cannot fire. Without hourly figures (a day past SUMMARY_HOURS) the same holds with day
 * totals and the events floor. Returns the days it read; the others (generations compacted
 * before summaries existed) are read whole by the caller.
 */
async function readPrunedParts(
  run: Run,
  source: PartialsSource,
  key: string,
  chunks: number[],
  cov: Map<number, ChunkCoverage>,
  prune: CountFloors,
  merger: CellMerger,
): Promise<Set<number>> {
  const heads = new Map<number, { gen: number; summary: GroupSummary }>();
  for (let i = 0; i < chunks.length; i += 64) {
    const query: Query = {
      bool: {
        filter: [
          { terms: { chunk: chunks.slice(i, i + 64) } },
          { term: { level: 'compact' } },
          { term: { rule: key } },
          { term: { part: 0 } },
        ],
      },
    };
    for await (const d of searchAllDocs(run, source, query, ['chunk', 'gen', `summary.${key}`])) {
      const summary = d.summary?.[key] as GroupSummary | undefined;
      if (summary && d.gen !== undefined) heads.set(Number(d.chunk), { gen: d.gen, summary });
    }
  }
  // a day in the read without a summary but with events bounds nothing
  const unbounded = (chunk: number): boolean => {
    if (heads.has(chunk)) return false;
    const c = cov.get(chunk);
    return c !== undefined && c.stored > 0;
  };
  const wanted = new Map<number, Set<string>>([...heads.keys()].map((c) => [c, new Set<string>()]));
  // per group, the hours a window that may fire touches (hourly summaries only)
  let wantedHours: Map<string, Set<number>> | undefined;
  const floor0 = Math.max(0, ...prune.floors.map(([, least]) => least));
  if ([...heads.values()].every((h) => h.summary.h)) {
    // per group: absolute hour → [events, where-counts…]
    const hourly = new Map<string, Map<number, number[]>>();
    for (const [chunk, h] of heads)
      h.summary.g.forEach((values, i) => {
        const k = groupKeyOf(values);
        let m = hourly.get(k);
        if (!m) {
          m = new Map();
          hourly.set(k, m);
        }
        for (const row of h.summary.h![i]!) m.set(chunk / HOUR_MS + row[0]!, row.slice(1));
      });
    const span = Math.ceil(prune.windowMs / HOUR_MS) + 1;
    const dayOfHour = (hour: number) => Math.floor((hour * HOUR_MS) / DAY_MS) * DAY_MS;
    wantedHours = new Map();
    for (const [k, hours] of hourly) {
      const mine = new Set<number>();
      wantedHours.set(k, mine);
      const tried = new Set<number>();
      for (const present of hours.keys())
        for (let s = present - span + 1; s <= present; s++) {
          if (tried.has(s)) continue;
          tried.add(s);
          let open = false;
          const sums: number[] = [];
          for (let x = s; x < s + span; x++) {
            if (unbounded(dayOfHour(x))) open = true;
            const row = hours.get(x);
            if (row) for (let i = 0; i < row.length; i++) sums[i] = (sums[i] ?? 0) + row[i]!;
          }
          if (!open && !prune.floors.every(([slot, least]) => (sums[slot] ?? 0) >= least)) continue;
          for (let x = s; x < s + span; x++) {
            wanted.get(dayOfHour(x))?.add(k);
            mine.add(x);
          }
        }
    }
  } else {
    // day totals: a window lies in one day or straddles two
    const totals = new Map<number, Map<string, number>>();
    for (const [chunk, h] of heads)
      totals.set(chunk, new Map(h.summary.g.map((values, i) => [groupKeyOf(values), h.summary.n[i]!])));
    const neighbour = (chunk: number, group: string): number =>
      unbounded(chunk) ? Number.POSITIVE_INFINITY : (totals.get(chunk)?.get(group) ?? 0);
    for (const [chunk, mine] of totals)
      for (const [k, n] of mine)
        if (
          n >= floor0 ||
          n + neighbour(chunk - DAY_MS, k) >= floor0 ||
          n + neighbour(chunk + DAY_MS, k) >= floor0
        )
          wanted.get(chunk)!.add(k);
  }
  const hours = wantedHours;
  const keep = hours
    ? (k: string, t: number) => hours.get(k)?.has(Math.floor(t / HOUR_MS)) === true
    : (k: string, t: number) => wanted.get(Math.floor(t / DAY_MS) * DAY_MS)?.has(k) === true;
  const ids: string[] = [];
  for (const [chunk, h] of heads) {
    const groups = wanted.get(chunk)!;
    const parts = new Set<number>();
    h.summary.g.forEach((values, i) => {
      if (groups.has(groupKeyOf(values))) parts.add(h.summary.p[i]!);
    });
    for (const part of parts) ids.push(compactDocId(key, chunk, h.gen, part));
  }
  for (let i = 0; i < ids.length; i += 32) {
    const res = await run.es(() =>
      run.client.mget<PartialDoc>({
        index: source.index,
        ids: ids.slice(i, i + 32),
        _source_includes: [`body.${key}`],
      }),
    );
    for (const d of res.docs) {
      if (!('found' in d) || !d.found)
        throw new Error(`partials: part ${d._id} of a complete generation is missing`);
      const enc = d._source?.body?.[key] as EncodedCells | undefined;
      // A part holds other groups' cells, and a wanted group's cells in hours no window that
      // may fire touches: leaving them out only lowers counts of windows below their floors.
      if (enc) merger.add(enc, keep);
    }
  }
  return new Set(heads.keys());
}

export interface CellsRequest {
  key: string;
  plan: AggPlan;
  groupBy: string[];
  bucketMs: number;
  /** The rule's events (its compiled filter): for the raw reads. */
  query: Query;
  /** What the run reads (threshold: the range; baseline: history + range). */
  read: TimeRange;
  /** Keep cells straddling `read`'s bounds (first seen decides them itself); default: whole buckets only. */
  straddling?: boolean;
  /** Only when every day is covered (else undefined: the caller reads raw). */
  requireAll?: boolean;
  /** Which buckets need their values merged (default: all); see `ValuesNeeded`. */
  needed?: ValuesNeeded;
  /** What a window must hold to fire: compacted days then fetch only the groups that can (see `readPrunedParts`). */
  prune?: CountFloors;
}

/**
 * The cells of `read`: partials where they cover a day, raw events elsewhere. Undefined when no
 * day of `read` is covered (the caller then takes the raw path, with its pruning).
 */
export async function readCells(
  run: Run,
  source: PartialsSource,
  req: CellsRequest,
): Promise<PartialsRead | undefined> {
  const cov = await coverage(run, source, req.key, req.read);
  const covered = [...cov].filter(([, c]) => c.covered).map(([chunk]) => chunk);
  if (covered.length === 0 || (req.requireAll && covered.length < cov.size)) return undefined;
  const within = req.straddling
    ? {
        start: Math.floor(req.read.start / req.bucketMs) * req.bucketMs,
        end: Math.ceil(req.read.end / req.bucketMs) * req.bucketMs,
      }
    : req.read;
  const merger = new CellMerger(req.plan, req.bucketMs, source.exactValues ?? 256, within);
  let plain = covered.filter((c) => !cov.get(c)!.mixed);
  const mixed = covered.filter((c) => cov.get(c)!.mixed);
  if (req.prune && req.prune.floors.length > 0 && req.prune.windowMs <= DAY_MS) {
    const compacted = plain.filter((c) => cov.get(c)!.compacted);
    const fetched = await readPrunedParts(run, source, req.key, compacted, cov, req.prune, merger);
    plain = plain.filter((c) => !fetched.has(c));
  }
  for (let i = 0; i < plain.length; i += 16) {
    const chunks = plain.slice(i, i + 16);
    for await (const d of searchAllDocs(run, source, partialsQuery(req.key, 0, 0, chunks), [
      'chunk',
      `body.${req.key}`,
    ])) {
      const enc = d.body?.[req.key] as EncodedCells | undefined;
      if (enc) merger.add(enc);
    }
  }
  for (const chunk of mixed)
    for (const d of await liveDocs(run, source, req.key, chunk, true)) {
      const enc = d.body?.[req.key] as EncodedCells | undefined;
      if (enc) merger.add(enc);
    }
  run.cells += merger.cells;
  // Days the partials do not cover: their cells from the raw events (buckets never straddle days).
  const rawDays = [...cov].filter(([, c]) => !c.covered).map(([chunk]) => chunk);
  const spans = mergeSpans(rawDays.map((d) => ({ start: d, end: d + DAY_MS })));
  for (const span of spans) {
    const part = { start: Math.max(span.start, req.read.start), end: Math.min(span.end, req.read.end) };
    if (part.start >= part.end) continue;
    for (const g of await bucketize(run, req.plan, req.query, req.groupBy, req.bucketMs, part))
      merger.addGroup(g);
  }
  // Values last, and only where a window may need them: merging value maps is most of the work.
  const groups = merger.result(req.needed);
  const build =
    rawDays.length > 0
      ? (await run.es(() => buildProgress(run.client, source.index, req.key)))[0]
      : undefined;
  return {
    groups: [...groups.values()],
    use: {
      ...(build ? { build } : {}),
      chunks: covered.length,
      raw: rawDays.map((chunk) => ({
        chunk,
        folded: cov.get(chunk)!.folded,
        stored: cov.get(chunk)!.stored,
      })),
      reread: 0,
    },
  };
}

/**
 * Windows that hold a cell with sketched values and whose `having` may hold whatever those
 * values are: their groups are re-read raw over those windows, so incidents carry exact values.
 * `windowsOf(bucket)` gives the windows (starts) a bucket belongs to that the run evaluates.
 */
export async function rereadInexact(
  run: Run,
  req: CellsRequest,
  read: PartialsRead,
  having: HavingExpr | undefined,
  windowMs: number,
  windowStarts: (bucket: number) => number[],
): Promise<void> {
  const spansOf = new Map<string, TimeRange[]>();
  const byKey = new Map(read.groups.map((g) => [g.key, g]));
  for (const g of read.groups) {
    const starts = new Set<number>();
    for (const [t, p] of g.buckets) if (inexact(p)) for (const s of windowStarts(t)) starts.add(s);
    for (const s of starts) {
      const parts = [];
      for (let t = s; t < s + windowMs; t += req.bucketMs) {
        const p = g.buckets.get(t);
        if (p) parts.push(p);
      }
      // a window holding a cell whose values were left unmerged cannot fire (ValuesNeeded)
      if (parts.length === 0 || parts.some((p) => p.deferred)) continue;
      const m = computeMetrics(req.plan, combine(req.plan, parts, 0));
      const known: Record<string, number | null> = {};
      for (const [k, v] of Object.entries(m.values)) if (!m.approximate.includes(k)) known[k] = v;
      if (having && havingMaybe(having, known) === false) continue;
      let spans = spansOf.get(g.key);
      if (!spans) {
        spans = [];
        spansOf.set(g.key, spans);
      }
      spans.push({ start: s, end: s + windowMs });
    }
  }
  if (spansOf.size === 0) return;
  read.use.reread = spansOf.size;
  const all = mergeSpans([...spansOf.values()].flat());
  const first = req.groupBy[0];
  const values =
    first === undefined ? [] : [...new Set([...spansOf.keys()].map((k) => byKey.get(k)!.values[0]!))];
  const fresh =
    first === undefined
      ? (
          await Promise.all(
            all.map((span) => bucketize(run, req.plan, req.query, req.groupBy, req.bucketMs, span)),
          )
        ).flat()
      : await bucketize(run, req.plan, req.query, req.groupBy, req.bucketMs, req.read, {
          values: values as estypes.FieldValue[],
          ranges: coarsen(all, MAX_RANGES),
        });
  for (const g of fresh) {
    const spans = spansOf.get(g.key);
    const into = byKey.get(g.key);
    if (!spans || !into) continue;
    const merged = mergeSpans(spans);
    for (const t of [...into.buckets.keys()])
      if (merged.some((s) => s.start <= t && t < s.end)) into.buckets.delete(t);
    for (const [t, p] of g.buckets) if (merged.some((s) => s.start <= t && t < s.end)) into.buckets.set(t, p);
  }
}
