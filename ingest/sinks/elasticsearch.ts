/**
 * The events sink: bulk create with deterministic ids into the write alias of each event's day
 * (core/store/event-indices.ts). Create semantics make every retry and replay idempotent (a 409
 * is a document already there); a copy that landed in a later generation of its day than the
 * first one is taken out again. Retryable item failures are retried here with backoff; if they
 * persist the whole batch fails and BullMQ retries the job later. Permanent failures become
 * dead letters with Elasticsearch's reason.
 */
import type { Client } from '@elastic/elasticsearch';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { eventMappings } from '../../core/schema/mapping.ts';
import { bulkWrite, esErrors } from '../../core/store/elasticsearch.ts';
import {
  type DayIndices,
  dayIndices,
  dayOf,
  ensureWritable,
  removeCopiesInLaterGenerations,
  rollOver,
  writeAlias,
} from '../../core/store/event-indices.ts';

/** Per client and prefix: the days this process has made writable, with their indices as last seen. */
const knownDays = new WeakMap<Client, Map<string, Map<string, DayIndices>>>();

function daysOf(client: Client, prefix: string): Map<string, DayIndices> {
  let prefixes = knownDays.get(client);
  if (!prefixes) {
    prefixes = new Map();
    knownDays.set(client, prefixes);
  }
  let days = prefixes.get(prefix);
  if (!days) {
    days = new Map();
    prefixes.set(prefix, days);
  }
  return days;
}

/**
 * Make a day writable before its first write in this process: a write index behind the day's
 * alias, with this version's fields in its mapping (an index an earlier version made for the day
 * gets the fields it lacks; one whose mapping conflicts is rolled over, so writes go to a new
 * index with this version's template instead of failing), its shard allocated (searches through
 * the alias in that moment would fail with no_shard_available).
 */
async function prepareDay(client: Client, prefix: string, day: string): Promise<DayIndices> {
  let state = await ensureWritable(client, prefix, day);
  try {
    await client.indices.putMapping({
      index: state.write!,
      properties: eventMappings().properties as never,
    });
  } catch (err) {
    if (!(err instanceof esErrors.ResponseError) || err.statusCode !== 400) throw err;
    await rollOver(client, prefix, day, state.write!);
    state = await dayIndices(client, prefix, day);
  }
  await client.cluster.health({ index: state.write!, wait_for_status: 'yellow', timeout: '30s' });
  daysOf(client, prefix).set(day, state);
  return state;
}

export interface SinkResult {
  written: number;
  /** The events written now (not already present): what statistics such as the inventory count. */
  writtenEvents: GatewatchEvent[];
  duplicates: number;
  /**
   * The events already stored (a 409, or a copy found in an earlier generation of their day),
   * with the indices their stored copy may be in: that copy belongs to whichever batch stored it
   * first (rule partials, ingest/sinks/batch.ts).
   */
  duplicateEvents: { event: GatewatchEvent; indices: string[] }[];
  /** Events that cannot be stored (bad records, not storage failures), by position in the input. */
  rejected: { event: GatewatchEvent; position: number; reason: string }[];
}

export class RetryableIndexError extends Error {
  override name = 'RetryableIndexError';
}

export interface EsSinkOptions {
  prefix: string;
  /** Attempts for retryable item failures inside one job before giving the job back. */
  itemAttempts?: number;
  backoffMs?: number;
  refresh?: boolean | 'wait_for';
}

/** The day's write index was made read-only (sealed by the lifecycle): late events need a new one. */
const sealed = (error: { type: string; reason: string } | undefined) =>
  error?.type === 'cluster_block_exception' && /index write \(api\)|\/8\//.test(error.reason);

