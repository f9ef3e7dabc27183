/**
 * The first-seen key index (docs/partials.md "First seen"): one document of level `key` in the
 * partials index per (first_seen rule version, key tuple) with the key's earliest event, its
 * latest hour and, per UTC hour it had events in, that hour's earliest event time. Ingest upserts it as it
 * stores a batch (before the batch's partials document, so the day coverage of the partials
 * proves the index holds the day's keys); a run reads only the keys active since its start.
 *
 * Every upsert is a min / max / union, so a redelivered batch or a resent record changes
 * nothing, in any order.
 */
import { createHash } from 'node:crypto';
import type { Client, estypes } from '@elastic/elasticsearch';
import type { GroupBuckets } from '../engine/aggregate.ts';
import type { Query, Run } from '../engine/es/run.ts';
import { groupKeyOf } from '../engine/values.ts';
import { chunkOf } from './cells.ts';

export const HOUR_MS = 3_600_000;

/**
 * The name batch documents list a first_seen rule version under (`rules`) once its keys are in
 * the key index: the coverage check then counts only batches whose keys were upserted (a batch
 * folded by code that kept hour cells instead does not count).
 */
export function keysCoverageKey(ruleKey: string): string {
  return `${ruleKey}#keys`;
}

/**
 * The fields of key documents (level `key`) in the partials index's mapping. Key documents live
 * beside the batch documents in that one-shard index so that a refresh which shows a batch
 * document also shows the keys upserted before it: the day coverage then proves the keys.
 */
export const firstSeenKeyFields = {
  /** The key tuple (`by` + `values`) as the engine's group key: unique per rule, the paging order. */
  key: { type: 'keyword' },
  /** The `by` part of the key (for `ignore new groups`: the group's other keys). */
  group: { type: 'keyword' },
  /** The key tuple as JSON (read back, not searched). */
  values: { type: 'keyword', index: false, doc_values: false },
  /** The key's earliest event time. */
  first: { type: 'date', format: 'epoch_millis' },
  /** The start of the latest UTC hour the key had events in (an hour, so it changes once an hour). */
  last: { type: 'date', format: 'epoch_millis' },
  /** Epoch hour start (ms, as a string) → the earliest event time in that hour. */
  hours: { type: 'object', enabled: false },
} as const;

/** One key's contribution of one batch. */
export interface KeyUpsert {
  rule: string;
  key: string;
  group: string;
  values: (string | number | boolean)[];
  first: number;
  /** Start of the latest hour. */
  last: number;
  hours: Record<string, number>;
}

/** The key upserts of one rule's folded hour cells (group = key tuple, bucket = hour). */
export function keyUpserts(rule: string, groupFields: number, groups: Iterable<GroupBuckets>): KeyUpsert[] {
  const out: KeyUpsert[] = [];
  for (const g of groups) {
    const hours: Record<string, number> = {};
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const [t, p] of g.buckets) {
      if (p.count === 0) continue;
      hours[String(t)] = p.firstTs;
      first = Math.min(first, p.firstTs);
      last = Math.max(last, t);
    }
    if (last === Number.NEGATIVE_INFINITY) continue;
    out.push({
      rule,
      key: g.key,
      group: groupKeyOf(g.values.slice(0, groupFields)),
      values: g.values,
      first,
      last,
      hours,
    });
  }
  return out;
}

export function keyDocId(rule: string, key: string): string {
  return createHash('sha256').update(`${rule}\u0000${key}`).digest('hex').slice(0, 32);
}

/** A key document (level `key` in the partials index). */
export interface KeyDoc {
  level: 'key';
  /** The day of `last`: the lifecycle deletes partials by `chunk`, so a key goes with its last events. */
  chunk: number;
  rule: string;
  key: string;
  group: string;
  values: string;
  first: number;
  last: number;
  hours: Record<string, number>;
}

