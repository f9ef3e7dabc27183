/**
 * Mergeable sketches for per-endpoint state, all plain JSON:
 * - `DistinctSketch`: an exact set of value hashes up to `exactLimit`, then a HyperLogLog
 *   (2^10 registers, ≈ 3 % standard error) stored base64.
 * - `SizeHistogram`: a log-bucketed histogram (relative accuracy ≈ 4 %) for response sizes,
 *   mergeable exactly, with quantile estimates.
 * Merging is commutative and associative, so batches fold in any order.
 */

/** 53-bit string hash (cyrb53), stable across processes. */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

const P = 10;
const M = 1 << P;
const ALPHA = 0.7213 / (1 + 1.079 / M);

export interface DistinctSketchJSON {
  /** Exact hashes (while small). */
  e?: number[];
  /** HLL registers, base64 (once large). */
  h?: string;
}

export class DistinctSketch {
  private exact: Set<number> | null = new Set();
  private registers: Uint8Array | null = null;

  readonly exactLimit: number;

  constructor(exactLimit = 64) {
    this.exactLimit = exactLimit;
  }

  add(value: string): void {
    this.addHash(hash53(value));
  }

  private addHash(h: number): void {
    if (this.exact) {
      this.exact.add(h);
      if (this.exact.size > this.exactLimit) this.promote();
      return;
    }
    const regs = this.registers!;
    const idx = h % M;
    // remaining 43 bits: rank = leading zeros + 1
    let w = Math.floor(h / M);
    let rank = 1;
    while (rank <= 43 && (w & 1) === 0) {
      rank++;
      w = Math.floor(w / 2);
    }
    if (rank > regs[idx]!) regs[idx] = rank;
  }

  private promote(): void {
    const hashes = this.exact!;
    this.exact = null;
    this.registers = new Uint8Array(M);
    for (const h of hashes) this.addHash(h);
  }

  merge(other: DistinctSketch): this {
    if (other.exact) {
      for (const h of other.exact) this.addHash(h);
      return this;
    }
    if (this.exact) this.promote();
    const a = this.registers!;
    const b = other.registers!;
    for (let i = 0; i < M; i++) if (b[i]! > a[i]!) a[i] = b[i]!;
    return this;
  }

  estimate(): number {
    if (this.exact) return this.exact.size;
    const regs = this.registers!;
    let sum = 0;
    let zeros = 0;
    for (let i = 0; i < M; i++) {
      sum += 2 ** -regs[i]!;
      if (regs[i] === 0) zeros++;
    }
    const raw = (ALPHA * M * M) / sum;
    if (raw <= 2.5 * M && zeros > 0) return Math.round(M * Math.log(M / zeros));
    return Math.round(raw);
  }

  toJSON(): DistinctSketchJSON {
    if (this.exact) return { e: [...this.exact].sort((x, y) => x - y) };
    return { h: Buffer.from(this.registers!).toString('base64') };
  }

  static fromJSON(json: DistinctSketchJSON | undefined, exactLimit = 64): DistinctSketch {
    const s = new DistinctSketch(exactLimit);
    if (json?.h !== undefined) {
      s.exact = null;
      s.registers = new Uint8Array(M);
      s.registers.set(Buffer.from(json.h, 'base64').subarray(0, M));
    } else if (json?.e) {
      for (const h of json.e) s.addHash(h);
    }
    return s;
  }
}

/** Log-bucketed histogram: bucket k holds values in (γ^(k-1), γ^k]; bucket 0 holds 0. */
const GAMMA = 1.08;
const LOG_GAMMA = Math.log(GAMMA);
const MAX_BUCKETS = 256;

/** Sparse buckets: index → count. */
export type SizeHistogramJSON = Record<string, number>;

export function histAdd(h: SizeHistogramJSON, value: number, count = 1): void {
  const k = value <= 0 ? 0 : Math.max(1, Math.ceil(Math.log(value) / LOG_GAMMA));
  histAddBucket(h, String(k), count);
}

function histAddBucket(h: SizeHistogramJSON, key: string, count: number): void {
  h[key] = (h[key] ?? 0) + count;
  const keys = Object.keys(h);
  if (keys.length > MAX_BUCKETS) {
    // collapse the two lowest buckets (lose precision at the small end only)
    const sorted = keys.map(Number).sort((a, b) => a - b);
    const [lo, next] = [String(sorted[0]), String(sorted[1])];
    h[next] = (h[next] ?? 0) + (h[lo] ?? 0);
    delete h[lo];
  }
}

export function histMerge(into: SizeHistogramJSON, from: SizeHistogramJSON): SizeHistogramJSON {
  for (const [k, c] of Object.entries(from)) histAddBucket(into, k, c);
  return into;
}

export function histCount(h: SizeHistogramJSON): number {
  let n = 0;
  for (const c of Object.values(h)) n += c;
  return n;
}

/** Estimated q-quantile (0..1); undefined when empty. */
export function histQuantile(h: SizeHistogramJSON, q: number): number | undefined {
  const entries = Object.entries(h)
    .map(([k, c]) => [Number(k), c] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((n, [, c]) => n + c, 0);
  if (total === 0) return undefined;
  const rank = q * (total - 1);
  let seen = 0;
  for (const [k, c] of entries) {
    seen += c;
    if (seen > rank) return k === 0 ? 0 : Math.round((2 * GAMMA ** k) / (1 + GAMMA));
  }
  const last = entries[entries.length - 1]![0];
  return last === 0 ? 0 : Math.round((2 * GAMMA ** last) / (1 + GAMMA));
}
