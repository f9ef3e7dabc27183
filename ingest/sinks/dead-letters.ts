/**
 * Dead letters: records that could not become events (unparseable lines, mapping rejections).
 * Stored in Elasticsearch with source, reason and the raw record, scrubbed of secrets (a line
 * that cannot be parsed still goes through pattern scrubbing: ingest/transforms/scrub.ts);
 * listable and replayable. Ids are deterministic, so a record dead-lettered twice is stored once.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { bulkWrite, indexNames } from '../../core/store/elasticsearch.ts';
import { storableRecord } from '../transforms/scrub.ts';

/** Raw records above this size are stored truncated (the reason says so). */
export const MAX_STORED_RAW = 64 * 1024;

export interface DeadLetter {
  source: string;
  format?: string;
  reason: string;
  /** read (a pull source could not read the input) | parse | index | enrich */
  stage: 'read' | 'parse' | 'index' | 'enrich';
  /**
   * The record as the pipeline read it (scrubbed, its secrets replaced by keyed surrogates, when
   * it came through a receiver or the normaliser); stored scrubbed, without fingerprints.
   */
  raw: string;
  eventId?: string;
  at: number;
}

export interface DeadLetterDoc {
  /** The document's own id again, as a sortable field (Elasticsearch does not sort on `_id`). */
  id: string;
  '@timestamp': string;
  source: string;
  format?: string;
  reason: string;
  stage: string;
  raw: string;
  raw_truncated: boolean;
  raw_bytes: number;
  event_id?: string;
  replay_count: number;
}

export function deadLetterId(source: string, raw: string): string {
  return createHash('sha256').update(source).update('\0').update(raw).digest('base64url').slice(0, 32);
}

export function toDeadLetterDoc(d: DeadLetter): DeadLetterDoc {
  const bytes = Buffer.byteLength(d.raw, 'utf8');
  const truncated = d.raw.length > MAX_STORED_RAW;
  // what is kept of a long record is scrubbed (with a margin: a secret cut at the end is still
  // recognised by its name or prefix), not all of it
  const raw = storableRecord(truncated ? d.raw.slice(0, MAX_STORED_RAW + 4096) : d.raw);
  return {
    id: deadLetterId(d.source, d.raw),
    '@timestamp': new Date(d.at).toISOString(),
    source: d.source,
    ...(d.format ? { format: d.format } : {}),
    // parser messages may quote the record (JSON.parse does)
    reason: storableRecord(d.reason.slice(0, 4000)),
    stage: d.stage,
    // Lone surrogates from invalid input are replaced so the document itself is valid JSON.
    raw: (truncated ? raw.slice(0, MAX_STORED_RAW) : raw).toWellFormed(),
    raw_truncated: truncated,
    raw_bytes: bytes,
    ...(d.eventId ? { event_id: d.eventId } : {}),
    replay_count: 0,
  };
}

/** Store dead letters; throws on transport failure (the caller's job is retried). */
export async function writeDeadLetters(client: Client, prefix: string, letters: DeadLetter[]): Promise<void> {
  if (letters.length === 0) return;
  const index = indexNames(prefix).deadLetters;
  const result = await bulkWrite(
    client,
    letters.map((d) => {
      const doc = toDeadLetterDoc(d);
      return { op: 'create', index, id: doc.id, doc };
    }),
  );
  const failed = result.items.filter((i) => !i.ok);
  if (failed.length > 0) {
    throw new Error(
      `could not store ${failed.length} dead letters: ${failed[0]!.error?.reason ?? failed[0]!.status}`,
    );
  }
}

export interface DeadLetterQuery {
  source?: string;
  stage?: string;
  size?: number;
  /** Only those not replayed yet. */
  pending?: boolean;
  /** The `sort` of the last letter of the previous page. */
  after?: unknown[];
}

export interface ListedDeadLetter extends DeadLetterDoc {
  replayed_at?: string;
  /** Where this letter sits in the listing order: pass as `after` for the next page. */
  sort: unknown[];
}

/**
 * Dead letters, newest first. Ties (every letter of one batch has the batch's time) are broken
 * by the `id` field: Elasticsearch refuses to sort on `_id` (no field data). Letters stored
 * before that field existed have no `id` and come last among their equals.
 */
export async function listDeadLetters(
  client: Client,
  prefix: string,
  query: DeadLetterQuery = {},
): Promise<ListedDeadLetter[]> {
  const filter: object[] = [];
  if (query.source) filter.push({ term: { source: query.source } });
  if (query.stage) filter.push({ term: { stage: query.stage } });
  if (query.pending) filter.push({ bool: { must_not: { exists: { field: 'replayed_at' } } } });
  const response = await client.search<DeadLetterDoc & { replayed_at?: string }>({
    index: indexNames(prefix).deadLetters,
    size: query.size ?? 100,
    query: { bool: { filter } },
    sort: [{ '@timestamp': 'desc' }, { id: { order: 'asc', missing: '_last', unmapped_type: 'keyword' } }],
    ...(query.after ? { search_after: query.after as never } : {}),
    ignore_unavailable: true,
  });
  return response.hits.hits.map((h) => ({ ...h._source!, id: h._id!, sort: h.sort ?? [] }));
}

/** Mark dead letters replayed (the records themselves are re-enqueued by the caller). */
export async function markReplayed(
  client: Client,
  prefix: string,
  ids: string[],
  at = Date.now(),
): Promise<void> {
  if (ids.length === 0) return;
  await bulkWrite(
    client,
    ids.map((id) => ({
      op: 'update' as const,
      index: indexNames(prefix).deadLetters,
      id,
      doc: { replayed_at: new Date(at).toISOString() },
    })),
    { refresh: 'wait_for' },
  );
}
