/**
 * Coalesces concurrent searches into `_msearch` requests.
 *
 * Elasticsearch spends a large, fixed amount of CPU on every search request (REST handling,
 * coordination, response building): on a 2-core machine a one-hit search costs about as much
 * as fetching fifty incidents. Under concurrent load, the API's listing searches are
 * therefore sent together: while `maxInFlight` requests are outstanding, new searches wait
 * and leave as one `_msearch` when a slot frees. A search issued while a slot is free leaves
 * at once (after the current I/O callbacks, so searches issued together travel together), so
 * an idle API answers with no added delay.
 *
 * Identical searches waiting in the same batch are sent once and share the answer. That is
 * safe because each of them was issued before the batch left: the answer reflects the index
 * as it was after every one of those callers asked, as their own search would. A search
 * already on the wire is never joined (it may predate a caller's own write).
 *
 * Answers are shared between callers that asked the same thing: treat them as read-only.
 */
import type { Client, estypes } from '@elastic/elasticsearch';

/** Body keys a batched search may carry; anything else (URL-only parameters) is sent on its own. */
const BODY_KEYS = new Set([
  'query',
  'size',
  'from',
  'sort',
  '_source',
  'track_total_hits',
  'search_after',
  'aggs',
  'aggregations',
  'fields',
  'docvalue_fields',
  'stored_fields',
  'collapse',
  'post_filter',
  'timeout',
  'terminate_after',
  'seq_no_primary_term',
  'version',
]);

interface Waiter {
  resolve(response: estypes.SearchResponse<unknown>): void;
  reject(err: unknown): void;
}
interface Pending {
  request: estypes.SearchRequest;
  waiters: Waiter[];
}

export interface SearchBatcherOptions {
  /** Requests (search or msearch) outstanding at once; later searches wait and are batched. */
  maxInFlight?: number;
  /** Searches per `_msearch`. */
  maxBatch?: number;
}

export class SearchBatcher {
  private readonly client: Client;
  private readonly maxInFlight: number;
  private readonly maxBatch: number;
  private readonly pending = new Map<string, Pending>();
  private inFlight = 0;
  private scheduled = false;
  /** Searches asked for and searches sent to Elasticsearch (their difference: shared answers). */
  readonly counts = { asked: 0, sent: 0, requests: 0 };

  constructor(client: Client, options: SearchBatcherOptions = {}) {
    this.client = client;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 2);
    this.maxBatch = Math.max(1, options.maxBatch ?? 32);
  }

  search<T>(request: estypes.SearchRequest): Promise<estypes.SearchResponse<T>> {
    this.counts.asked++;
    if (
      typeof request.index !== 'string' ||
      Object.keys(request).some((k) => k !== 'index' && !BODY_KEYS.has(k))
    ) {
      this.counts.sent++;
      this.counts.requests++;
      return this.client.search<T>(request);
    }
    const key = JSON.stringify(request);
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject } as Waiter;
      const same = this.pending.get(key);
      if (same) same.waiters.push(waiter);
      else this.pending.set(key, { request, waiters: [waiter] });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.pending.size === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.inFlight >= this.maxInFlight || this.pending.size === 0) return;
    const batch: Pending[] = [];
    for (const [key, entry] of this.pending) {
      this.pending.delete(key);
      batch.push(entry);
      if (batch.length >= this.maxBatch) break;
    }
    this.inFlight++;
    this.counts.sent += batch.length;
    this.counts.requests++;
    const done = batch.length === 1 ? this.sendOne(batch[0]!) : this.sendMany(batch);
    void done.finally(() => {
      this.inFlight--;
      this.schedule();
    });
  }

  private async sendOne(entry: Pending): Promise<void> {
    try {
      const response = await this.client.search(entry.request);
      for (const w of entry.waiters) w.resolve(response);
    } catch (err) {
      for (const w of entry.waiters) w.reject(err);
    }
  }

  private async sendMany(batch: Pending[]): Promise<void> {
    const searches: estypes.MsearchRequestItem[] = [];
    for (const { request } of batch) {
      const { index, ...body } = request;
      searches.push({ index: index as string }, body as estypes.SearchSearchRequestBody);
    }
    let responses: estypes.MsearchResponseItem[];
    try {
      responses = (await this.client.msearch({ searches })).responses;
    } catch (err) {
      for (const entry of batch) for (const w of entry.waiters) w.reject(err);
      return;
    }
    const failed: Pending[] = [];
    batch.forEach((entry, i) => {
      const item = responses[i];
      if (!item || 'error' in item) failed.push(entry);
      else for (const w of entry.waiters) w.resolve(item as estypes.SearchResponse<unknown>);
    });
    // A failed item is retried alone, so its caller gets the same error (type, status, body)
    // a direct search gives; failures are the rare path.
    await Promise.all(failed.map((entry) => this.sendOne(entry)));
  }
}
