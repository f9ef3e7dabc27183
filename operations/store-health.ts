/**
 * Elasticsearch's health and disks, as the processes that write to it need to know them.
 *
 * Elasticsearch guards its disks with three watermarks: past the low one it allocates no new
 * shards to a node, past the high one it moves shards away, past the flood stage it makes every
 * index with a shard on that node read-only (writes then fail with a cluster block until space
 * returns, when it lifts the block itself). Gatewatch reads the same thresholds and each data
 * node's free space, and acts one step earlier:
 *
 *   - past the low watermark: a warning (health, metrics, one log line);
 *   - past the high watermark, or any Gatewatch index blocked: push back — ingest endpoints
 *     answer 429 with Retry-After, pull sources and listeners pause reading, ingest workers stop
 *     taking batches (they stay queued in Redis) — so writes are not refused and retried;
 *   - flood stage or blocked indices: detection workers pause too (their writes would fail);
 *   - when space returns, everything resumes by itself at the next check.
 *
 * With `cluster.routing.allocation.disk.threshold_enabled: false` Elasticsearch never blocks
 * indices for disk, so Gatewatch only warns (unless an index is blocked anyway).
 */
import type { Client } from '@elastic/elasticsearch';
import { getOrCreateGauge } from '../api/metrics.ts';

export type DiskLevel = 'ok' | 'low' | 'high' | 'flood';
const LEVELS: DiskLevel[] = ['ok', 'low', 'high', 'flood'];

export interface NodeDisk {
  name: string;
  total_bytes: number;
  available_bytes: number;
  used_ratio: number;
  /** Free space below which each watermark is passed on this node (bytes). */
  free_below: { low: number; high: number; flood_stage: number };
  level: DiskLevel;
}

export interface StoreHealth {
  /** When this was read (epoch ms). */
  at: number;
  reachable: boolean;
  error?: string;
  cluster?: {
    name: string;
    status: 'green' | 'yellow' | 'red';
    nodes: number;
    data_nodes: number;
    unassigned_shards: number;
    active_shards_percent: number;
  };
  /** Elasticsearch's disk-based protection (cluster.routing.allocation.disk.threshold_enabled). */
  threshold_enabled: boolean;
  watermarks: { low: string; high: string; flood_stage: string };
  nodes: NodeDisk[];
  /** Gatewatch indices with a read-only block (the flood stage's, or set by hand). */
  blocked: string[];
  /** The worst node's level. */
  level: DiskLevel;
  /** Why senders should wait now (push-back), or undefined. */
  push_back?: string;
  /** Why writes would fail now (flood stage, blocked indices), or undefined. */
  writes_blocked?: string;
}

/** '85%', '0.85', '500mb', '100gb', '-1' → a used ratio, a number of bytes, or nothing. */
export function parseWatermark(value: string | undefined): { ratio: number } | { bytes: number } | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === '' || v === '-1') return undefined;
  const pct = /^([0-9.]+)%$/.exec(v);
  if (pct) return { ratio: Number(pct[1]) / 100 };
  if (/^[0-9.]+$/.test(v)) return { ratio: Number(v) };
  const bytes = parseBytes(v);
  return bytes === undefined ? undefined : { bytes };
}

