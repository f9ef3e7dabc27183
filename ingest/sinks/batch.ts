/**
 * Storing a batch's events and, when partial rules are loaded, its rule partials
 * (docs/partials.md). Events first (create with deterministic ids: a redelivery or a resend
 * stores nothing twice), each naming the batch that stores it (`gatewatch.ingest.batch`); then
 * the partials of the events this batch owns: those it created now, and duplicates whose stored
 * copy names this batch (a redelivery after a crash between the two writes). An event stored
 * by another batch counts in that batch's partials, never twice.
 */
import type { Client } from '@elastic/elasticsearch';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { PartialFolder } from '../../detections/partials/fold.ts';
import { writeBatchPartials } from '../../detections/partials/store.ts';
import { indexEvents, type SinkResult } from './elasticsearch.ts';

export interface StoreBatchOptions {
  prefix: string;
  refresh?: boolean | 'wait_for';
  /** The batch's id, stable across redeliveries (the queue's job id). Required with `partials`. */
  batchId?: string;
  partials?: PartialFolder;
}

export interface StoredBatch extends SinkResult {
  /** Events whose partials this batch wrote (created now or owned duplicates). */
  owned: number;
  partialDocs: number;
  foldMs: number;
}

export async function storeBatch(
  es: Client,
  events: GatewatchEvent[],
  options: StoreBatchOptions,
): Promise<StoredBatch> {
  const { batchId, partials } = options;
  const folding = partials !== undefined && batchId !== undefined && partials.rules.length > 0;
  if (folding)
    for (const e of events) {
      e.gatewatch ??= {} as NonNullable<GatewatchEvent['gatewatch']>;
      e.gatewatch.ingest = { batch: batchId };
    }
  const sink = await indexEvents(es, events, {
    prefix: options.prefix,
    ...(options.refresh !== undefined ? { refresh: options.refresh } : {}),
  });
  if (!folding) return { ...sink, owned: 0, partialDocs: 0, foldMs: 0 };
  // An event twice in one batch (the same line sent twice) is created once: count it once.
  const ids = new Set(sink.writtenEvents.map((e) => e.event!.id!));
  const candidates = sink.duplicateEvents.filter(({ event }) => {
    const id = event.event!.id!;
    if (ids.has(id)) return false;
    ids.add(id);
    return true;
  });
  const owned = [...sink.writtenEvents, ...(await ownedDuplicates(es, batchId, candidates))];
  const t = performance.now();
  const folded = partials.fold(owned);
  const foldMs = performance.now() - t;
  const partialDocs = await writeBatchPartials(es, options.prefix, batchId, folded, options.refresh ?? false);
  return { ...sink, owned: owned.length, partialDocs, foldMs };
}

/** The duplicates whose stored copy was stored by this very batch (an earlier delivery of it). */
async function ownedDuplicates(
  es: Client,
  batchId: string,
  duplicates: { event: GatewatchEvent; indices: string[] }[],
): Promise<GatewatchEvent[]> {
  if (duplicates.length === 0) return [];
  // Realtime gets (a copy stored a moment ago, not refreshed yet, is found): one per index the
  // stored copy may be in (one, unless the day rolled over in between).
  const asks = duplicates.flatMap(({ event }, i) =>
    duplicates[i]!.indices.map((index) => ({ i, index, id: event.event!.id! })),
  );
  const res = await es.mget<{ gatewatch?: { ingest?: { batch?: string } } }>({
    docs: asks.map((a) => ({ _index: a.index, _id: a.id, _source: ['gatewatch.ingest.batch'] })),
    realtime: true,
  });
  const owned = new Set<number>();
  res.docs.forEach((d, k) => {
    const doc = d as { found?: boolean; _source?: { gatewatch?: { ingest?: { batch?: string } } } };
    if (doc.found === true && doc._source?.gatewatch?.ingest?.batch === batchId) owned.add(asks[k]!.i);
  });
  return duplicates.filter((_, i) => owned.has(i)).map((d) => d.event);
}
