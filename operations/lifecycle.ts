/**
 * One pass of the index lifecycle over everything Gatewatch keeps in Elasticsearch. It works on
 * any distribution (the integ-test one has no ILM, no data streams, no delete-by-query), with
 * plain index, alias and settings calls:
 *
 *   1. size shards for the data rate: a new events index gets as many primary shards as the
 *      last day's data needs at `lifecycle.shardSize` each (at most one per data node);
 *   2. create today's (and, near midnight, tomorrow's) first events index ahead of its writes;
 *   3. roll over a day's write index by age (`lifecycle.rolloverAge`, today's only) or size (a
 *      primary shard past `lifecycle.shardSize`);
 *   4. seal indices no longer written for `lifecycle.sealAfter`: read-only (a write block) and
 *      force-merged to one segment;
 *   5. delete events indices whose newest event is older than `retention.events` (and that were
 *      made longer ago than that: replayed old logs are kept from when they were stored);
 *   6. delete documents past retention from the single indices (dead letters, rule runs,
 *      incidents, inventory, audit), a bounded number per pass, and expunge them;
 *   7. give every Gatewatch index `elasticsearch.replicas` replicas;
 *   8. say which events indices an earlier version made with a mapping that conflicts with this
 *      version's (they stay readable; searches on those fields may miss them until they expire or
 *      are reindexed).
 *
 * Each step's failure is recorded and the next step still runs. See operations/runner.ts for
 * who runs it and when.
 */
