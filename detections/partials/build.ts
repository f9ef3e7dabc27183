/**
 * The background build of a new rule version's partials (docs/partials.md, "New rule versions"):
 * for each stored day that some partial rule versions' partials do not cover, the day's stored
 * events are read once (point in time, in pages); per version, the events no batch folded for it
 * are folded with the ingest workers' own `PartialFolder`, and the cells are written as one
 * `batch`-level document with batch id `build:<rule@version>:<day>`, carrying the events it
 * folded. The coverage check (read.ts) then counts the day as covered and compaction folds it
 * like any batch. Newest days first, bounded per call, resumable: a day's document has one id,
 * so building a day again overwrites it (a built day found short twice with the same counts,
 * e.g. late events from a worker still on the old rule set, is built again).
 *
 * Which events a build folds. Every stored event names the batch that stored it
 * (`gatewatch.ingest.batch`); a batch's partial documents list the rule versions it folded
 * (`rules`), and a compacted generation lists the batches it holds (`folded`). The build folds
 * an event when its batch is known not to fold the version (or it has none: stored without
 * partials), and leaves it to its batch when the batch folds the version. An event whose batch
 * has written no partials yet (in flight, or killed before its partials and waiting for
 * redelivery) is undecided: the build looks again a few times, and if it is still undecided the
 * day is left for a later call. So a day where ingest started folding the version mid-day is
 * built for its other events only: the build and the batches count disjoint events. Late
 * events that arrive after the build land in batches of their own; where those do not fold the
 * version, the day falls short, reads raw, and is built again.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames, isIndexNotFound, searchAll } from '../../core/store/elasticsearch.ts';
import { wholeResultsOnly } from '../../core/store/whole-results.ts';
import type { RuleIR } from '../../parser/ir.ts';
import { DAY_MS, Run } from '../engine/es/run.ts';
import { ruleFields } from '../engine/in-process.ts';
import { type FoldedBatch, PartialFolder, type PartialRule } from './fold.ts';
import { coverage } from './read.ts';
import { batchDocId, ensurePartialsIndex, type PartialDoc, writeBatchPartials } from './store.ts';

/** The batch id of a built day: one per (rule version, day), so a rebuild overwrites it. */
export const buildBatchId = (key: string, chunk: number): string =>
  `build:${key}:${new Date(chunk).toISOString().slice(0, 10)}`;

/** Id of a rule version's build status document (level `build` in the partials index). */
export const buildStatusId = (key: string): string => batchDocId(`build-status:${key}`, 0);

/** Where a rule version's build stands, as the status document keeps it. */
export interface BuildStatus {
  rule: string;
  /** Days built, with the events each build folded. */
  built: Record<string, number>;
  /** Days still to build at the last pass (not covered, no build yet, or a build to redo). */
  todo: string[];
  /** Days waiting for batches whose partials are not written yet. */
  waiting: string[];
  /** Built days not covered whose build was compacted already: read raw until they age out. */
  stuck: string[];
  /** Built days not covered at the last pass, with their counts (`folded/stored`). */
  short?: Record<string, string>;
  /** Events folded per second by the last day built. */
  eventsPerSecond?: number;
  updated_at: string;
}

export interface BuildProgress {
  rule: string;
  daysBuilt: number;
  daysToBuild: number;
  events: number;
  waiting: number;
  stuck: number;
}

export function progressOf(s: BuildStatus): BuildProgress {
  const built = Object.keys(s.built);
  const open = new Set([...s.todo, ...s.waiting].filter((d) => !built.includes(d)));
  return {
    rule: s.rule,
    daysBuilt: built.length,
    daysToBuild: built.length + open.size,
    events: Object.values(s.built).reduce((a, b) => a + b, 0),
    waiting: s.waiting.length,
    stuck: s.stuck.length,
  };
}

export interface BuildOptions {
  /** The rule set (the versions the workers fold); disabled and non-partial rules are skipped. */
  rules: readonly RuleIR[];
  exactValues?: number;
  /** Days built per call, each for every version that needs it (default 4). */
  maxDays?: number;
  /** Events read per call: no further day starts past it (default 2,000,000). */
  maxEvents?: number;
  /** Events per page read (default 5000). */
  pageSize?: number;
  /** Looks again at undecided batches this many times, `recheckMs` apart (default 3 × 1 s). */
  rechecks?: number;
  recheckMs?: number;
  /** Events of undecided batches held while looking again; past it the day waits (default 100,000). */
  maxUndecided?: number;
  /** Refresh the partials index at the end (tests: what was built is searchable on return). */
  refresh?: boolean;
}

