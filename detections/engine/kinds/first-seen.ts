/**
 * First-seen rules: a key (`by` + `values`) whose previous event is older than the history. In
 * process: one pass keeping each key's and group's latest time. On Elasticsearch: a composite
 * over the key with the latest history time and the earliest in-range time (restricted to the
 * keys active in the range), then the first events of the new keys only. Through partials: the
 * first-seen key index gives the keys active in the range and their hours, instead of the composite.
 */
import type { estypes } from '@elastic/elasticsearch';
import type { FirstSeenRule } from '../../../parser/ir.ts';
import { partialRuleKey } from '../../partials/cells.ts';
import { HOUR_MS, type KeyHours, keysCoverageKey, readKeys } from '../../partials/first-seen-keys.ts';
import { coveredDays, type PartialsSource } from '../../partials/read.ts';
import { type AggPlan, buildPlan } from '../aggregate.ts';
import {
  ACTIVE_VALUES,
  and,
  CANDIDATES_PAGE,
  compositePages,
  hitId,
  hitTs,
  type Query,
  type Run,
  TERMS_CHUNK,
  timeRange,
} from '../es/run.ts';
import { compileFilter } from '../filter.ts';
import { keyGetters, keyTuples, type PreparedEvents, scan } from '../in-process.ts';
import { eventDetection } from '../render.ts';
import type { Detection, TimeRange } from '../types.ts';
import { canonicalValue, fieldKind, groupKeyOf } from '../values.ts';

export function evaluateFirstSeen(rule: FirstSeenRule, p: PreparedEvents, range: TimeRange): Detection[] {
  const fs = rule.firstSeen;
  const keyFields = [...fs.groupBy, ...fs.fields];
  const keyGet = keyGetters(keyFields);
  const lastKey = new Map<string, number>();
  const lastGroup = new Map<string, number>();
  const out: Detection[] = [];
  const nBy = fs.groupBy.length;
  scan(p, compileFilter(rule.filter), range.start - fs.historyMs, range.end, (i) => {
    const t = p.ts[i]!;
    const e = p.events[i];
    const tuples = keyTuples(keyGet, e);
    // decide every tuple of the event before recording it (multi-valued keys)
    if (t >= range.start) {
      for (const tuple of tuples) {
        const lk = lastKey.get(groupKeyOf(tuple));
        const isNew = lk === undefined || lk < t - fs.historyMs;
        const lg = lastGroup.get(groupKeyOf(tuple.slice(0, nBy)));
        const groupKnown = lg !== undefined && lg >= t - fs.historyMs;
        if (isNew && (!fs.ignoreNewGroups || groupKnown))
          out.push(firstSeenDetection(rule, keyFields, tuple, t, p.ids[i]!, e));
      }
    }
    for (const tuple of tuples) {
      lastKey.set(groupKeyOf(tuple), t);
      lastGroup.set(groupKeyOf(tuple.slice(0, nBy)), t);
    }
  });
  return out;
}

export function firstSeenDetection(
  rule: FirstSeenRule,
  keyFields: string[],
  tuple: (string | number | boolean)[],
  t: number,
  id: string,
  event: unknown,
): Detection {
  return eventDetection(rule, { ts: t, id, fields: event }, { fields: keyFields, values: tuple });
}

export interface FsBucket {
  key: (string | number | boolean)[];
  preMax?: number;
  cur?: { ts: number; id: string; source: unknown };
}

