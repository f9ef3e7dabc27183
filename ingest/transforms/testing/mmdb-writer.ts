/**
 * A minimal MaxMind DB (MMDB v2) writer for tests: an IPv6 binary search tree with 24-bit
 * records (IPv4 networks are stored under ::/96, as MaxMind's own databases do), a data section
 * without pointers, and the metadata map. Enough to build GeoIP City / ASN style databases
 * that the real `maxmind` Reader opens. Spec: https://maxmind.github.io/MaxMind-DB/
 */
import ipaddr from 'ipaddr.js';

export type MmdbValue = string | number | boolean | MmdbValue[] | { [key: string]: MmdbValue } | Uint64;

/** Wrap a value to force the uint64 type (e.g. build_epoch). */
export class Uint64 {
  readonly value: bigint;
  constructor(value: bigint | number) {
    this.value = BigInt(value);
  }
}

export interface MmdbEntry {
  /** CIDR, e.g. "203.0.113.0/24" or "2001:db8::/32". */
  network: string;
  data: MmdbValue;
}

export interface MmdbOptions {
  databaseType: string;
  languages?: string[];
  description?: Record<string, string>;
  buildEpoch?: number;
}

const T = {
  pointer: 1,
  utf8: 2,
  double: 3,
  bytes: 4,
  uint16: 5,
  uint32: 6,
  map: 7,
  int32: 8,
  uint64: 9,
  array: 11,
  boolean: 14,
};

function control(type: number, size: number): Buffer {
  const parts: number[] = [];
  let sizeBits: number;
  const ext: number[] = [];
  if (size < 29) sizeBits = size;
  else if (size < 29 + 256) {
    sizeBits = 29;
    ext.push(size - 29);
  } else if (size < 285 + 65536) {
    sizeBits = 30;
    const s = size - 285;
    ext.push(s >> 8, s & 0xff);
  } else {
    sizeBits = 31;
    const s = size - 65821;
    ext.push((s >> 16) & 0xff, (s >> 8) & 0xff, s & 0xff);
  }
  if (type <= 7) parts.push((type << 5) | sizeBits);
  else parts.push(sizeBits, type - 7);
  return Buffer.from([...parts, ...ext]);
}

function uintBytes(n: bigint): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v > 0n) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return Buffer.from(bytes);
}

/** Encode one value of the data section. */
export function encodeValue(v: MmdbValue): Buffer {
  if (v instanceof Uint64) {
    const b = uintBytes(v.value);
    return Buffer.concat([control(T.uint64, b.length), b]);
  }
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([control(T.utf8, b.length), b]);
  }
  if (typeof v === 'boolean') return control(T.boolean, v ? 1 : 0);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v < 2 ** 32) {
      const b = uintBytes(BigInt(v));
      return Buffer.concat([control(v < 65536 ? T.uint16 : T.uint32, b.length), b]);
    }
    if (Number.isInteger(v) && v < 0 && v >= -(2 ** 31)) {
      const b = Buffer.alloc(4);
      b.writeInt32BE(v);
      return Buffer.concat([control(T.int32, 4), b]);
    }
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return Buffer.concat([control(T.double, 8), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([control(T.array, v.length), ...v.map(encodeValue)]);
  const keys = Object.keys(v);
  const parts: Buffer[] = [control(T.map, keys.length)];
  for (const k of keys) parts.push(encodeValue(k), encodeValue(v[k]!));
  return Buffer.concat(parts);
}

interface Node {
  children: [Node | Leaf | undefined, Node | Leaf | undefined];
  index?: number;
}
interface Leaf {
  offset: number;
}

function isNode(x: Node | Leaf | undefined): x is Node {
  return x !== undefined && 'children' in x;
}

function networkBits(cidr: string): { bits: number[]; prefix: number } {
  const [addr, len] = ipaddr.parseCIDR(cidr);
  let bytes: number[];
  let prefix = len;
  if (addr.kind() === 'ipv4') {
    bytes = [...new Array(12).fill(0), ...addr.toByteArray()];
    prefix += 96;
  } else bytes = addr.toByteArray();
  const bits: number[] = [];
  for (const b of bytes) for (let i = 7; i >= 0; i--) bits.push((b >> i) & 1);
  return { bits, prefix };
}

/** Build an MMDB file (IPv6 tree, record size 24). Later entries win where networks overlap. */
export function writeMmdb(entries: readonly MmdbEntry[], options: MmdbOptions): Buffer {
  const dataParts: Buffer[] = [];
  let dataSize = 0;
  const root: Node = { children: [undefined, undefined] };
  for (const e of entries) {
    const encoded = encodeValue(e.data);
    const leaf: Leaf = { offset: dataSize };
    dataParts.push(encoded);
    dataSize += encoded.length;
    const { bits, prefix } = networkBits(e.network);
    if (prefix === 0) throw new Error('a /0 network is not supported');
    let node = root;
    for (let depth = 0; depth < prefix - 1; depth++) {
      const bit = bits[depth]!;
      let next = node.children[bit];
      if (!isNode(next)) {
        const fill = next; // an existing leaf covering this range is pushed down
        next = { children: [fill, fill] };
        node.children[bit] = next;
      }
      node = next;
    }
    node.children[bits[prefix - 1]!] = leaf;
  }
  // number the nodes breadth-first (root = 0)
  const nodes: Node[] = [];
  const queue: Node[] = [root];
  while (queue.length > 0) {
    const n = queue.shift()!;
    n.index = nodes.length;
    nodes.push(n);
    for (const c of n.children) if (isNode(c)) queue.push(c);
  }
  const nodeCount = nodes.length;
  const tree = Buffer.alloc(nodeCount * 6);
  const record = (x: Node | Leaf | undefined): number =>
    x === undefined ? nodeCount : isNode(x) ? x.index! : nodeCount + 16 + x.offset;
  for (const n of nodes) {
    const base = n.index! * 6;
    const l = record(n.children[0]);
    const r = record(n.children[1]);
    if (l >= 2 ** 24 || r >= 2 ** 24) throw new Error('database too large for 24-bit records');
    tree.writeUIntBE(l, base, 3);
    tree.writeUIntBE(r, base + 3, 3);
  }
  const metadata = encodeValue({
    node_count: nodeCount,
    record_size: 24,
    ip_version: 6,
    database_type: options.databaseType,
    languages: options.languages ?? ['en'],
    binary_format_major_version: 2,
    binary_format_minor_version: 0,
    build_epoch: new Uint64(options.buildEpoch ?? 1_704_067_200),
    description: options.description ?? { en: 'Gatewatch test database' },
  });
  return Buffer.concat([
    tree,
    Buffer.alloc(16),
    ...dataParts,
    Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'),
    metadata,
  ]);
}