export interface BuiltDay {
  rule: string;
  day: string;
  /** Events folded into the build document. */
  events: number;
  /** Events read (those left to their batches included), once for all versions built with it. */
  read: number;
  /** Versions built from the same read of the day. */
  versions: number;
  /** Reading and folding (without the write). */
  foldMs: number;
  ms: number;
}

export interface BuildResult {
  built: BuiltDay[];
  /** (rule version, day) left for a later call because some of its batches are undecided. */
  waiting: { rule: string; day: string; undecided: number }[];
  progress: BuildProgress[];
}

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const chunkOfDay = (day: string) => Date.parse(`${day}T00:00:00Z`);

/** Build the next uncovered days of every partial rule version, newest first, within the bounds. */
export async function buildPartials(
  client: Client,
  prefix: string,
  options: BuildOptions,
): Promise<BuildResult> {
  // A shard that cannot answer fails the pass (retried at the next): a partial answer would
  // build a day short of events (caught by coverage, but read again for nothing).
  const es = wholeResultsOnly(client);
  const names = indexNames(prefix);
  const index = await ensurePartialsIndex(es, prefix);
  const folderAll = new PartialFolder(options.rules, { exactValues: options.exactValues ?? 256 });
  const result: BuildResult = { built: [], waiting: [], progress: [] };
  if (folderAll.rules.length === 0) return result;
  // the days holding events, and their span
  let storedDays: number[];
  try {
    const res = await es.search({
      index: names.eventsAlias,
      size: 0,
      aggs: {
        d: { date_histogram: { field: '@timestamp', fixed_interval: `${DAY_MS}ms`, min_doc_count: 1 } },
      },
    });
    const agg = res.aggregations?.d as estypes.AggregationsDateHistogramAggregate | undefined;
    storedDays = ((agg?.buckets ?? []) as { key: number }[]).map((b) => Number(b.key));
  } catch (err) {
    if (isIndexNotFound(err)) return result;
    throw err;
  }
  if (storedDays.length === 0) return result;
  const first = Math.min(...storedDays);
  const last = Math.max(...storedDays);
  const run = new Run(es, names.eventsAlias, {});
  const source = { index };
  const statuses = new Map<string, BuildStatus>();
  const work: { rule: PartialRule; chunk: number }[] = [];
  for (const rule of folderAll.rules) {
    const status = (await readStatus(es, index, rule.key)) ?? {
      rule: rule.key,
      built: {},
      todo: [],
      waiting: [],
      stuck: [],
      updated_at: new Date().toISOString(),
    };
    // Build documents not compacted yet: also those written by a call that stopped before its
    // status (a restart), so what is built is never built again nor left out of the progress.
    const docs = await buildDocs(es, index, rule.key);
    for (const [d, n] of docs) status.built[d] = n;
    // built days whose events are gone (retention) no longer count
    for (const d of Object.keys(status.built))
      if (!storedDays.includes(chunkOfDay(d))) delete status.built[d];
    const cov = await coverage(run, source, rule.key, { start: first, end: last + DAY_MS });
    const todo: string[] = [];
    const stuck: string[] = [];
    const short: Record<string, string> = {};
    for (const [chunk, c] of cov) {
      if (c.covered) continue;
      const day = dayOf(chunk);
      if (!(day in status.built)) {
        todo.push(day);
        continue;
      }
      // A built day no longer covered: a batch of an older worker after the build, a stalled
      // batch redelivered to a newer one, or only batches whose partials are a moment behind
      // their events (a day still receiving events). Built again once its counts held still
      // between two passes, while its document is still a batch document (same id, overwritten);
      // once compacted it cannot be replaced, and stays raw.
      if (!docs.has(day)) {
        stuck.push(day);
        continue;
      }
      const counts = `${c.folded}/${c.stored}`;
      if (status.short?.[day] === counts) todo.push(day);
      short[day] = counts;
    }
    status.short = short;
    status.todo = todo;
    status.stuck = stuck;
    status.waiting = status.waiting.filter((d) => todo.includes(d));
    statuses.set(rule.key, status);
    for (const day of todo) work.push({ rule, chunk: chunkOfDay(day) });
  }
  // newest days first (they matter most to scheduled runs); every version needing a day is
  // built from one read of it
  const byDay = new Map<number, PartialRule[]>();
  for (const w of work) byDay.set(w.chunk, [...(byDay.get(w.chunk) ?? []), w.rule]);
  const maxDays = options.maxDays ?? 4;
  const maxEvents = options.maxEvents ?? 2_000_000;
  let read = 0;
  let days = 0;
  for (const chunk of [...byDay.keys()].sort((a, b) => b - a)) {
    if (days >= maxDays || read >= maxEvents) break;
    const rules = byDay.get(chunk)!.sort((a, b) => a.key.localeCompare(b.key));
    const day = dayOf(chunk);
    const out = await buildDay(es, prefix, index, names.eventsAlias, rules, chunk, options);
    days++;
    read += out.read;
    for (const rule of rules) {
      const status = statuses.get(rule.key)!;
      if ('undecided' in out) {
        if (!status.waiting.includes(day)) status.waiting.push(day);
        result.waiting.push({ rule: rule.key, day, undecided: out.undecided });
      } else {
        const events = out.built.find((b) => b.rule === rule.key)!.events;
        status.built[day] = events;
        status.todo = status.todo.filter((d) => d !== day);
        status.waiting = status.waiting.filter((d) => d !== day);
        if (out.foldMs > 0) status.eventsPerSecond = Math.round((out.read / out.foldMs) * 1000);
        result.built.push({
          rule: rule.key,
          day,
          events,
          read: out.read,
          versions: rules.length,
          foldMs: out.foldMs,
          ms: out.ms,
        });
      }
      await writeStatus(es, index, status);
    }
  }
  for (const status of statuses.values()) {
    await writeStatus(es, index, status);
    result.progress.push(progressOf(status));
  }
  // versions no longer in the rule set are no longer built: their progress goes
  // (a search and deletes by id: delete-by-query needs a module a minimal node may lack)
  const keys = new Set(folderAll.keys);
  const statusDocs = await es.search<PartialDoc>({
    index,
    size: 1000,
    query: { term: { level: 'build' } },
    _source: ['rule'],
  });
  const gone = statusDocs.hits.hits.filter((h) => !keys.has(h._source?.rule ?? ''));
  if (gone.length > 0)
    await es.bulk({ operations: gone.map((h) => ({ delete: { _index: index, _id: h._id! } })) });
  if (options.refresh) await es.indices.refresh({ index });
  return result;
}

