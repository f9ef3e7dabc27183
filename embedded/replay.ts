/**
 * The zero-server pipeline: files → normalise → enrich → embedded store → every enabled rule
 * through the in-process evaluator → incidents, in one process. Parsing, enrichment, rule
 * semantics and incident writing are the same code as the distributed mode; only the queue
 * (none: records flow straight on) and the store (SQLite) differ.
 */
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { GatewatchConfig } from '../core/config/schema.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import type { Incident } from '../core/schema/incident.ts';
import { evaluateRule } from '../detections/engine/evaluate.ts';
import { toIncident } from '../detections/engine/types.ts';
import { writeIncidents } from '../detections/incidents/writer.ts';
import type { RawBatch } from '../ingest/pipeline/batch.ts';
import { createNormalizer } from '../ingest/pipeline/normalize.ts';
import { deadLetterId } from '../ingest/sinks/dead-letters.ts';
import { InventoryAccumulator } from '../inventory/accumulator.ts';
import { type MemoryInventoryJSON, MemoryInventoryStore } from '../inventory/store.ts';
import type { RuleIR } from '../parser/ir.ts';
import type { EmbeddedStore } from './store.ts';

export const INVENTORY_KEY = 'inventory';

/** Files a replay reads: logs, not the scenario's labels or notes. */
export function replayFiles(paths: string[]): string[] {
  const out: string[] = [];
  const visit = (path: string) => {
    const info = statSync(path);
    if (info.isDirectory()) {
      for (const entry of readdirSync(path).sort()) visit(join(path, entry));
      return;
    }
    const name = basename(path);
    if (/\.(log|ndjson|jsonl|json|txt|csv)(\.gz)?$/.test(name) && !/^(labels|README|manifest)/i.test(name))
      out.push(path);
  };
  for (const p of paths) visit(p);
  return out;
}

/** Non-empty lines of a log file, gzip or plain. */
export async function* readLines(path: string): AsyncGenerator<string> {
  const input = path.endsWith('.gz') ? createReadStream(path).pipe(createGunzip()) : createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) if (line.length > 0) yield line;
}

export interface ReplayOptions {
  config: GatewatchConfig;
  store: EmbeddedStore;
  rules: RuleIR[];
  /** Source name events are attributed to (part of their id). */
  source?: string;
  /** Only events with since <= @timestamp < until (ms). */
  since?: number;
  until?: number;
  /** Shift timestamps so the newest event lands at this time (keeps the gaps). */
  shiftTo?: number;
  /** 0: as fast as possible; N: N× real time, keeping the gaps between events. */
  speed?: number;
  onProgress?: (p: { records: number; events: number; deadLetters: number }) => void;
  now?: () => number;
}

export interface ReplayResult {
  records: number;
  events: number;
  newEvents: number;
  /** Endpoints (host, method, route template) in the embedded API inventory. */
  endpoints: number;
  deadLetters: number;
  incidents: Incident[];
  createdIncidents: number;
  rules: { id: string; detections: number; degraded?: string; ms: number }[];
  elapsedMs: number;
}

/**
 * The range a rule is evaluated over in a replay: every window that holds a replayed event
 * (windows at the edges included, so a short log still shows its bursts), after the history
 * that first-seen and baseline rules need.
 */
export function replayRange(
  rule: RuleIR,
  bounds: { min: number; max: number },
): { start: number; end: number } {
  const down = (t: number, step: number) => Math.floor(t / step) * step;
  const up = (t: number, step: number) => Math.ceil(t / step) * step;
  switch (rule.kind) {
    case 'threshold': {
      const { sizeMs, slideMs } = rule.threshold.window;
      const step = slideMs ?? sizeMs;
      return { start: down(bounds.min - sizeMs + step, step), end: up(bounds.max + sizeMs, step) };
    }
    case 'baseline': {
      const w = rule.baseline.windowMs;
      const end = up(bounds.max + 1, w);
      return { start: Math.min(down(bounds.min + rule.baseline.historyMs, w), end), end };
    }
    case 'first_seen': {
      const end = bounds.max + 1;
      return { start: Math.min(bounds.min + rule.firstSeen.historyMs, end), end };
    }
    default:
      return { start: bounds.min, end: bounds.max + 1 };
  }
}