/**
 * `doc` with `u` folded in: min first, max last hour, per hour the min, union of hours; hours
 * that end more than `keepMs` before the end of the key's latest hour are dropped. The cut is
 * relative to `last`, which only grows, so the result does not depend on the order in which
 * batches arrive. Undefined when nothing changes: a redelivered batch, a resent record, and any
 * batch whose events of a key fall in hours the key already has, after that hour's earliest
 * event (so an active key is written about once an hour, not once a batch).
 */
export function mergeKey(doc: KeyDoc | undefined, u: KeyUpsert, keepMs?: number): KeyDoc | undefined {
  const out: KeyDoc = doc
    ? { ...doc, hours: { ...doc.hours } }
    : {
        level: 'key',
        chunk: 0,
        rule: u.rule,
        key: u.key,
        group: u.group,
        values: JSON.stringify(u.values),
        first: u.first,
        last: u.last,
        hours: {},
      };
  let changed = doc === undefined;
  if (u.first < out.first) {
    out.first = u.first;
    changed = true;
  }
  if (u.last > out.last) {
    out.last = u.last;
    changed = true;
  }
  // hours ending before the cut are dropped, and not added back by a late or resent event
  const cut = keepMs === undefined ? Number.NEGATIVE_INFINITY : out.last + HOUR_MS - keepMs;
  const kept = (h: string) => Number(h) + HOUR_MS > cut;
  for (const h of Object.keys(out.hours))
    if (!kept(h)) {
      delete out.hours[h];
      changed = true;
    }
  for (const [h, f] of Object.entries(u.hours)) {
    if (!kept(h)) continue;
    const c = out.hours[h];
    if (c === undefined || f < c) {
      out.hours[h] = f;
      changed = true;
    }
  }
  out.chunk = chunkOf(out.last);
  return changed ? out : undefined;
}

/**
 * Upsert a batch's keys into `index` (the partials index): read the documents, merge, write
 * them back conditionally (`if_seq_no`/`if_primary_term`, `create` for new keys); a write that
 * lost a race with another worker is merged again from the newer document. No script: the
 * merge is the same anywhere, and clusters without scripting work. Throws when a key cannot be
 * written, so the batch is retried before its partials document names it.
 */
export async function writeFirstSeenKeys(
  es: Client,
  index: string,
  keys: readonly KeyUpsert[],
  options: { keepMs?: number } = {},
): Promise<number> {
  const known = knownKeys(es, index);
  let written = 0;
  for (let i = 0; i < keys.length; i += KEYS_PAGE) {
    // Keys this process last saw holding the batch's hours need nothing (documents only grow).
    let pending = keys.slice(i, i + KEYS_PAGE).filter((u) => {
      const k = fresh(known, keyDocId(u.rule, u.key));
      return !k || mergeKey(k.doc, u, options.keepMs) !== undefined;
    });
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 8) throw new Error(`first-seen keys not written: ${pending.length} kept conflicting`);
      const ids = pending.map((k) => keyDocId(k.rule, k.key));
      // The first attempt starts from what this process knows, else from the last refreshed
      // state (a realtime get would refresh the shard at every batch): any write is conditional,
      // and a conflict (another worker wrote since) is read again, realtime.
      const unknown = attempt === 1 ? ids.filter((id) => !fresh(known, id)) : ids;
      if (unknown.length > 0) {
        const got = await es.mget<KeyDoc>({ index, ids: unknown, realtime: attempt > 1 });
        got.docs.forEach((d, j) => {
          if ('found' in d && d.found && d._source)
            remember(known, unknown[j]!, { doc: d._source, seq: d._seq_no!, term: d._primary_term! });
          else known.delete(unknown[j]!);
        });
      }
      const ops: unknown[] = [];
      const sent: { u: KeyUpsert; id: string; doc: KeyDoc }[] = [];
      pending.forEach((u, j) => {
        const id = ids[j]!;
        const found = known.get(id);
        const merged = mergeKey(found?.doc, u, options.keepMs);
        if (!merged) return;
        ops.push(
          found
            ? { index: { _index: index, _id: id, if_seq_no: found.seq, if_primary_term: found.term } }
            : { create: { _index: index, _id: id } },
          merged,
        );
        sent.push({ u, id, doc: merged });
      });
      if (sent.length === 0) break;
      const res = await es.bulk({ operations: ops as estypes.BulkOperationContainer[] });
      const again: KeyUpsert[] = [];
      res.items.forEach((item, j) => {
        const r = item.index ?? item.create;
        const { u, id, doc } = sent[j]!;
        if (r && r.status < 300) {
          written++;
          remember(known, id, { doc, seq: r._seq_no!, term: r._primary_term! });
        } else if (r?.status === 409 || r?.status === 429) {
          known.delete(id);
          again.push(u);
        } else
          throw new Error(`first-seen keys not written: ${r?.error?.type ?? ''} ${r?.error?.reason ?? ''}`);
      });
      pending = again;
      if (again.length > 0) await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
  return written;
}