async function compositeFs(
  run: Run,
  fields: string[],
  query: Query,
  read: TimeRange,
  split: number,
  /** 'lite': the earliest in-range time only (cur.id and cur.source left empty). */
  mode: 'source' | 'lite',
  keep?: Set<string>,
): Promise<Map<string, FsBucket>> {
  const kinds = fields.map(fieldKind);
  const sources = fields.map((field, i) => ({ [`k${i}`]: { terms: { field } } }));
  const out = new Map<string, FsBucket>();
  let cells = 0;
  // a top hit per bucket holds a document each: smaller pages keep the node's memory bounded
  const size = mode === 'lite' ? CANDIDATES_PAGE : Math.min(run.limits.pageSize, 2000);
  const aggs: Record<string, estypes.AggregationsAggregationContainer> = {
    pre: {
      filter: timeRange({ start: read.start, end: split }),
      aggs: { m: { max: { field: '@timestamp' } } },
    },
    cur: {
      filter: timeRange({ start: split, end: read.end }),
      aggs:
        mode === 'lite'
          ? { x: { min: { field: '@timestamp' } } }
          : {
              x: {
                top_hits: {
                  size: 1,
                  sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
                  _source: true,
                },
              },
            },
    },
  };
  const pages = compositePages(run, and(query, timeRange(read)), sources, {
    size,
    aggs,
    stop: () => run.overBudget(),
  });
  for await (const buckets of pages) {
    for (const b of buckets) {
      const key = fields.map(
        (_, i) => (canonicalValue(kinds[i]!, b.key[`k${i}`]) ?? b.key[`k${i}`]) as string | number | boolean,
      );
      // a document with several values of the first field also yields keys of other chunks
      if (keep && !keep.has(String(key[0]))) continue;
      if (++cells > run.limits.maxGroups) {
        run.degrade(`more than ${run.limits.maxGroups} first_seen keys: the rest were not evaluated`);
        return out;
      }
      const pre = b.pre as { doc_count: number; m: { value: number | null } };
      const cur = b.cur as {
        doc_count: number;
        x: { hits?: { hits: estypes.SearchHit<unknown>[] }; value?: number | null };
      };
      const fb: FsBucket = { key };
      if (pre.doc_count > 0 && pre.m.value !== null) fb.preMax = pre.m.value;
      if (mode === 'lite') {
        if (cur.doc_count > 0 && typeof cur.x.value === 'number')
          fb.cur = { ts: cur.x.value, id: '', source: undefined };
      } else {
        const top = cur.x.hits?.hits[0];
        if (cur.doc_count > 0 && top) fb.cur = { ts: hitTs(top), id: hitId(top), source: top._source };
      }
      out.set(groupKeyOf(key), fb);
    }
  }
  return out;
}

/** The earliest event (by @timestamp, event.id) of each query, batched in multi-searches. */
async function earliestHits(
  run: Run,
  queries: Query[],
  withSource: boolean,
): Promise<(estypes.SearchHit<unknown> | undefined)[]> {
  const out: (estypes.SearchHit<unknown> | undefined)[] = [];
  for (let from = 0; from < queries.length; from += 200) {
    const chunk = queries.slice(from, from + 200);
    const res = await run.es(() =>
      run.client.msearch({
        searches: chunk.flatMap((query) => [
          { index: run.index },
          {
            size: 1,
            query,
            sort: [{ '@timestamp': 'asc' }, { 'event.id': 'asc' }],
            _source: withSource,
            track_total_hits: false,
          },
        ]),
      }),
    );
    for (const r of res.responses) {
      if ('error' in r) throw new Error(`first_seen search failed: ${JSON.stringify(r.error)}`);
      out.push(r.hits.hits[0]);
    }
  }
  return out;
}

/**
 * The values `field` takes in `range` (matching `query`), when at most ACTIVE_VALUES; else
 * undefined. One terms aggregation: no paging, and a doc count error means more values.
 */
async function activeValues(
  run: Run,
  field: string,
  query: Query,
  range: TimeRange,
): Promise<estypes.FieldValue[] | undefined> {
  const res = await run.es(() =>
    run.client.search({
      index: run.index,
      size: 0,
      query: and(query, timeRange(range)),
      aggs: { v: { terms: { field, size: ACTIVE_VALUES + 1 } } },
    }),
  );
  const agg = res.aggregations?.v as estypes.AggregationsStringTermsAggregate | undefined;
  const buckets = (agg?.buckets ?? []) as { key: estypes.FieldValue; key_as_string?: string }[];
  if (buckets.length > ACTIVE_VALUES || (agg?.sum_other_doc_count ?? 0) > 0) return undefined;
  // booleans and dates as their strings, which a terms query reads back
  return buckets.map((b) => b.key_as_string ?? b.key);
}

/**
 * The groups (`by`) as `ignore new groups` reads them, from their keys: a group is known through
 * its earlier keys, i.e. its events that carry the values (SEMANTICS.md, as the evaluator
 * records groups). Latest history time = the keys' largest, earliest in-range event = the
 * keys' first by (time, id). No second composite over the history.
 */
