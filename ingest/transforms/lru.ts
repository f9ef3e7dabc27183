/**
 * A small bounded cache on top of Map's insertion order (FIFO eviction: cheap hits, bounded
 * memory; for the heavily skewed key sets of logs — user agents, client addresses — it behaves
 * like an LRU).
 */
export class Lru<K, V> {
  readonly max: number;
  private readonly map = new Map<K, V>();
  private hits = 0;
  private misses = 0;

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * The cached value; `undefined` when absent (cache `null`, not `undefined`, for negative
   * results). Hits do not reorder entries: eviction is first-in-first-out, which keeps hits to
   * one Map lookup; hot keys evicted by churn come straight back on the next miss.
   */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): void {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
  }

  stats(): { size: number; hits: number; misses: number } {
    return { size: this.map.size, hits: this.hits, misses: this.misses };
  }
}