export async function replay(files: string[], options: ReplayOptions): Promise<ReplayResult> {
  const started = performance.now();
  const normalize = createNormalizer(options.config);
  const source = options.source ?? 'replay';
  const batch: RawBatch = { source, receivedAt: (options.now ?? Date.now)(), records: [] };
  let records = 0;
  let events = 0;
  let newEvents = 0;
  let deadLetters = 0;
  let pending: GatewatchEvent[] = [];
  // Events new to the store, kept in memory for evaluation (no second read and parse).
  const fresh: GatewatchEvent[] = [];

  // ×N real time: hold each record until its place in event time, scaled by the speed.
  let paceOrigin: { ts: number; wall: number } | undefined;
  const pace = async (ts: number) => {
    if (!options.speed || options.speed <= 0 || Number.isNaN(ts)) return;
    paceOrigin ??= { ts, wall: performance.now() };
    const due = paceOrigin.wall + (ts - paceOrigin.ts) / options.speed;
    const wait = due - performance.now();
    if (wait > 5) {
      flush();
      await new Promise((r) => setTimeout(r, wait));
    }
  };

  // The API inventory, kept in the same file (same accumulator as the distributed workers).
  const saved = options.store.getJson<MemoryInventoryJSON>(INVENTORY_KEY);
  const inventoryStore = saved ? MemoryInventoryStore.fromJSON(saved) : new MemoryInventoryStore();
  const inventory = new InventoryAccumulator(inventoryStore);

  const flush = () => {
    const added = options.store.addEvents(pending);
    inventory.add(added);
    for (const e of added) fresh.push(e);
    newEvents = fresh.length;
    pending = [];
  };
  for (const file of files) {
    for await (const line of readLines(file)) {
      records++;
      const result = normalize(line, batch);
      const failures = result.ok ? result.failures : [result];
      for (const f of failures) {
        deadLetters++;
        options.store.addDeadLetter(deadLetterId(source, line), source, f.reason, line, batch.receivedAt);
      }
      if (result.ok) {
        for (const event of result.events) {
          const ts = Date.parse(event['@timestamp']);
          if (options.since !== undefined && ts < options.since) continue;
          if (options.until !== undefined && ts >= options.until) continue;
          await pace(ts);
          pending.push(event);
          events++;
        }
      }
      if (pending.length >= 5_000) flush();
      if (records % 10_000 === 0) options.onProgress?.({ records, events, deadLetters });
    }
  }
  flush();
  await inventory.flush();
  options.store.setJson(INVENTORY_KEY, inventoryStore.toJSON());
  options.onProgress?.({ records, events, deadLetters });

  if (options.shiftTo !== undefined) shiftTimestamps(options.store, options.shiftTo);

  const bounds = options.store.timeBounds();
  // Rules see every stored event: this replay's plus what earlier replays left in the file.
  const previous = bounds && fresh.length < options.store.eventCount();
  const incidentStore = options.store.incidentStore();
  const now = (options.now ?? Date.now)();
  const perRule: ReplayResult['rules'] = [];
  let createdIncidents = 0;
  if (bounds) {
    const all =
      previous || options.shiftTo !== undefined
        ? options.store.eventsBetween(bounds.min, bounds.max + 1)
        : fresh.sort((a, b) => a['@timestamp'].localeCompare(b['@timestamp']));
    for (const rule of options.rules) {
      if (!rule.enabled) continue;
      const t = performance.now();
      const range = replayRange(rule, bounds);
      const result = evaluateRule(rule, all, range);
      const incidents = result.detections.map((d) => toIncident(d, rule, now));
      const written = await writeIncidents(
        incidentStore,
        incidents,
        rule.output.suppress ? { periodMs: rule.output.suppress.periodMs } : undefined,
      );
      createdIncidents += written.created.length;
      options.store.setCheckpoint(rule.id, range.end);
      perRule.push({
        id: rule.id,
        detections: result.detections.length,
        ...(result.degraded ? { degraded: result.degraded.reason } : {}),
        ms: performance.now() - t,
      });
    }
  }
  let endpoints = 0;
  for await (const _ of inventoryStore.all()) endpoints++;
  return {
    records,
    events,
    newEvents,
    endpoints,
    deadLetters,
    incidents: options.store.incidents(),
    createdIncidents,
    rules: perRule,
    elapsedMs: performance.now() - started,
  };
}

/** Move every stored event so the newest sits at `to` (ids are unchanged: same lines). */
function shiftTimestamps(store: EmbeddedStore, to: number): void {
  const bounds = store.timeBounds();
  if (!bounds) return;
  const delta = to - bounds.max;
  const rows = store.db.prepare('SELECT id, doc FROM events').all() as { id: string; doc: string }[];
  const update = store.db.prepare('UPDATE events SET ts = ?, doc = ? WHERE id = ?');
  store.db.exec('BEGIN');
  for (const row of rows) {
    const event = JSON.parse(row.doc) as GatewatchEvent;
    const ts = Date.parse(event['@timestamp']) + delta;
    event['@timestamp'] = new Date(ts).toISOString();
    update.run(ts, JSON.stringify(event), row.id);
  }
  store.db.exec('COMMIT');
}