/**
 * Key documents as this process last wrote or read them, per client and index, most recent
 * last (at most KNOWN_MAX): an active key's later batches in the same hour then cost nothing.
 * Entries are trusted for KNOWN_MS only, so a document deleted behind the process's back (the
 * index reset by an operator) is written again within minutes.
 */
type Known = Map<string, { doc: KeyDoc; seq: number; term: number; at: number }>;
const knownByClient = new WeakMap<Client, Map<string, Known>>();
const KNOWN_MAX = 50_000;
const KNOWN_MS = 10 * 60_000;

function fresh(known: Known, id: string) {
  const k = known.get(id);
  if (k && Date.now() - k.at > KNOWN_MS) {
    known.delete(id);
    return undefined;
  }
  return k;
}

function knownKeys(es: Client, index: string): Known {
  let byIndex = knownByClient.get(es);
  if (!byIndex) {
    byIndex = new Map();
    knownByClient.set(es, byIndex);
  }
  let known = byIndex.get(index);
  if (!known) {
    known = new Map();
    byIndex.set(index, known);
  }
  return known;
}

function remember(known: Known, id: string, entry: { doc: KeyDoc; seq: number; term: number }): void {
  known.delete(id);
  known.set(id, { ...entry, at: Date.now() });
  if (known.size > KNOWN_MAX) known.delete(known.keys().next().value!);
}

const KEYS_PAGE = 1000;

/** A key document as a run reads it: the hour cells within the run's reach. */
export interface KeyHours {
  key: string;
  values: (string | number | boolean)[];
  /** Hour start → the key's earliest event in it. */
  hours: { t: number; firstTs: number }[];
}

/**
 * The key documents of a rule version matching `filter` (paged by key), with their hours in
 * `[from, to)` (hour starts). Counts the documents read in `run.cells`.
 */
export async function* readKeys(
  run: Run,
  index: string,
  rule: string,
  filter: Query[],
  from: number,
  to: number,
): AsyncGenerator<KeyHours> {
  let after: estypes.SortResults | undefined;
  const size = 1000;
  for (;;) {
    const res = await run.es(() =>
      run.client.search<Pick<KeyDoc, 'key' | 'values' | 'hours'>>({
        index,
        size,
        query: { bool: { filter: [{ term: { level: 'key' } }, { term: { rule } }, ...filter] } },
        _source: ['key', 'values', 'hours'],
        sort: [{ key: 'asc' }],
        ...(after ? { search_after: after } : {}),
        track_total_hits: false,
      }),
    );
    const hits = res.hits.hits;
    run.cells += hits.length;
    for (const h of hits) {
      const d = h._source!;
      const hours: KeyHours['hours'] = [];
      for (const [t, f] of Object.entries(d.hours ?? {})) {
        const start = Number(t);
        if (start >= from && start < to) hours.push({ t: start, firstTs: Number(f) });
      }
      yield { key: d.key, values: JSON.parse(d.values) as KeyHours['values'], hours };
    }
    if (hits.length < size) return;
    after = hits[hits.length - 1]!.sort;
  }
}