/** A rule version's build documents not compacted yet: day → events folded. */
async function buildDocs(es: Client, index: string, key: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const h of searchAll<PartialDoc>(es, {
    index,
    query: { bool: { filter: [{ term: { level: 'batch' } }, { prefix: { batch: `build:${key}:` } }] } },
    source: ['chunk', 'events'],
    pageSize: 1000,
  }))
    out.set(dayOf(h._source!.chunk), h._source!.events);
  return out;
}

/** Per batch of a chunk: the rule versions it folded (from its documents or compacted generations). */
async function batchesOf(es: Client, index: string, chunk: number): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  const add = (batch: string, rule: string) => {
    let s = out.get(batch);
    if (!s) {
      s = new Set();
      out.set(batch, s);
    }
    s.add(rule);
  };
  for await (const h of searchAll<PartialDoc>(es, {
    index,
    query: {
      bool: { filter: [{ term: { chunk } }, { terms: { level: ['batch', 'compact'] } }] },
    },
    source: ['level', 'batch', 'rules', 'rule', 'folded'],
    pageSize: 1000,
  })) {
    const d = h._source!;
    if (d.level === 'batch') {
      if (d.batch?.startsWith('build:')) continue;
      const s = out.get(d.batch!) ?? new Set<string>();
      out.set(d.batch!, s);
      for (const r of d.rules ?? []) s.add(r);
    } else for (const b of d.folded ?? []) add(b, d.rule!);
  }
  return out;
}

type DayOutcome =
  | { built: { rule: string; events: number }[]; read: number; foldMs: number; ms: number }
  | { undecided: number; read: number };

/**
 * One day for every version in `rules` that needs it, in one read of the day's events: each
 * version folds the events no batch folded for it (its own `PartialFolder`, so its document is
 * what a build of it alone writes).
 */
