/**
 * A small bounded LRU cache on top of Map's insertion order. `get` refreshes recency only when
 * the entry is not already among the most recent ones, to keep hot-path hits cheap.
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

  /** The cached value; `undefined` both when absent and when undefined was cached (use `has`). */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined && !this.map.has(key)) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Refresh recency: move to the end. Cheap for Map (delete + set).
    if (this.map.size > 64) {
      this.map.delete(key);
      this.map.set(key, v as V);
    }
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
