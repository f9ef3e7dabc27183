/**
 * How events are laid out in Elasticsearch. Every UTC day of event time has indices of its own,
 * so an event always goes to the same day, however late or often it is written; within a day,
 * generations follow one another behind a write alias (rollover by age and size), and the
 * deterministic event id keeps writes idempotent across them:
 *
 *   <prefix>-events-YYYY.MM.DD-000001, -000002 …   the day's indices (generations)
 *   <prefix>-events-YYYY.MM.DD-write                alias: the generation taking the day's writes
 *   <prefix>-events                                 alias over every events index (what readers use)
 *   <prefix>-events-YYYY.MM.DD                      a day's index as versions before the lifecycle
 *                                                   wrote it: read, never written to again
 *
 * A create is idempotent within one index only (a 409 there is the document already stored). A
 * write that lands in a later generation than an earlier write of the same event (a retried
 * batch after a rollover, a replay) is found by `removeCopiesInLaterGenerations` and taken out
 * again, so every event is stored once. Only days with more than one index pay for that check.
 *
 * There is no "rollover" call here: the next generation is created under its own name (a create
 * is atomic, so racing workers agree on it) and the write flag moves to it in one alias update,
 * which Elasticsearch refuses if it would leave two write indices.
 */
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';

const DAY_MS = 86_400_000;

/** 'YYYY.MM.DD' of an ISO-8601 UTC timestamp or epoch milliseconds. */
export function dayOf(timestamp: string | number): string {
  const iso = typeof timestamp === 'number' ? new Date(timestamp).toISOString() : timestamp;
  return iso.slice(0, 10).replaceAll('-', '.');
}

/** [start, end) of a day in epoch milliseconds. */
export function dayRange(day: string): { start: number; end: number } {
  const start = Date.parse(`${day.replaceAll('.', '-')}T00:00:00.000Z`);
  return { start, end: start + DAY_MS };
}

export function writeAlias(prefix: string, day: string): string {
  return `${prefix}-events-${day}-write`;
}

export function generationIndex(prefix: string, day: string, generation: number): string {
  return `${prefix}-events-${day}-${String(generation).padStart(6, '0')}`;
}

export interface EventIndexName {
  index: string;
  day: string;
  /** 1, 2 … for generations; 0 for a day index written before the lifecycle. */
  generation: number;
}

/** The day and generation of an events index of `prefix`, or undefined for any other name. */
export function parseEventIndex(prefix: string, index: string): EventIndexName | undefined {
  if (!index.startsWith(`${prefix}-events-`)) return undefined;
  const m = /^(\d{4}\.\d{2}\.\d{2})(?:-(\d{6}))?$/.exec(index.slice(prefix.length + 8));
  if (!m) return undefined;
  return { index, day: m[1]!, generation: m[2] ? Number(m[2]) : 0 };
}

const isType = (err: unknown, type: string) =>
  err instanceof errors.ResponseError && err.body?.error?.type === type;

/** A day's indices (oldest generation first) and the one its write alias points at. */
export interface DayIndices {
  indices: string[];
  write: string | undefined;
}

export async function dayIndices(es: Client, prefix: string, day: string): Promise<DayIndices> {
  const resolved = await es.indices.resolveIndex({
    // One wildcard: it also matches the day's index of an earlier version (a missing name
    // without one would be an error).
    name: `${prefix}-events-${day}*`,
    expand_wildcards: ['open', 'closed'],
  });
  const indices = resolved.indices
    .map((i) => parseEventIndex(prefix, i.name))
    .filter((i): i is EventIndexName => i !== undefined && i.day === day)
    .sort((a, b) => a.generation - b.generation)
    .map((i) => i.index);
  const alias = writeAlias(prefix, day);
  let write: string | undefined;
  const aliased = resolved.aliases.find((a) => a.name === alias);
  if (aliased) {
    if (aliased.indices.length === 1) write = aliased.indices[0];
    else {
      const got = await es.indices.getAlias({ name: alias });
      for (const [index, { aliases }] of Object.entries(got))
        if ((aliases[alias] as { is_write_index?: boolean } | undefined)?.is_write_index) write = index;
    }
  }
  return { indices, write };
}

