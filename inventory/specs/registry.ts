/**
 * Imported specs, versioned per key (a host or a service name). Every import of a changed
 * document under the same key adds a version; the highest version is current, older ones
 * stay so that "removed" operations (in an older version, not in the current one) can be
 * told apart from operations that never existed.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { ensureIndex } from '../../core/store/elasticsearch.ts';
import { stableId } from '../state.ts';
import { type NormalizedSpec, normalizeSpec } from './openapi.ts';
import { parseSpecText } from './parse.ts';

export interface ImportedSpec extends NormalizedSpec {
  /** stableId(key, version). */
  id: string;
  /** Host or service the spec describes; versions share a key. */
  key: string;
  /** Hosts it applies to (empty: every host). */
  hosts: string[];
  service?: string;
  version: number;
  imported_at: string;
  /** File name or upload label. */
  source?: string;
}

export interface SpecStore {
  install(): Promise<void>;
  list(): Promise<ImportedSpec[]>;
  put(spec: ImportedSpec): Promise<void>;
  delete(id: string): Promise<boolean>;
}

export interface ImportOptions {
  /** Key to version under (default: service, else the first host, else the title). */
  key?: string;
  /** Hosts the spec applies to; default: hosts named by servers/host; none = every host. */
  hosts?: string[];
  service?: string;
  source?: string;
  /** Import time (default now). */
  now?: Date;
}

export interface ImportResult {
  spec: ImportedSpec;
  /** false when the document is identical to the current version of its key. */
  created: boolean;
}

/** Parse, validate and store a spec document (JSON or YAML). Throws `SpecInvalidError`. */
export async function importSpec(
  store: SpecStore,
  text: string,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const normalized = normalizeSpec(parseSpecText(text));
  const hosts = (options.hosts ?? normalized.hosts).map((h) => h.toLowerCase()).sort();
  const key = (options.key ?? options.service ?? hosts[0] ?? normalized.title).toLowerCase();
  const versions = (await store.list()).filter((s) => s.key === key).sort((a, b) => b.version - a.version);
  const current = versions[0];
  if (current && current.digest === normalized.digest && current.hosts.join() === hosts.join()) {
    return { spec: current, created: false };
  }
  const version = (current?.version ?? 0) + 1;
  const spec: ImportedSpec = {
    ...normalized,
    id: stableId('spec', key, String(version)),
    key,
    hosts,
    ...(options.service ? { service: options.service } : {}),
    version,
    imported_at: (options.now ?? new Date()).toISOString(),
    ...(options.source ? { source: options.source } : {}),
  };
  await store.put(spec);
  return { spec, created: true };
}

export interface MemorySpecJSON {
  version: 1;
  specs: ImportedSpec[];
}

export class MemorySpecStore implements SpecStore {
  private readonly specs = new Map<string, ImportedSpec>();
  async install(): Promise<void> {}
  async list(): Promise<ImportedSpec[]> {
    return [...this.specs.values()].map((s) => structuredClone(s));
  }
  async put(spec: ImportedSpec): Promise<void> {
    this.specs.set(spec.id, structuredClone(spec));
  }
  async delete(id: string): Promise<boolean> {
    return this.specs.delete(id);
  }
  toJSON(): MemorySpecJSON {
    return { version: 1, specs: [...this.specs.values()] };
  }
  static fromJSON(json: MemorySpecJSON): MemorySpecStore {
    const s = new MemorySpecStore();
    for (const spec of json.specs) s.specs.set(spec.id, structuredClone(spec));
    return s;
  }
}

export class ElasticsearchSpecStore implements SpecStore {
  readonly index: string;
  private readonly es: Client;
  constructor(es: Client, prefix: string) {
    this.es = es;
    this.index = `${prefix}-inventory-specs`;
  }
  async install(): Promise<void> {
    const mappings: estypes.MappingTypeMapping = {
      dynamic: false,
      properties: {
        id: { type: 'keyword' },
        key: { type: 'keyword' },
        hosts: { type: 'keyword' },
        service: { type: 'keyword' },
        version: { type: 'integer' },
        imported_at: { type: 'date' },
        title: { type: 'keyword' },
        format: { type: 'keyword' },
        operations: { type: 'object', enabled: false },
      },
    };
    await ensureIndex(this.es, this.index, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings,
    });
  }
  async list(): Promise<ImportedSpec[]> {
    const out: ImportedSpec[] = [];
    let after: estypes.SortResults | undefined;
    for (;;) {
      const res = await this.es.search<ImportedSpec>({
        index: this.index,
        size: 500,
        sort: [{ id: 'asc' }],
        ...(after ? { search_after: after } : {}),
        track_total_hits: false,
      });
      for (const h of res.hits.hits) out.push(h._source!);
      if (res.hits.hits.length < 500) return out;
      after = res.hits.hits[res.hits.hits.length - 1]!.sort;
    }
  }
  async put(spec: ImportedSpec): Promise<void> {
    // create: two concurrent imports of the same key and version cannot both win
    await this.es.create({ index: this.index, id: spec.id, document: spec, refresh: 'wait_for' });
  }
  async delete(id: string): Promise<boolean> {
    const r = await this.es.delete({ index: this.index, id, refresh: 'wait_for' }, { ignore: [404] });
    return r.result === 'deleted';
  }
}
