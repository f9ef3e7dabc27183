/**
 * A minimal MaxMind DB (MMDB v2) writer for IPv4 prefixes: enough to build the scenario's
 * GeoIP City and ASN databases, readable by the `maxmind` package the GeoIP enricher uses.
 * Format: https://maxmind.github.io/MaxMind-DB/ (24-bit records, ip_version 4).
 */
import { NETWORKS, parseCidr } from './network.ts';

type Value = string | number | boolean | Value[] | { [k: string]: Value };

/** Numbers: integers become uint16/uint32 (or uint64 when larger); others doubles. */
function encode(v: Value, out: number[]): void {
  const ctrl = (type: number, size: number) => {
    const ext = type > 7;
    const first = ext ? 0 : type << 5;
    if (size < 29) {
      out.push(first | size);
      if (ext) out.push(type - 7);
    } else if (size < 285) {
      out.push(first | 29);
      if (ext) out.push(type - 7);
      out.push(size - 29);
    } else if (size < 65821) {
      out.push(first | 30);
      if (ext) out.push(type - 7);
      const s = size - 285;
      out.push((s >> 8) & 255, s & 255);
    } else {
      out.push(first | 31);
      if (ext) out.push(type - 7);
      const s = size - 65821;
      out.push((s >> 16) & 255, (s >> 8) & 255, s & 255);
    }
  };
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    ctrl(2, b.length);
    for (const x of b) out.push(x);
  } else if (typeof v === 'boolean') {
    ctrl(14, v ? 1 : 0);
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) {
      const bytes: number[] = [];
      let n = v;
      while (n > 0) {
        bytes.unshift(n & 255);
        n = Math.floor(n / 256);
      }
      ctrl(v <= 0xffff ? 5 : 6, bytes.length);
      out.push(...bytes);
    } else {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      ctrl(3, 8);
      for (const x of b) out.push(x);
    }
  } else if (Array.isArray(v)) {
    ctrl(11, v.length);
    for (const x of v) encode(x, out);
  } else {
    const keys = Object.keys(v);
    ctrl(7, keys.length);
    for (const k of keys) {
      encode(k, out);
      encode(v[k]!, out);
    }
  }
}

export interface MmdbEntry {
  cidr: string;
  data: { [k: string]: Value };
}

/** Build an IPv4 MMDB. Prefixes must not overlap. */
export function writeMmdb(
  entries: MmdbEntry[],
  meta: { databaseType: string; description: string; buildEpoch: number },
): Buffer {
  // Binary trie: node = [left, right]; a value is a node index (>= 0), EMPTY or a data ref.
  const EMPTY = -1;
  const nodes: [number, number][] = [[EMPTY, EMPTY]];
  const dataRefs: number[] = []; // leaf id → data section offset
  const leafBase = -1_000_000_000; // leaf ids are encoded as leafBase - index
  const data: number[] = [];
  const cache = new Map<string, number>();
  for (const e of entries) {
    const key = JSON.stringify(e.data);
    let off = cache.get(key);
    if (off === undefined) {
      off = data.length;
      encode(e.data, data);
      cache.set(key, off);
    }
    dataRefs.push(off);
    const leaf = leafBase - (dataRefs.length - 1);
    const { base, len } = parseCidr(e.cidr);
    let node = 0;
    for (let i = 0; i < len; i++) {
      const bit = (base >>> (31 - i)) & 1;
      if (i === len - 1) {
        nodes[node]![bit] = leaf;
        break;
      }
      let next = nodes[node]![bit];
      if (next === EMPTY) {
        nodes.push([EMPTY, EMPTY]);
        next = nodes.length - 1;
        nodes[node]![bit] = next;
      } else if (next! < 0) throw new Error(`overlapping prefix ${e.cidr}`);
      node = next!;
    }
  }
  const nodeCount = nodes.length;
  const record = (v: number): number => {
    if (v === EMPTY) return nodeCount;
    if (v >= 0) return v;
    return nodeCount + 16 + dataRefs[leafBase - v]!;
  };
  const tree = Buffer.alloc(nodeCount * 6);
  nodes.forEach(([l, r], i) => {
    tree.writeUIntBE(record(l), i * 6, 3);
    tree.writeUIntBE(record(r), i * 6 + 3, 3);
  });
  const metaBytes: number[] = [];
  encode(
    {
      binary_format_major_version: 2,
      binary_format_minor_version: 0,
      build_epoch: meta.buildEpoch,
      database_type: meta.databaseType,
      description: { en: meta.description },
      ip_version: 4,
      languages: ['en'],
      node_count: nodeCount,
      record_size: 24,
    },
    metaBytes,
  );
  return Buffer.concat([
    tree,
    Buffer.alloc(16),
    Buffer.from(data),
    Buffer.from([0xab, 0xcd, 0xef]),
    Buffer.from('MaxMind.com', 'ascii'),
    Buffer.from(metaBytes),
  ]);
}

/** GeoIP2-City-shaped and ASN databases for the scenario's networks (see network.ts). */
export function scenarioDatabases(buildEpoch: number): { city: Buffer; asn: Buffer } {
  const cityEntries: MmdbEntry[] = [];
  const asnEntries: MmdbEntry[] = [];
  for (const n of NETWORKS) {
    for (const cidr of n.prefixes) {
      cityEntries.push({
        cidr,
        data: {
          city: { names: { en: n.city.name } },
          country: { iso_code: n.country, names: { en: n.countryName } },
          location: { latitude: n.city.lat, longitude: n.city.lon, accuracy_radius: 50 },
          subdivisions: [{ names: { en: n.city.region } }],
        },
      });
      asnEntries.push({
        cidr,
        data: { autonomous_system_number: n.asn, autonomous_system_organization: n.org },
      });
    }
  }
  return {
    city: writeMmdb(cityEntries, {
      databaseType: 'GeoIP2-City',
      description: 'Gatewatch sample scenario GeoIP (synthetic)',
      buildEpoch,
    }),
    asn: writeMmdb(asnEntries, {
      databaseType: 'GeoLite2-ASN',
      description: 'Gatewatch sample scenario ASN (synthetic)',
      buildEpoch,
    }),
  };
}