export function parseBytes(value: string): number | undefined {
  const m = /^([0-9.]+)\s*(b|kb|k|mb|m|gb|g|tb|t|pb|p)?$/.exec(value.trim().toLowerCase());
  if (!m) return undefined;
  const unit = (m[2] ?? 'b')[0]!;
  const power = { b: 0, k: 1, m: 2, g: 3, t: 4, p: 5 }[unit as 'b' | 'k' | 'm' | 'g' | 't' | 'p'];
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/**
 * Free space below which a watermark is passed on a disk of `total` bytes: a byte value is the
 * free space itself; a ratio leaves (1 − ratio) of the disk free, capped by the max headroom.
 */
export function freeBelow(watermark: string, headroom: string | undefined, total: number): number {
  const w = parseWatermark(watermark);
  if (w === undefined) return 0;
  if ('bytes' in w) return w.bytes;
  const byRatio = total * (1 - w.ratio);
  const cap = headroom === undefined ? undefined : parseWatermark(headroom);
  return cap !== undefined && 'bytes' in cap ? Math.min(byRatio, cap.bytes) : byRatio;
}

const DISK = 'cluster.routing.allocation.disk.';

/** One reading of the cluster: health, watermarks, every data node's disk, blocked indices. */
export async function readStoreHealth(es: Client, prefix: string, now = Date.now()): Promise<StoreHealth> {
  const empty = {
    at: now,
    threshold_enabled: true,
    watermarks: { low: '85%', high: '90%', flood_stage: '95%' },
    nodes: [],
    blocked: [],
    level: 'ok' as DiskLevel,
  };
  let health: Awaited<ReturnType<Client['cluster']['health']>>;
  try {
    health = await es.cluster.health({ timeout: '5s' });
  } catch (err) {
    return { ...empty, reachable: false, error: (err as Error).message };
  }
  const [settings, stats, blocks] = await Promise.all([
    // Not flat_settings: filter_path cannot match flat keys (they hold dots); flattened below.
    es.cluster.getSettings({ include_defaults: true, filter_path: ['*.cluster.routing.allocation.disk'] }),
    es.nodes.stats({ metric: ['fs'], filter_path: ['nodes.*.name', 'nodes.*.roles', 'nodes.*.fs.total'] }),
    es.indices.getSettings({
      index: `${prefix}-*`,
      name: 'index.blocks.*',
      flat_settings: true,
      ignore_unavailable: true,
      allow_no_indices: true,
    }),
  ]);
  const layers = settings as unknown as Record<string, unknown>;
  const flat = Object.fromEntries(
    ['transient', 'persistent', 'defaults'].map((layer) => [layer, flatten(layers[layer])]),
  );
  const setting = (key: string): string | undefined =>
    flat.transient![DISK + key] ?? flat.persistent![DISK + key] ?? flat.defaults![DISK + key];
  const watermarks = {
    low: setting('watermark.low') ?? '85%',
    high: setting('watermark.high') ?? '90%',
    flood_stage: setting('watermark.flood_stage') ?? '95%',
  };
  const thresholdEnabled = (setting('threshold_enabled') ?? 'true') !== 'false';
  const nodes: NodeDisk[] = [];
  for (const node of Object.values(
    (
      stats as {
        nodes?: Record<string, { name: string; roles?: string[]; fs?: { total?: Record<string, number> } }>;
      }
    ).nodes ?? {},
  )) {
    if (node.roles && !node.roles.some((r) => r.startsWith('data'))) continue;
    const total = node.fs?.total?.total_in_bytes ?? 0;
    const available = node.fs?.total?.available_in_bytes ?? 0;
    if (total <= 0) continue;
    const free_below = {
      low: freeBelow(watermarks.low, setting('watermark.low.max_headroom'), total),
      high: freeBelow(watermarks.high, setting('watermark.high.max_headroom'), total),
      flood_stage: freeBelow(watermarks.flood_stage, setting('watermark.flood_stage.max_headroom'), total),
    };
    const level: DiskLevel =
      available < free_below.flood_stage
        ? 'flood'
        : available < free_below.high
          ? 'high'
          : available < free_below.low
            ? 'low'
            : 'ok';
    nodes.push({
      name: node.name,
      total_bytes: total,
      available_bytes: available,
      used_ratio: (total - available) / total,
      free_below,
      level,
    });
  }
  const blocked = Object.entries(blocks)
    .filter(([, v]) => {
      const flat = (v as { settings?: Record<string, string> }).settings ?? {};
      return (
        flat['index.blocks.read_only_allow_delete'] === 'true' || flat['index.blocks.read_only'] === 'true'
      );
    })
    .map(([index]) => index)
    .sort();
  const level = nodes.reduce<DiskLevel>(
    (worst, n) => (LEVELS.indexOf(n.level) > LEVELS.indexOf(worst) ? n.level : worst),
    'ok',
  );
  const fullest = [...nodes].sort((a, b) => b.used_ratio - a.used_ratio)[0];
  const where = fullest
    ? `node ${fullest.name} is ${(fullest.used_ratio * 100).toFixed(1)} % full (${gib(fullest.available_bytes)} free)`
    : '';
  let push_back: string | undefined;
  let writes_blocked: string | undefined;
  if (blocked.length > 0) {
    writes_blocked = `Elasticsearch has made ${blocked.length} Gatewatch ${blocked.length === 1 ? 'index' : 'indices'} read-only (${blocked.slice(0, 3).join(', ')}${blocked.length > 3 ? ', …' : ''})${where ? `; ${where}` : ''}`;
    push_back = writes_blocked;
  } else if (thresholdEnabled && level === 'flood') {
    writes_blocked = `Elasticsearch disk past the flood-stage watermark (${watermarks.flood_stage}): ${where}`;
    push_back = writes_blocked;
  } else if (thresholdEnabled && level === 'high') {
    push_back = `Elasticsearch disk past the high watermark (${watermarks.high}): ${where}`;
  }
  return {
    at: now,
    reachable: true,
    cluster: {
      name: health.cluster_name,
      status: health.status.toLowerCase() as 'green' | 'yellow' | 'red',
      nodes: health.number_of_nodes,
      data_nodes: health.number_of_data_nodes,
      unassigned_shards: health.unassigned_shards,
      active_shards_percent: Number(health.active_shards_percent_as_number ?? 100),
    },
    threshold_enabled: thresholdEnabled,
    watermarks,
    nodes,
    blocked,
    level,
    ...(push_back ? { push_back } : {}),
    ...(writes_blocked ? { writes_blocked } : {}),
  };
}

/** Nested settings as `a.b.c` → value (Elasticsearch nests some keys and leaves dots in others). */
function flatten(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value === null || typeof value !== 'object') {
    if (prefix) out[prefix] = String(value);
    return out;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>))
    flatten(v, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

export function gib(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** What to do about a disk that fills up (status and logs say it). */
export const DISK_ACTION =
  'free disk space on the Elasticsearch nodes: shorten retention.events (the lifecycle deletes older indices at its next run), delete indices by hand, add disk or a data node';

const diskUsed = getOrCreateGauge(
  'gatewatch_elasticsearch_disk_used_ratio',
  'Used share of each Elasticsearch data node’s disk.',
  ['node'],
);
const diskLevel = getOrCreateGauge(
  'gatewatch_elasticsearch_disk_watermark',
  'Worst disk watermark passed on a data node: 0 none, 1 low, 2 high (Gatewatch pushes back), 3 flood stage (Elasticsearch blocks writes).',
);
const clusterStatus = getOrCreateGauge(
  'gatewatch_elasticsearch_cluster_status',
  'Elasticsearch cluster health: 0 green, 1 yellow, 2 red, -1 unreachable.',
);
const pushingBack = getOrCreateGauge(
  'gatewatch_elasticsearch_push_back',
  '1 while Gatewatch pushes back on senders because of Elasticsearch disk space or blocked indices.',
);

export interface StoreHealthWatchOptions {
  es: Client;
  prefix: string;
  intervalMs: number;
  /** Where state changes are said (default: console.warn). */
  log?: (line: string) => void;
}

/**
 * Reads the store's health every `intervalMs` and tells listeners when push-back starts or ends.
 * An unreachable cluster is not a reason to push back here (writes fail and are retried by the
 * callers; the queue's own limits apply).
 */
export class StoreHealthWatch {
  private readonly options: StoreHealthWatchOptions;
  private last: StoreHealth | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: ((health: StoreHealth) => void)[] = [];
  private reading: Promise<StoreHealth> | undefined;

  constructor(options: StoreHealthWatchOptions) {
    this.options = options;
  }

  /** The last reading (undefined before the first). */
  current(): StoreHealth | undefined {
    return this.last;
  }

  /** Why senders should wait, from the last reading. */
  pushBack(): string | undefined {
    return this.last?.push_back;
  }

  /** Why writes would fail now, from the last reading. */
  writesBlocked(): string | undefined {
    return this.last?.writes_blocked;
  }

  /** Called after every reading whose push-back or write block changed. */
  onChange(listener: (health: StoreHealth) => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Read now (concurrent callers share one reading). */
  async refresh(): Promise<StoreHealth> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<StoreHealth> {
    let health: StoreHealth;
    try {
      health = await readStoreHealth(this.options.es, this.options.prefix);
    } catch (err) {
      health = {
        at: Date.now(),
        reachable: false,
        error: (err as Error).message,
        threshold_enabled: true,
        watermarks: { low: '85%', high: '90%', flood_stage: '95%' },
        nodes: [],
        blocked: [],
        level: 'ok',
      };
    }
    const before = this.last;
    this.last = health;
    for (const n of health.nodes) diskUsed.set({ node: n.name }, n.used_ratio);
    diskLevel.set(LEVELS.indexOf(health.level));
    clusterStatus.set(health.cluster ? ['green', 'yellow', 'red'].indexOf(health.cluster.status) : -1);
    pushingBack.set(health.push_back ? 1 : 0);
    const log = this.options.log ?? ((line: string) => console.warn(line));
    const previous = before?.reachable ? before.level : 'ok';
    if (previous !== health.level && health.reachable) {
      if (LEVELS.indexOf(health.level) > LEVELS.indexOf(previous)) {
        const what =
          health.level === 'low'
            ? `past the low watermark (${health.watermarks.low}): Elasticsearch allocates no new shards there`
            : health.level === 'high'
              ? `past the high watermark (${health.watermarks.high})${health.threshold_enabled ? ': Gatewatch pushes back on senders until it drops below' : ''}`
              : `past the flood-stage watermark (${health.watermarks.flood_stage})${health.threshold_enabled ? ': Elasticsearch makes indices read-only; Gatewatch holds ingest and detection until space returns' : ''}`;
        const fullest = [...health.nodes].sort((a, b) => b.used_ratio - a.used_ratio)[0]!;
        log(
          `warning: Elasticsearch disk on ${fullest.name} is ${(fullest.used_ratio * 100).toFixed(1)} % full (${gib(fullest.available_bytes)} free), ${what}. To do: ${DISK_ACTION}.`,
        );
      } else if (health.level === 'ok' || health.level === 'low')
        log(
          `Elasticsearch disk back ${health.level === 'ok' ? 'below every watermark' : 'below the high watermark'} on every node.`,
        );
    }
    if (health.blocked.length > 0 && (before?.blocked.length ?? 0) === 0)
      log(`warning: ${health.writes_blocked}. To do: ${DISK_ACTION}.`);
    if (before?.push_back && !health.push_back && health.reachable)
      log('Elasticsearch takes writes again: ingest resumes.');
    if (!!before?.push_back !== !!health.push_back || !!before?.writes_blocked !== !!health.writes_blocked) {
      for (const listener of this.listeners) listener(health);
    }
    return health;
  }
}
