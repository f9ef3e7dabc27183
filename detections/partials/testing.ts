/**
 * Delivering events as ingest does, with the faults at-least-once delivery brings, for the
 * partials tests: batches out of time order (late events), a batch delivered twice, records
 * resent in another batch, and a worker killed between storing a batch's events and its partials
 * (the batch then redelivered).
 */
import type { Client } from '@elastic/elasticsearch';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { storeBatch } from '../../ingest/sinks/batch.ts';
import { indexEvents } from '../../ingest/sinks/elasticsearch.ts';
import { prng } from '../engine/generate.ts';
import type { PartialFolder } from './fold.ts';

export interface Delivery {
  batches: number;
  redelivered: number;
  resent: number;
  crashed: number;
}

export async function deliverWithFaults(
  es: Client,
  prefix: string,
  events: readonly GatewatchEvent[],
  folder: PartialFolder,
  options: { batchSize?: number; seed?: number; tag?: string } = {},
): Promise<Delivery> {
  const r = prng(options.seed ?? 11);
  const size = options.batchSize ?? 500;
  const tag = options.tag ?? 'b';
  // one event in ten arrives late: after every batch of later events
  const onTime: GatewatchEvent[] = [];
  const late: GatewatchEvent[] = [];
  for (const e of events) (r() < 0.1 ? late : onTime).push(e);
  const order = [...onTime, ...late];
  const batches: GatewatchEvent[][] = [];
  for (let i = 0; i < order.length; i += size) batches.push(order.slice(i, i + size));
  const d: Delivery = { batches: batches.length, redelivered: 0, resent: 0, crashed: 0 };
  const store = (batch: GatewatchEvent[], id: string) =>
    storeBatch(es, structuredClone(batch), { prefix, batchId: id, partials: folder });
  for (const [i, batch] of batches.entries()) {
    const id = `${tag}-${i}`;
    if (i % 7 === 3) {
      // killed after the events were stored, before the partials: the queue redelivers it
      const copy = structuredClone(batch);
      for (const e of copy) {
        e.gatewatch ??= {} as NonNullable<GatewatchEvent['gatewatch']>;
        e.gatewatch.ingest = { batch: id };
      }
      await indexEvents(es, copy, { prefix });
      d.crashed++;
    }
    await store(batch, id);
    if (i % 5 === 1) {
      // delivered twice (a stalled job taken over by another worker)
      await store(batch, id);
      d.redelivered++;
    }
    if (i % 6 === 2) {
      // a client resends part of it in a new batch after a lost acknowledgement
      await store(batch.slice(0, Math.ceil(batch.length / 3)), `${tag}-resent-${i}`);
      d.resent++;
    }
  }
  await es.indices.refresh({ index: `${indexNames(prefix).eventsPattern},${indexNames(prefix).partials}` });
  return d;
}
