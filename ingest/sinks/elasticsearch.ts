/**
 * The events sink: bulk create with deterministic ids into daily indices. Create semantics make
 * every retry and replay idempotent (a 409 is a document already there). Retryable item
 * failures are retried here with backoff; if they persist the whole batch fails and BullMQ
 * retries the job later. Permanent failures become dead letters with Elasticsearch's reason.
 */
import type { Client } from '@elastic/elasticsearch';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { bulkWrite, ensureIndex, indexNames } from '../../core/store/elasticsearch.ts';

/** Daily indices this process has seen ready, per client. */
const readyIndices = new WeakMap<Client, Set<string>>();

/**
 * Create a daily index before its first write and wait until its shard is allocated. Left to
 * the bulk request's auto-creation, searches through the alias in that moment fail with
 * no_shard_available (detection queries, the API, tests). Once per index and process.
 */
async function ensureDailyIndices(client: Client, indices: Iterable<string>): Promise<void> {
  let ready = readyIndices.get(client);
  if (!ready) {
    ready = new Set();
    readyIndices.set(client, ready);
  }
  for (const index of indices) {
    if (ready.has(index)) continue;
    await ensureIndex(client, index);
    await client.cluster.health({ index, wait_for_status: 'yellow', timeout: '30s' });
    ready.add(index);
  }
}

export interface SinkResult {
  written: number;
  /** The events written now (not already present): what statistics such as the inventory count. */
  writtenEvents: GatewatchEvent[];
  duplicates: number;
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

export async function indexEvents(
  client: Client,
  events: GatewatchEvent[],
  options: EsSinkOptions,
): Promise<SinkResult> {
  const names = indexNames(options.prefix);
  const result: SinkResult = { written: 0, writtenEvents: [], duplicates: 0, rejected: [] };
  /** Positions (in `events`) still to write. */
  let pending = events.map((_, i) => i);
  const attempts = options.itemAttempts ?? 4;
  await ensureDailyIndices(client, new Set(events.map((e) => names.eventsIndexFor(e['@timestamp']))));
  for (let attempt = 1; pending.length > 0; attempt++) {
    const response = await bulkWrite(
      client,
      pending.map((i) => {
        const event = events[i]!;
        return {
          op: 'create',
          index: names.eventsIndexFor(event['@timestamp']),
          id: event.event!.id!,
          doc: event,
        };
      }),
      { refresh: options.refresh ?? false },
    );
    const retry: number[] = [];
    response.items.forEach((item, k) => {
      const position = pending[k]!;
      const event = events[position]!;
      if (item.duplicate) result.duplicates++;
      else if (item.ok) {
        result.written++;
        result.writtenEvents.push(event);
      } else if (item.retryable) retry.push(position);
      else
        result.rejected.push({
          event,
          position,
          reason: `${item.error?.type ?? item.status}: ${item.error?.reason ?? ''}`,
        });
    });
    pending = retry;
    if (pending.length === 0) break;
    if (attempt >= attempts) {
      throw new RetryableIndexError(
        `${pending.length} events still rejected with retryable errors after ${attempts} attempts`,
      );
    }
    await new Promise((r) => setTimeout(r, (options.backoffMs ?? 250) * 2 ** (attempt - 1)));
  }
  return result;
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
