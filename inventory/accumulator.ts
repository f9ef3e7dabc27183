/**
 * Folds batches of events into per-endpoint deltas and flushes them into an
 * `InventoryStore`. Ingest workers call `add(events)` per batch and `flush()` periodically
 * (or let `maxPending` trigger it). Nothing rescans stored events.
 */
import type { GatewatchEvent } from '../core/schema/event.ts';
import { type EndpointState, emptyState, endpointId, LiveState, mergeState } from './state.ts';
import type { InventoryStore } from './store.ts';

export interface AccumulatorOptions {
  /** Flush automatically once this many distinct endpoints are pending (default 5000). */
  maxPending?: number;
}

export interface FlushResult {
  endpoints: number;
  events: number;
}

type EventLike = Partial<GatewatchEvent> & Record<string, unknown>;

function get(e: EventLike, path: string): unknown {
  // Events are nested objects; tolerate dotted keys too (flattened sources).
  if (path in e) return e[path];
  let cur: unknown = e;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export class InventoryAccumulator {
  private pending = new Map<string, LiveState>();
  private pendingEvents = 0;
  private flushing: Promise<FlushResult> | null = null;
  private readonly maxPending: number;
  /** Events skipped because they had no route or method. */
  skipped = 0;

  private readonly store: InventoryStore;

  constructor(store: InventoryStore, options: AccumulatorOptions = {}) {
    this.store = store;
    this.maxPending = options.maxPending ?? 5000;
  }

  /**
   * Fold a batch (synchronous, no I/O). Returns true when `maxPending` distinct endpoints are
   * pending: the caller should `await flush()` soon.
   */
  add(events: readonly EventLike[]): boolean {
    for (const e of events) {
      const route = get(e, 'gatewatch.route');
      const method = get(e, 'http.request.method');
      if (typeof route !== 'string' || typeof method !== 'string' || route === '') {
        this.skipped++;
        continue;
      }
      const host = (get(e, 'url.domain') ?? get(e, 'destination.domain') ?? '') as string;
      const at = (get(e, '@timestamp') as string | undefined) ?? new Date().toISOString();
      const id = endpointId(host, method, route);
      let live = this.pending.get(id);
      if (!live) {
        live = new LiveState(emptyState(host, method, route, at));
        this.pending.set(id, live);
      } else if (!live.state.route_variants.includes(route) && live.state.route_variants.length < 8) {
        live.state.route_variants.push(route);
      }
      const status = get(e, 'http.response.status_code');
      const bytes = get(e, 'http.response.bytes');
      const auth = get(e, 'gatewatch.auth.present');
      const params = get(e, 'gatewatch.query_params');
      live.observe({
        at,
        ...(typeof status === 'number' ? { status } : {}),
        ...(typeof auth === 'boolean' ? { authPresent: auth } : {}),
        ...(typeof get(e, 'source.ip') === 'string' ? { client: get(e, 'source.ip') as string } : {}),
        ...(typeof get(e, 'gatewatch.api_key.fingerprint') === 'string'
          ? { key: get(e, 'gatewatch.api_key.fingerprint') as string }
          : {}),
        ...(typeof bytes === 'number' ? { bytes } : {}),
        ...(Array.isArray(params) ? { params: params as string[] } : {}),
      });
      this.pendingEvents++;
    }
    return this.flushDue;
  }

  get flushDue(): boolean {
    return this.pending.size >= this.maxPending;
  }

  /** Endpoints waiting to be flushed. */
  get pendingEndpoints(): number {
    return this.pending.size;
  }

  /** Merge everything pending into the store. Concurrent calls chain. On failure the deltas are kept. */
  async flush(): Promise<FlushResult> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.pending.size === 0) return { endpoints: 0, events: 0 };
    const batch = this.pending;
    const events = this.pendingEvents;
    this.pending = new Map();
    this.pendingEvents = 0;
    const deltas: EndpointState[] = [...batch.values()].map((l) => l.seal());
    this.flushing = this.store
      .merge(deltas)
      .then(() => ({ endpoints: deltas.length, events }))
      .catch((err: unknown) => {
        // put the deltas back (merged with anything added meanwhile) and rethrow
        for (const d of deltas) {
          const cur = this.pending.get(d.id);
          this.pending.set(d.id, new LiveState(cur ? mergeState(d, cur.seal()) : d));
        }
        this.pendingEvents += events;
        throw err;
      })
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }
}