function groupsOfKeys(keys: Map<string, FsBucket>, groupFields: number): Map<string, FsBucket> {
  const groups = new Map<string, FsBucket>();
  for (const k of keys.values()) {
    const key = k.key.slice(0, groupFields);
    const id = groupKeyOf(key);
    let g = groups.get(id);
    if (!g) {
      g = { key };
      groups.set(id, g);
    }
    if (k.preMax !== undefined && (g.preMax === undefined || k.preMax > g.preMax)) g.preMax = k.preMax;
    const c = k.cur;
    if (c && (!g.cur || c.ts < g.cur.ts || (c.ts === g.cur.ts && c.id < g.cur.id)))
      g.cur = { ts: c.ts, id: c.id, source: undefined };
  }
  return groups;
}

/** Exact when range.end − range.start ≤ history (checked by the caller). */
export async function firstSeenOnElasticsearch(
  run: Run,
  rule: FirstSeenRule,
  query: Query,
  range: TimeRange,
): Promise<Detection[]> {
  const fs = rule.firstSeen;
  const keyFields = [...fs.groupBy, ...fs.fields];
  const read = { start: range.start - fs.historyMs, end: range.end };
  // Pass 1 (aggregations, no hits): the latest history time and the earliest in-range time of
  // every key and group. Pass 2: the earliest in-range event (id, source) of the new keys
  // only, and the group's earliest event id where both earliest times are equal.
  // Only keys with events in the range can be new: when their first field takes few values
  // there (a scheduled run covers minutes), the history is read for those values only.
  const active = await activeValues(run, keyFields[0]!, query, range);
  // (A key of another value that this restriction also reads, from a document with several
  // values, has no event in the range: it cannot be new either way.)
  const pass1 = (fields: string[]) =>
    compositeFs(
      run,
      fields,
      active ? and(query, { terms: { [fields[0]!]: active } }) : query,
      read,
      range.start,
      'lite',
    );
  const keys = await pass1(keyFields);
  return firstSeenFromKeys(run, rule, query, range, keys);
}

/**
 * Pass 2, from each key's latest history time and earliest in-range time (pass 1 over the raw
 * events, or the first-seen key index): the new keys, their first events read.
 */
export async function firstSeenFromKeys(
  run: Run,
  rule: FirstSeenRule,
  query: Query,
  range: TimeRange,
  keys: Map<string, FsBucket>,
): Promise<Detection[]> {
  const fs = rule.firstSeen;
  const keyFields = [...fs.groupBy, ...fs.fields];
  const read = { start: range.start - fs.historyMs, end: range.end };
  const groups = fs.ignoreNewGroups ? groupsOfKeys(keys, fs.groupBy.length) : undefined;
  const chosen: { k: FsBucket; tie?: FsBucket }[] = [];
  for (const k of keys.values()) {
    const x = k.cur;
    if (!x) continue;
    if (k.preMax !== undefined && k.preMax >= x.ts - fs.historyMs) continue;
    if (groups) {
      const g = groups.get(groupKeyOf(k.key.slice(0, fs.groupBy.length)));
      const preKnown = g?.preMax !== undefined && g.preMax >= x.ts - fs.historyMs;
      if (!preKnown) {
        if (!g?.cur || g.cur.ts > x.ts) continue;
        if (g.cur.ts === x.ts) {
          chosen.push({ k, tie: g });
          continue;
        }
      }
    }
    chosen.push({ k });
  }
  // Many new keys: one search each costs more than one composite with the first event per key
  // over the keys sharing their first field (the one-pass reading, on fewer documents).
  if (chosen.length > run.limits.firstSeenSearches) {
    const firstValues = new Map<string, estypes.FieldValue>();
    for (const c of chosen) firstValues.set(String(c.k.key[0]), c.k.key[0]!);
    const all = [...firstValues.values()];
    const full = new Map<string, FsBucket>();
    for (let i = 0; i < all.length; i += TERMS_CHUNK) {
      const chunk = all.slice(i, i + TERMS_CHUNK);
      const part = await compositeFs(
        run,
        keyFields,
        and(query, { terms: { [keyFields[0]!]: chunk } }),
        read,
        range.start,
        'source',
        new Set(chunk.map(String)),
      );
      for (const [k, v] of part) full.set(k, v);
    }
    const fullGroups = fs.ignoreNewGroups ? groupsOfKeys(full, fs.groupBy.length) : undefined;
    const res: Detection[] = [];
    for (const k of full.values()) {
      const x = k.cur;
      if (!x) continue;
      if (k.preMax !== undefined && k.preMax >= x.ts - fs.historyMs) continue;
      if (fullGroups) {
        const g = fullGroups.get(groupKeyOf(k.key.slice(0, fs.groupBy.length)));
        const preKnown = g?.preMax !== undefined && g.preMax >= x.ts - fs.historyMs;
        const curBefore = g?.cur !== undefined && (g.cur.ts < x.ts || (g.cur.ts === x.ts && g.cur.id < x.id));
        if (!preKnown && !curBefore) continue;
      }
      res.push(firstSeenDetection(rule, keyFields, k.key, x.ts, x.id, x.source));
    }
    return res;
  }
  const inRange = timeRange({ start: range.start, end: range.end });
  const byKey = (fields: string[], key: (string | number | boolean)[]): Query[] =>
    fields.map((f, i) => ({ term: { [f]: { value: key[i]! } } }));
  const firsts = await earliestHits(
    run,
    chosen.map((c) => and(query, inRange, ...byKey(keyFields, c.k.key))),
    true,
  );
  const ties = chosen.filter((c) => c.tie);
  // the group's first event among those that carry the values (its keys' events)
  const withValues: Query[] = fs.fields.map((field) => ({ exists: { field } }));
  const tieFirsts = await earliestHits(
    run,
    ties.map((c) => and(query, inRange, ...withValues, ...byKey(fs.groupBy, c.tie!.key))),
    false,
  );
  const groupFirst = new Map<FsBucket, estypes.SearchHit<unknown> | undefined>();
  ties.forEach((c, i) => {
    groupFirst.set(c.k, tieFirsts[i]);
  });
  const out: Detection[] = [];
  chosen.forEach((c, i) => {
    const hit = firsts[i];
    if (!hit) return;
    const ts = hitTs(hit);
    const id = hitId(hit);
    if (c.tie) {
      const g = groupFirst.get(c.k);
      if (!g) return;
      const gts = hitTs(g);
      if (!(gts < ts || (gts === ts && hitId(g) < id))) return;
    }
    out.push(firstSeenDetection(rule, keyFields, c.k.key, ts, id, hit._source));
  });
  return out;
}