async function buildDay(
  es: Client,
  prefix: string,
  index: string,
  eventsIndex: string,
  rules: PartialRule[],
  chunk: number,
  options: BuildOptions,
): Promise<DayOutcome> {
  const t0 = performance.now();
  const exactValues = options.exactValues ?? 256;
  const folds = rules.map((rule) => ({
    rule,
    fold: new PartialFolder([rule.rule], { exactValues }).begin(),
    page: [] as GatewatchEvent[],
  }));
  const flush = (f: (typeof folds)[number]) => {
    f.fold.add(f.page);
    f.page = [];
  };
  const fields = [...new Set([...rules.flatMap((r) => ruleFields(r.rule)), 'gatewatch.ingest.batch'])];
  const it = searchAll<GatewatchEvent>(es, {
    index: eventsIndex,
    query: { range: { '@timestamp': { gte: chunk, lt: chunk + DAY_MS, format: 'epoch_millis' } } },
    source: fields,
    pageSize: options.pageSize ?? 5000,
  });
  // The point in time opens with the first page: batches are looked up after it, so every
  // event it holds whose batch had written its partials by then is decided.
  const firstHit = await it.next();
  let batches = await batchesOf(es, index, chunk);
  const undecided = new Map<string, GatewatchEvent[]>();
  let held = 0;
  let read = 0;
  /** Fold `e` into every version its batch (`folded`: the versions it folded) did not fold. */
  const give = (e: GatewatchEvent, folded: Set<string> | undefined) => {
    for (const f of folds) {
      if (folded?.has(f.rule.key)) continue; // its batch counts it
      f.page.push(e);
      if (f.page.length >= 5000) flush(f);
    }
  };
  const take = (e: GatewatchEvent) => {
    read++;
    const owner = e.gatewatch?.ingest?.batch;
    if (owner === undefined) return give(e, undefined);
    const folded = batches.get(owner);
    if (folded !== undefined) return give(e, folded);
    const list = undecided.get(owner) ?? [];
    list.push(e);
    undecided.set(owner, list);
    held++;
  };
  if (!firstHit.done) {
    take(firstHit.value._source!);
    for await (const h of it) {
      take(h._source!);
      if (held > (options.maxUndecided ?? 100_000)) return { undecided: held, read };
    }
  }
  // Batches whose events are stored but whose partials were not written yet: look again.
  for (let i = 0; undecided.size > 0 && i < (options.rechecks ?? 3); i++) {
    await new Promise((r) => setTimeout(r, options.recheckMs ?? 1000));
    batches = await batchesOf(es, index, chunk);
    for (const [owner, list] of undecided) {
      const folded = batches.get(owner);
      if (folded === undefined) continue;
      undecided.delete(owner);
      for (const e of list) give(e, folded);
    }
  }
  if (undecided.size > 0)
    return { undecided: [...undecided.values()].reduce((a, l) => a + l.length, 0), read };
  const built: { rule: string; events: number }[] = [];
  const docs: { key: string; doc: FoldedBatch }[] = [];
  for (const f of folds) {
    flush(f);
    const finished = f.fold.finish();
    const cells = finished.chunks.get(chunk);
    // The events the folder placed in the day (all of them: the day was read by its time
    // range); one it did not would be left out of `events`, so the day reads raw rather than
    // wrong. A day whose events were all left to their batches still gets its (empty)
    // document: the build is recorded.
    const events = cells?.events ?? 0;
    docs.push({
      key: f.rule.key,
      // a first_seen version's keys are upserted before its document (writeBatchPartials), so
      // the day's coverage also proves its keys are in the key index
      doc: {
        rules: [f.rule.key],
        chunks: new Map([[chunk, { events, body: cells?.body ?? {} }]]),
        ...(finished.keys ? { keys: finished.keys } : {}),
      },
    });
    built.push({ rule: f.rule.key, events });
  }
  const foldMs = performance.now() - t0;
  for (const d of docs) await writeBatchPartials(es, prefix, buildBatchId(d.key, chunk), d.doc);
  return { built, read, foldMs, ms: performance.now() - t0 };
}

async function readStatus(es: Client, index: string, key: string): Promise<BuildStatus | undefined> {
  try {
    const res = await es.get<PartialDoc>({ index, id: buildStatusId(key) });
    return res._source?.body as unknown as BuildStatus | undefined;
  } catch (err) {
    if ((err as { meta?: { statusCode?: number } }).meta?.statusCode === 404) return undefined;
    throw err;
  }
}

async function writeStatus(es: Client, index: string, status: BuildStatus): Promise<void> {
  status.updated_at = new Date().toISOString();
  const p = progressOf(status);
  await es.index({
    index,
    id: buildStatusId(status.rule),
    // no `chunk`: the status outlives any one day (retention deletes by chunk)
    document: {
      level: 'build',
      rule: status.rule,
      events: p.events,
      written_at: status.updated_at,
      body: status as unknown as Record<string, unknown>,
    } satisfies Omit<PartialDoc, 'chunk'>,
  });
}

/** Every rule version's build progress (for /metrics and run notes). */
export async function buildProgress(es: Client, index: string, key?: string): Promise<BuildProgress[]> {
  if (key !== undefined) {
    const s = await readStatus(es, index, key).catch(() => undefined);
    return s ? [progressOf(s)] : [];
  }
  const res = await es.search<PartialDoc>({
    index,
    size: 1000,
    query: { term: { level: 'build' } },
    _source: ['body'],
  });
  return res.hits.hits.map((h) => progressOf(h._source!.body as unknown as BuildStatus));
}