export async function indexEvents(
  client: Client,
  events: GatewatchEvent[],
  options: EsSinkOptions,
): Promise<SinkResult> {
  const prefix = options.prefix;
  const days = daysOf(client, prefix);
  const result: SinkResult = {
    written: 0,
    writtenEvents: [],
    duplicates: 0,
    duplicateEvents: [],
    rejected: [],
  };
  const attempts = options.itemAttempts ?? 4;
  const dayOfEvent = events.map((e) => dayOf(e['@timestamp']));
  for (const day of new Set(dayOfEvent)) if (!days.has(day)) await prepareDay(client, prefix, day);
  /** Stored now (or found stored in the index written to): checked against earlier generations below. */
  const landed: { event: GatewatchEvent; day: string; index: string; created: boolean }[] = [];
  let pending = events.map((event, position) => ({ event, position, day: dayOfEvent[position]! }));
  for (let attempt = 1; pending.length > 0; attempt++) {
    const response = await bulkWrite(
      client,
      pending.map(({ event, day }) => ({
        op: 'create',
        index: writeAlias(prefix, day),
        id: event.event!.id!,
        doc: event,
        requireAlias: true,
      })),
      { refresh: options.refresh ?? false },
    );
    const retry: typeof pending = [];
    /** Days to make writable again (alias deleted by retention) or to roll over (write index sealed). */
    const redo = new Map<string, 'prepare' | 'roll'>();
    response.items.forEach((item, i) => {
      const { event, position, day } = pending[i]!;
      if (item.ok) {
        landed.push({
          event,
          day,
          index: item.writtenTo ?? writeAlias(prefix, day),
          created: !item.duplicate,
        });
      } else if (item.error?.type === 'index_not_found_exception') {
        redo.set(day, 'prepare');
        retry.push(pending[i]!);
      } else if (sealed(item.error)) {
        if (redo.get(day) !== 'prepare') redo.set(day, 'roll');
        retry.push(pending[i]!);
      } else if (item.retryable) retry.push(pending[i]!);
      else
        result.rejected.push({
          event,
          position,
          reason: `${item.error?.type ?? item.status}: ${item.error?.reason ?? ''}`,
        });
    });
    for (const [day, what] of redo) {
      const known = days.get(day);
      if (what === 'roll' && known?.write) await rollOver(client, prefix, day, known.write);
      await prepareDay(client, prefix, day);
    }
    pending = retry;
    if (pending.length === 0) break;
    if (attempt >= attempts) {
      throw new RetryableIndexError(
        `${pending.length} events still rejected with retryable errors after ${attempts} attempts`,
      );
    }
    if (redo.size === 0)
      await new Promise((r) => setTimeout(r, (options.backoffMs ?? 250) * 2 ** (attempt - 1)));
  }
  const copies = await copiesInLaterGenerations(client, prefix, landed);
  for (const { event, created, index } of landed) {
    const earlier = copies.get(event.event!.id!);
    if (!created || earlier) {
      result.duplicates++;
      result.duplicateEvents.push({ event, indices: earlier ?? [index] });
    } else {
      result.written++;
      result.writtenEvents.push(event);
    }
  }
  return result;
}

/**
 * Events stored in a day's index while an earlier index of that day holds them already (with
 * those earlier indices); the later copies are deleted. Costs nothing for a day with one index (nearly always).
 */
async function copiesInLaterGenerations(
  client: Client,
  prefix: string,
  landed: { event: GatewatchEvent; day: string; index: string }[],
): Promise<Map<string, string[]>> {
  /** Per event id taken out again: the earlier indices of its day (one of them holds it). */
  const copies = new Map<string, string[]>();
  const days = daysOf(client, prefix);
  const byIndex = Map.groupBy(landed, (l) => l.index);
  for (const [index, group] of byIndex) {
    const day = group[0]!.day;
    let known = days.get(day);
    // A generation this process has not seen yet (another process rolled the day over): read again.
    if (!known?.indices.includes(index)) {
      known = { ...(await dayIndices(client, prefix, day)) };
      days.set(day, known);
    }
    const at = known.indices.indexOf(index);
    if (at <= 0) continue;
    const found = await removeCopiesInLaterGenerations(
      client,
      index,
      known.indices.slice(0, at),
      group.map((l) => l.event.event!.id!),
    );
    for (const id of found) copies.set(id, known.indices.slice(0, at));
  }
  return copies;
}

/**
 * One line saying why a batch could not be stored, for the log: the storage is unreachable or
 * refusing work (the batch is kept and retried), as opposed to records it rejected (those
 * become dead letters and never fail a batch).
 */
export function describeStorageFailure(err: unknown): string {
  const e = err as Error & { statusCode?: number; meta?: { statusCode?: number } };
  switch (e?.name) {
    case 'ConnectionError':
    case 'NoLivingConnectionsError':
      return `Elasticsearch unreachable (${e.message})`;
    case 'TimeoutError':
      return `Elasticsearch did not answer in time (${e.message})`;
    case 'ResponseError':
      return `Elasticsearch answered ${e.statusCode ?? e.meta?.statusCode}: ${e.message}`;
    case 'RetryableIndexError':
      return `Elasticsearch keeps refusing documents for now: ${e.message}`;
    default:
      return e?.message ?? String(err);
  }
}