/**
 * What ingest folds for a first_seen rule: per key (`by` + `values`) and hour, its events'
 * times. Each hour's earliest event is upserted into the key index
 * (../../partials/first-seen-keys.ts), not stored as cells (docs/partials.md, "First seen").
 */
export function firstSeenPlan(rule: FirstSeenRule): { plan: AggPlan; groupBy: string[]; bucketMs: number } {
  return {
    plan: buildPlan([]),
    groupBy: [...rule.firstSeen.groupBy, ...rule.firstSeen.fields],
    bucketMs: HOUR_MS,
  };
}

/**
 * The key index path: only the keys active since the range's start (and, for `ignore new
 * groups`, the other keys of their groups) are read, each with its hours: the latest history
 * time and the earliest in-range time come from its hours' exact first/last times; the hour
 * holding `start` when the key has events on both sides of it (the current hour of a scheduled
 * run) is read raw for those keys only. Undefined unless every day of history and range is
 * covered (the batches of each day upserted their keys before their partials): then the raw
 * path runs.
 */
export async function firstSeenFromPartials(
  run: Run,
  rule: FirstSeenRule,
  query: Query,
  range: TimeRange,
  source: PartialsSource,
): Promise<Detection[] | undefined> {
  const fs = rule.firstSeen;
  const ruleKey = partialRuleKey(rule);
  const keyFields = [...fs.groupBy, ...fs.fields];
  const read = { start: range.start - fs.historyMs, end: range.end };
  const cov = await coveredDays(run, source, keysCoverageKey(ruleKey), read);
  if (!cov.all) {
    // some days covered, not all: say which days sent the run to the raw events
    if (cov.use.chunks > 0) run.partials = { ...cov.use, chunks: 0 };
    return undefined;
  }
  run.partials = cov.use;
  const index = source.index;
  const fromHour = Math.floor(read.start / HOUR_MS) * HOUR_MS;
  const keys = new Map<string, FsBucket>();
  /** The hour holding `start`, read raw for these keys (first values). */
  const unsure = new Map<string, estypes.FieldValue>();
  const startHour = Math.floor(range.start / HOUR_MS) * HOUR_MS;
  /**
   * Keys whose latest history hour (before the start's hour) may hold events on both sides of
   * `t − H` for some `t` in the range: their latest history time is read raw (first values).
   */
  const band = new Map<string, estypes.FieldValue>();
  const inBand = new Set<string>();
  const take = (kh: KeyHours) => {
    if (keys.has(kh.key)) return;
    const k: FsBucket = { key: kh.values };
    const earlier = (ts: number) => {
      if (ts >= read.start && (k.preMax === undefined || ts > k.preMax)) k.preMax = ts;
    };
    let latest: KeyHours['hours'][number] | undefined;
    for (const h of kh.hours) {
      if (h.t >= startHour) {
        if (h.firstTs >= range.end) continue;
        if (h.firstTs >= range.start) {
          // the hour's first event is in the range: the key's earliest there if the earliest hour
          if (!k.cur || h.firstTs < k.cur.ts) k.cur = { ts: h.firstTs, id: '', source: undefined };
        } else {
          // the start's hour with events before `start`: read it (both sides of `start`)
          unsure.set(String(kh.values[0]), kh.values[0]!);
          earlier(h.firstTs);
        }
      } else if (h.t + HOUR_MS > read.start && (!latest || h.t > latest.t)) latest = h;
    }
    if (latest) {
      // Its first event is a history time. When the hour starts at or after end − H, that time
      // is ≥ t − H for every t in the range: the same answer as the latest time. Otherwise the
      // latest time itself is needed.
      earlier(latest.firstTs);
      if (latest.t < range.end - fs.historyMs) {
        inBand.add(kh.key);
        band.set(String(kh.values[0]), kh.values[0]!);
      }
    }
    keys.set(kh.key, k);
  };
  // Only keys with an event in [start, end) can be new.
  const active: Query[] = [
    { range: { last: { gte: startHour, format: 'epoch_millis' } } },
    { range: { first: { lt: range.end, format: 'epoch_millis' } } },
  ];
  // past maxGroups the run is degraded (below): stop reading there
  const full = () => keys.size > run.limits.maxGroups;
  for await (const kh of readKeys(run, index, ruleKey, active, fromHour, read.end)) {
    take(kh);
    if (full()) break;
  }
  if (fs.ignoreNewGroups) {
    // A group is known through its earlier keys: the other keys of the active groups that had
    // events in the history.
    const groups = [...new Set([...keys.values()].map((k) => groupKeyOf(k.key.slice(0, fs.groupBy.length))))];
    for (let i = 0; i < groups.length && !full(); i += TERMS_CHUNK) {
      const filter: Query[] = [
        { terms: { group: groups.slice(i, i + TERMS_CHUNK) } },
        { range: { last: { gte: fromHour, format: 'epoch_millis' } } },
        { range: { first: { lt: range.start, format: 'epoch_millis' } } },
      ];
      for await (const kh of readKeys(run, index, ruleKey, filter, fromHour, read.end)) {
        take(kh);
        if (full()) break;
      }
    }
  }
  if (full()) {
    run.degrade(`more than ${run.limits.maxGroups} first_seen keys: the rest were not evaluated`);
    for (const k of [...keys.keys()].slice(run.limits.maxGroups)) keys.delete(k);
  }
  /** Raw reads of `span` for the keys of these first values: latest time before `split`, earliest from it. */
  const exactly = async (
    firsts: Map<string, estypes.FieldValue>,
    span: TimeRange,
    split: number,
    only?: Set<string>,
  ) => {
    const first = [...firsts.values()];
    for (let i = 0; i < first.length && span.start < span.end; i += TERMS_CHUNK) {
      const chunk = first.slice(i, i + TERMS_CHUNK);
      const exact = await compositeFs(
        run,
        keyFields,
        and(query, { terms: { [keyFields[0]!]: chunk } }),
        span,
        split,
        'lite',
      );
      for (const [key, b] of exact) {
        const k = keys.get(key);
        if (!k || (only && !only.has(key))) continue;
        if (b.preMax !== undefined && (k.preMax === undefined || b.preMax > k.preMax)) k.preMax = b.preMax;
        if (b.cur && (!k.cur || b.cur.ts < k.cur.ts)) k.cur = b.cur;
      }
    }
  };
  // the start's hour, split at `start`
  await exactly(
    unsure,
    { start: Math.max(startHour, read.start), end: Math.min(startHour + HOUR_MS, range.end) },
    range.start,
  );
  // history hours near t − H: [start − H, the hour after end − H), all before the split
  const bandEnd = Math.min(Math.ceil((range.end - fs.historyMs) / HOUR_MS) * HOUR_MS, startHour);
  await exactly(band, { start: read.start, end: bandEnd }, bandEnd, inBand);
  return firstSeenFromKeys(run, rule, query, range, keys);
}