export interface GenerationSettings {
  /** Primary shards of the new index (default: the events template's). */
  shards?: number;
}

/**
 * Make sure `day` has a write alias, creating its first generation (or, when earlier ones were
 * deleted while a later write came in, the one after the newest left) when it has none.
 */
export async function ensureWritable(
  es: Client,
  prefix: string,
  day: string,
  settings: GenerationSettings = {},
): Promise<DayIndices> {
  let state = await dayIndices(es, prefix, day);
  for (let attempt = 0; state.write === undefined && attempt < 5; attempt++) {
    const newest = state.indices
      .map((i) => parseEventIndex(prefix, i)!.generation)
      .reduce((a, b) => Math.max(a, b), 0);
    const index = generationIndex(prefix, day, newest + 1);
    try {
      await es.indices.create({
        index,
        aliases: { [writeAlias(prefix, day)]: { is_write_index: true } },
        ...(settings.shards ? { settings: { number_of_shards: settings.shards } } : {}),
      });
    } catch (err) {
      // Another worker created it (with the alias): read again.
      if (!isType(err, 'resource_already_exists_exception')) throw err;
    }
    state = await dayIndices(es, prefix, day);
  }
  if (state.write === undefined) throw new Error(`events of ${day}: no write index could be made`);
  return state;
}

/**
 * Move the day's writes from `from` (its write index as the caller saw it) to the next
 * generation. Idempotent, and safe against concurrent rollers: the next generation is created
 * once, and an alias update that would leave two write indices (someone rolled further
 * meanwhile) is refused by Elasticsearch and ignored here. Returns the write index afterwards.
 */
export async function rollOver(
  es: Client,
  prefix: string,
  day: string,
  from: string,
  settings: GenerationSettings = {},
): Promise<string> {
  const parsed = parseEventIndex(prefix, from);
  if (!parsed || parsed.day !== day) throw new Error(`${from} is not an events index of ${day}`);
  const next = generationIndex(prefix, day, parsed.generation + 1);
  try {
    await es.indices.create({
      index: next,
      ...(settings.shards ? { settings: { number_of_shards: settings.shards } } : {}),
    });
  } catch (err) {
    if (!isType(err, 'resource_already_exists_exception')) throw err;
  }
  const alias = writeAlias(prefix, day);
  try {
    await es.indices.updateAliases({
      actions: [
        ...(parsed.generation > 0 ? [{ add: { index: from, alias, is_write_index: false } }] : []),
        { add: { index: next, alias, is_write_index: true } },
      ],
    });
  } catch (err) {
    if (!(err instanceof errors.ResponseError) || err.statusCode !== 400) throw err;
  }
  return (await dayIndices(es, prefix, day)).write ?? next;
}

/**
 * Of the events just written to `written` (a day's generation), those an earlier index of the
 * same day already holds are deleted from `written` again: the first copy stays. Reads by id
 * (mget) are real-time, so a copy written a moment before the rollover is found too. Returns
 * the ids that were copies.
 */
export async function removeCopiesInLaterGenerations(
  es: Client,
  written: string,
  earlier: string[],
  ids: string[],
): Promise<Set<string>> {
  const copies = new Set<string>();
  if (earlier.length === 0 || ids.length === 0) return copies;
  const response = await es.mget({
    docs: earlier.flatMap((index) => ids.map((id) => ({ _index: index, _id: id }))),
    _source: false,
  });
  for (const doc of response.docs) if ('found' in doc && doc.found) copies.add(doc._id);
  if (copies.size === 0) return copies;
  const deleted = await es.bulk({
    operations: [...copies].map((id) => ({ delete: { _index: written, _id: id } })),
  });
  const failed = deleted.items.filter((i) => i.delete && i.delete.status >= 300 && i.delete.status !== 404);
  if (failed.length > 0)
    throw new Error(
      `${failed.length} copies of events already stored in an earlier index could not be removed from ${written}: ${failed[0]!.delete!.error?.reason ?? failed[0]!.delete!.status}`,
    );
  return copies;
}