import type { Client } from '@elastic/elasticsearch';
import { byteSize, durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { eventMappings } from '../core/schema/mapping.ts';
import { type estypes, indexNames, searchAll } from '../core/store/elasticsearch.ts';
import {
  dayOf,
  dayRange,
  ensureWritable,
  parseEventIndex,
  rollOver,
  writeAlias,
} from '../core/store/event-indices.ts';
import { EXPIRING_INCIDENT_STATUSES, type RetentionKind, retentionPolicy } from './retention.ts';

const DAY_MS = 86_400_000;

/** Documents deleted per kind and pass at most (the rest go at the next pass). */
const MAX_DELETES_PER_PASS = 200_000;

export type DocumentKind = Exclude<RetentionKind, 'events'> | 'lifecycleRuns' | 'partials';

export interface LifecycleReport {
  started_at: string;
  finished_at: string;
  duration_ms: number;
  outcome: 'ok' | 'error';
  /** Primary shards a new events index gets, from the last day's data. */
  shards: number;
  /** Events indices made ahead of their first write. */
  created: string[];
  rolled_over: { from: string; to: string; reason: 'age' | 'size' }[];
  sealed: string[];
  deleted_indices: string[];
  deleted_documents: Partial<Record<DocumentKind, number>>;
  /** Documents past retention left for the next pass (more than one pass deletes). */
  remaining_documents: Partial<Record<DocumentKind, number>>;
  replicas_updated: string[];
  events: { indices: number; primary_bytes: number; documents: number; oldest_day: string | null };
  /** Events indices whose mapping conflicts with this version's: what to do about each. */
  mapping_conflicts: string[];
  errors: string[];
}

interface EventIndexInfo {
  index: string;
  day: string;
  generation: number;
  created: number;
  write: boolean;
  writeBlocked: boolean;
  replicas: number;
  autoExpand: boolean;
  docs: number;
  primaryBytes: number;
  largestPrimaryShard: number;
}

/** The single (not time-based) indices and what each one's documents expire by. */
export function documentIndices(prefix: string) {
  const names = indexNames(prefix);
  return [
    { kind: 'deadLetters', index: names.deadLetters, field: '@timestamp', retention: 'deadLetters' },
    { kind: 'ruleRuns', index: names.ruleRuns, field: 'finished_at', retention: 'ruleRuns' },
    { kind: 'lifecycleRuns', index: lifecycleRunsIndex(prefix), field: 'finished_at', retention: 'ruleRuns' },
    {
      kind: 'incidents',
      index: names.incidents,
      field: 'updated_at',
      retention: 'incidents',
      filter: { terms: { status: [...EXPIRING_INCIDENT_STATUSES] } },
    },
    { kind: 'inventory', index: `${prefix}-inventory`, field: 'last_seen', retention: 'inventory' },
    { kind: 'audit', index: `${prefix}-audit`, field: 'at', retention: 'audit' },
    // Rule partials (docs/partials.md) go with their day's events: `chunk` is the day's start,
    // so a day's partials are deleted one day after its start passes the events' retention.
    { kind: 'partials', index: names.partials, field: 'chunk', retention: 'events', offsetMs: 86_400_000 },
  ] as const satisfies readonly {
    kind: DocumentKind;
    index: string;
    field: string;
    retention: RetentionKind;
    filter?: object;
    /** Kept this much longer than the retention (the field is the start of a span). */
    offsetMs?: number;
  }[];
}

export function lifecycleRunsIndex(prefix: string): string {
  return `${prefix}-lifecycle-runs`;
}

/** Every index Gatewatch makes that is not an events index (replicas apply to them too). */
function singleIndices(prefix: string): string[] {
  const names = indexNames(prefix);
  return [
    names.incidents,
    names.deadLetters,
    names.ruleRuns,
    names.rules,
    names.state,
    names.partials,
    lifecycleRunsIndex(prefix),
    `${prefix}-api-keys`,
    `${prefix}-audit`,
    `${prefix}-inventory`,
    `${prefix}-inventory-specs`,
  ];
}

async function eventIndices(es: Client, prefix: string): Promise<EventIndexInfo[]> {
  const pattern = `${prefix}-events-*`;
  const [got, stats] = await Promise.all([
    es.indices.get({
      index: pattern,
      filter_path: [
        '*.aliases',
        '*.settings.index.creation_date',
        '*.settings.index.blocks',
        '*.settings.index.number_of_replicas',
        '*.settings.index.auto_expand_replicas',
      ],
      ignore_unavailable: true,
      allow_no_indices: true,
    }),
    es.indices.stats({
      index: pattern,
      metric: ['docs', 'store'],
      level: 'shards',
      expand_wildcards: 'open',
    }),
  ]);
  const out: EventIndexInfo[] = [];
  for (const [index, state] of Object.entries(got as Record<string, estypes.IndicesIndexState>)) {
    const parsed = parseEventIndex(prefix, index);
    if (!parsed) continue;
    const settings = (state.settings?.index ?? {}) as Record<string, unknown>;
    const blocks = (settings.blocks ?? {}) as Record<string, unknown>;
    const alias = state.aliases?.[writeAlias(prefix, parsed.day)] as { is_write_index?: boolean } | undefined;
    const s = stats.indices?.[index];
    const shards = Object.values(s?.shards ?? {}).flat() as {
      routing?: { primary?: boolean };
      store?: { size_in_bytes?: number };
    }[];
    out.push({
      index,
      day: parsed.day,
      generation: parsed.generation,
      created: Number(settings.creation_date ?? 0),
      write: alias !== undefined && alias.is_write_index !== false,
      writeBlocked: String(blocks.write) === 'true',
      replicas: Number(settings.number_of_replicas ?? 0),
      autoExpand:
        settings.auto_expand_replicas !== undefined && String(settings.auto_expand_replicas) !== 'false',
      docs: s?.primaries?.docs?.count ?? 0,
      primaryBytes: s?.primaries?.store?.size_in_bytes ?? 0,
      largestPrimaryShard: shards
        .filter((sh) => sh.routing?.primary)
        .reduce((m, sh) => Math.max(m, sh.store?.size_in_bytes ?? 0), 0),
    });
  }
  return out.sort((a, b) => a.day.localeCompare(b.day) || a.generation - b.generation);
}

/** Newest @timestamp in an index (epoch ms), or undefined when it is empty. */
async function newestEvent(es: Client, index: string): Promise<number | undefined> {
  const r = await es.search({ index, size: 0, aggs: { newest: { max: { field: '@timestamp' } } } });
  const v = (r.aggregations?.newest as { value?: number | null } | undefined)?.value;
  return typeof v === 'number' ? v : undefined;
}

export interface LifecycleOptions {
  es: Client;
  config: GatewatchConfig;
  now?: number;
  log?: (line: string) => void;
}

export async function runLifecycle(options: LifecycleOptions): Promise<LifecycleReport> {
  const { es, config } = options;
  const now = options.now ?? Date.now();
  const started = performance.now();
  const prefix = config.elasticsearch.indexPrefix;
  const lifecycle = config.lifecycle;
  const policy = retentionPolicy(config.retention);
  const shardSize = byteSize(lifecycle.shardSize);
  const rolloverAge = durationMs(lifecycle.rolloverAge);
  const sealAfter = durationMs(lifecycle.sealAfter);
  const intervalMs = durationMs(lifecycle.interval);
  const report: LifecycleReport = {
    started_at: new Date(now).toISOString(),
    finished_at: '',
    duration_ms: 0,
    outcome: 'ok',
    shards: config.elasticsearch.shards,
    created: [],
    rolled_over: [],
    sealed: [],
    deleted_indices: [],
    deleted_documents: {},
    remaining_documents: {},
    replicas_updated: [],
    events: { indices: 0, primary_bytes: 0, documents: 0, oldest_day: null },
    mapping_conflicts: [],
    errors: [],
  };
  const step = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      report.errors.push(`${name}: ${(err as Error).message}`);
    }
  };
  const today = dayOf(now);
  let indices: EventIndexInfo[] = [];
  await step('reading the events indices', async () => {
    indices = await eventIndices(es, prefix);
  });

  // 1. Shards for the data rate: the last complete day's primary bytes (or today's so far,
  // scaled to a day, once a few hours are in), spread over the life of one index.
  await step('sizing shards', async () => {
    const health = await es.cluster.health({ timeout: '5s' });
    const maxShards = lifecycle.maxShards || Math.max(1, health.number_of_data_nodes);
    const yesterday = dayOf(now - DAY_MS);
    let daily = indices.filter((i) => i.day === yesterday).reduce((s, i) => s + i.primaryBytes, 0);
    const elapsed = now - dayRange(today).start;
    if (daily === 0 && elapsed >= 3 * 3_600_000)
      daily =
        (indices.filter((i) => i.day === today).reduce((s, i) => s + i.primaryBytes, 0) * DAY_MS) / elapsed;
    if (daily > 0) {
      const perIndex = daily * Math.min(1, rolloverAge / DAY_MS);
      report.shards = Math.min(maxShards, Math.max(1, Math.ceil(perIndex / shardSize)));
    }
  });
  const settings = { shards: report.shards };

  // 2. Today's first index (and tomorrow's in the last two intervals of the day) before its writes.
  await step('creating indices ahead', async () => {
    const days = [today];
    if (now >= dayRange(today).end - 2 * intervalMs) days.push(dayOf(now + DAY_MS));
    for (const day of days) {
      if (indices.some((i) => i.day === day)) continue;
      const made = await ensureWritable(es, prefix, day, settings);
      report.created.push(made.write!);
    }
  });

  // 3. Rollover: by age (today's write index only: a past day takes only late events), by size.
  await step('rolling over', async () => {
    for (const i of indices) {
      if (!i.write || i.docs === 0 || i.writeBlocked) continue;
      const reason =
        i.largestPrimaryShard >= shardSize
          ? 'size'
          : i.day === today && now - i.created >= rolloverAge
            ? 'age'
            : undefined;
      if (!reason) continue;
      const to = await rollOver(es, prefix, i.day, i.index, settings);
      report.rolled_over.push({ from: i.index, to, reason });
      i.write = false;
    }
  });

  // 5 (before sealing: no point merging what goes). Whole events indices past retention.
  const cutoff = now - policy.events;
  const deleted = new Set<string>();
  await step('deleting events indices past retention', async () => {
    const doomed: string[] = [];
    for (const i of indices) {
      const { start, end } = dayRange(i.day);
      if (start >= cutoff) continue;
      // Retention counts from the events' time or from when they were stored, whichever is
      // later: logs of last quarter replayed today are kept for retention.events from today.
      if (i.created >= cutoff) continue;
      // Today's write index stays (its alias with it): it rolls over first.
      if (i.write && i.day === today) continue;
      if (end <= cutoff) doomed.push(i.index);
      else {
        const newest = i.docs === 0 ? undefined : await newestEvent(es, i.index);
        if (newest === undefined ? i.created < cutoff && !i.write : newest < cutoff) doomed.push(i.index);
      }
    }
    for (let k = 0; k < doomed.length; k += 50) {
      const part = doomed.slice(k, k + 50);
      await es.indices.delete({ index: part.join(','), ignore_unavailable: true });
      for (const index of part) {
        deleted.add(index);
        report.deleted_indices.push(index);
      }
    }
  });
  const kept = indices.filter((i) => !deleted.has(i.index));

  // 4. Seal what is no longer written: a generation once the next one took over, a day's
  // write index (or an earlier version's day index) once the day is over.
  await step('sealing', async () => {
    for (const i of kept) {
      if (i.writeBlocked) continue;
      let lastWrite: number;
      if (i.write || i.generation === 0) lastWrite = Math.max(dayRange(i.day).end, i.created);
      else {
        const next = kept.find((j) => j.day === i.day && j.generation > i.generation);
        lastWrite = next?.created ?? now;
      }
      if (i.write && i.day === today) continue;
      if (now - lastWrite < sealAfter) continue;
      await es.indices.putSettings({ index: i.index, settings: { 'index.blocks.write': true } });
      if (i.docs > 0)
        await es.indices.forcemerge({ index: i.index, max_num_segments: 1, wait_for_completion: false });
      i.writeBlocked = true;
      report.sealed.push(i.index);
    }
  });

  // 6. Documents past retention in the single indices.
  await step('deleting documents past retention', async () => {
    for (const d of documentIndices(prefix)) {
      const before = now - policy[d.retention] - ('offsetMs' in d ? d.offsetMs : 0);
      const query: estypes.QueryDslQueryContainer = {
        bool: {
          filter: [
            { range: { [d.field]: { lt: before, format: 'epoch_millis' } } },
            ...('filter' in d ? [d.filter as unknown as estypes.QueryDslQueryContainer] : []),
          ],
        },
      };
      const exists = await es.indices.exists({ index: d.index });
      if (!exists) continue;
      let n = 0;
      let batch: string[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        const r = await es.bulk({
          operations: batch.map((id) => ({ delete: { _index: d.index, _id: id } })),
        });
        n += r.items.filter((it) => it.delete && (it.delete.status < 300 || it.delete.status === 404)).length;
        batch = [];
      };
      for await (const hit of searchAll(es, {
        index: d.index,
        query,
        source: false,
        pageSize: 2000,
        limit: MAX_DELETES_PER_PASS,
      })) {
        batch.push(hit._id!);
        if (batch.length >= 2000) await flush();
      }
      await flush();
      if (n === 0) continue;
      report.deleted_documents[d.kind] = n;
      await es.indices.refresh({ index: d.index });
      const left = (await es.count({ index: d.index, query })).count;
      if (left > 0) report.remaining_documents[d.kind] = left;
      // Space of deleted documents comes back when their segments merge; ask for it.
      await es.indices.forcemerge({ index: d.index, only_expunge_deletes: true, wait_for_completion: false });
    }
  });

  // 7. Replicas as configured, on every Gatewatch index (events indices get them from the template).
  await step('setting replicas', async () => {
    const want = config.elasticsearch.replicas;
    const wrong = kept.filter((i) => !i.autoExpand && i.replicas !== want).map((i) => i.index);
    const singles = await es.indices.getSettings({
      index: singleIndices(prefix).join(','),
      name: ['index.number_of_replicas', 'index.auto_expand_replicas'],
      flat_settings: true,
      ignore_unavailable: true,
      allow_no_indices: true,
    });
    for (const [index, v] of Object.entries(singles)) {
      const s = (v as { settings?: Record<string, string> }).settings ?? {};
      if (s['index.auto_expand_replicas'] !== undefined && s['index.auto_expand_replicas'] !== 'false')
        continue;
      if (Number(s['index.number_of_replicas'] ?? 0) !== want) wrong.push(index);
    }
    for (let k = 0; k < wrong.length; k += 50) {
      const part = wrong.slice(k, k + 50);
      await es.indices.putSettings({ index: part.join(','), settings: { 'index.number_of_replicas': want } });
      report.replicas_updated.push(...part);
    }
  });

  // 8. Mapping conflicts with this version (indices an earlier version made).
  await step('checking mappings', async () => {
    if (kept.length === 0) return;
    const current = flattenMapping((eventMappings() as { properties: Record<string, unknown> }).properties);
    const got = await es.indices.getMapping({
      index: `${prefix}-events-*`,
      ignore_unavailable: true,
      allow_no_indices: true,
    });
    for (const [index, m] of Object.entries(got)) {
      const info = kept.find((i) => i.index === index);
      if (!info) continue;
      const theirs = flattenMapping((m.mappings?.properties ?? {}) as Record<string, unknown>);
      const conflicts = [...theirs].filter(([f, t]) => current.has(f) && current.get(f) !== t);
      if (conflicts.length === 0) continue;
      const [field, type] = conflicts[0]!;
      const expires = new Date(dayRange(info.day).end + policy.events).toISOString().slice(0, 10);
      report.mapping_conflicts.push(
        `${index} maps ${field} as ${type} where this version maps it as ${current.get(field)}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more fields)` : ''}: it stays readable, but searches and rules on those fields may miss its events; reindex it into a new index of this version, or let it expire (${expires})`,
      );
    }
  });

  const remaining = kept;
  report.events = {
    indices: remaining.length,
    primary_bytes: remaining.reduce((s, i) => s + i.primaryBytes, 0),
    documents: remaining.reduce((s, i) => s + i.docs, 0),
    oldest_day: remaining[0]?.day ?? null,
  };
  report.finished_at = new Date(Date.now()).toISOString();
  report.duration_ms = Math.round(performance.now() - started);
  if (report.errors.length > 0) report.outcome = 'error';
  return report;
}

/** `a.b.c` → type for every leaf field of a mapping. */
export function flattenMapping(properties: Record<string, unknown>, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, def] of Object.entries(properties)) {
    const d = def as { type?: string; properties?: Record<string, unknown> };
    const path = prefix ? `${prefix}.${name}` : name;
    if (d.properties) for (const [k, v] of flattenMapping(d.properties, path)) out.set(k, v);
    else out.set(path, d.type ?? 'object');
  }
  return out;
}
