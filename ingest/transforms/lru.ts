/**
 * A small bounded cache on top of Map's insertion order (FIFO eviction: cheap hits, bounded
 * memory; for the heavily skewed key sets of logs — user agents, client addresses — it behaves
 * like an LRU).
 *
 * String keys first go through a direct-mapped front table indexed by a hash of the length and a
 * few sampled characters, compared with `===`. A Map lookup hashes every character of a fresh
 * string (a user agent is 100+ characters, several hundred ns); the front table's slot costs a
 * handful of character reads and one memcmp. Cached values are pure functions of their key, so a
 * front entry outliving its Map entry still answers correctly; the table has a fixed size.
 */
const FRONT_BITS = 10;
const FRONT_MASK = (1 << FRONT_BITS) - 1;

/** Slot of a string key: length plus up to eight characters spread over it (head, middle, tail). */
function frontSlot(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  let h = n * 0x9e3779b1;
  h = Math.imul(h ^ s.charCodeAt(n - 1), 0x85ebca6b);
  h = Math.imul(h ^ s.charCodeAt(n >> 1), 0xc2b2ae35);
  h = Math.imul(h ^ s.charCodeAt(0), 0x27d4eb2f);
  if (n > 3) {
    h = Math.imul(h ^ s.charCodeAt(n - 2), 0x165667b1);
    h = Math.imul(h ^ s.charCodeAt(n - 3), 0x9e3779b1);
    h = Math.imul(h ^ s.charCodeAt(n >> 2), 0x85ebca6b);
    h = Math.imul(h ^ s.charCodeAt((3 * n) >> 2), 0xc2b2ae35);
    h = Math.imul(h ^ s.charCodeAt(n - 4), 0x27d4eb2f);
  }
  return (h ^ (h >>> 15)) & FRONT_MASK;
}

export class Lru<K, V> {
  readonly max: number;
  private readonly map = new Map<K, V>();
  private readonly frontKeys: unknown[] = new Array(FRONT_MASK + 1).fill(undefined);
  private readonly frontValues: (V | undefined)[] = new Array(FRONT_MASK + 1).fill(undefined);
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
    if (typeof key === 'string') {
      const slot = frontSlot(key);
      if (this.frontKeys[slot] === key) {
        this.hits++;
        return this.frontValues[slot];
      }
      const v = this.map.get(key);
      if (v === undefined) this.misses++;
      else {
        this.hits++;
        this.frontKeys[slot] = key;
        this.frontValues[slot] = v;
      }
      return v;
    }
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
    if (typeof key === 'string') {
      const slot = frontSlot(key);
      this.frontKeys[slot] = key;
      this.frontValues[slot] = value;
    }
  }

  stats(): { size: number; hits: number; misses: number } {
    return { size: this.map.size, hits: this.hits, misses: this.misses };
  }
}
