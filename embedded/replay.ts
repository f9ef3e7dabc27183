/**
 * The zero-server pipeline: files → normalise → enrich → embedded store → every enabled rule
 * through the in-process evaluator → incidents, in one process. Parsing, enrichment, rule
 * semantics and incident writing are the same code as the distributed mode; only the queue
 * (none: records flow straight on) and the store (SQLite) differ.
 */
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import type { Incident } from '../core/schema/incident.ts';
import { evaluateRule, projector, ruleFields, ruleStream } from '../detections/engine/evaluate.ts';
import type { SharedFilters } from '../detections/engine/filter.ts';
import { toIncident } from '../detections/engine/types.ts';
import { writeIncidents } from '../detections/incidents/writer.ts';
import type { RunRecord } from '../detections/scheduler/scheduler.ts';
import { embeddedFingerprintSecret, withFingerprintSecret } from '../ingest/fingerprint-secret.ts';
import { isRemoteInput } from '../ingest/sources/remote-url.ts';
import { InventoryAccumulator } from '../inventory/accumulator.ts';
import { type MemoryInventoryJSON, MemoryInventoryStore } from '../inventory/store.ts';
import type { RuleIR } from '../parser/ir.ts';
import { installApiSchema } from './api-stores.ts';
import { SqliteExceptionStore } from './exceptions.ts';
import { columnDecoder } from './replay-columns.ts';
import { findReplayFiles } from './replay-files.ts';
import { type InputBatch, inputBatches } from './replay-input.ts';
import type { EmbeddedStore } from './store.ts';

export const INVENTORY_KEY = 'inventory';

/** The event fields InventoryAccumulator.add reads (keep in step with inventory/accumulator.ts). */
export const INVENTORY_FIELDS = [
  '@timestamp',
  'destination.domain',
  'gatewatch.api_key.fingerprint',
  'gatewatch.auth.present',
  'gatewatch.query_params',
  'gatewatch.route',
  'http.request.method',
  'http.response.bytes',
  'http.response.status_code',
  'source.ip',
  'url.domain',
];

/** The files a replay of these paths reads (embedded/replay-files.ts says which and why). */
export function replayFiles(paths: string[]): string[] {
  return findReplayFiles(paths).files.map((f) => f.path);
}

export { readLineBatches, readLines } from './replay-input.ts';

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
  onProgress?: (p: ReplayProgress) => void;
  now?: () => number;
}

export interface ReplayProgress {
  records: number;
  events: number;
  deadLetters: number;
  /**
   * Bytes read of the local files (compressed bytes for gzip files) and their total size
   * (undefined when remote inputs are replayed too: their size is known only once read).
   */
  bytes: number;
  totalBytes: number | undefined;
}

/** Dead letters of one reason: how many, and the first few records as examples. */
export interface DeadLetterReason {
  reason: string;
  count: number;
  examples: string[];
}

/** Examples kept per dead-letter reason. */
export const DEAD_LETTER_EXAMPLES = 3;

export interface ReplayResult {
  records: number;
  events: number;
  newEvents: number;
  /** Endpoints (host, method, route template) in the embedded API inventory. */
  endpoints: number;
  deadLetters: number;
  /** Dead letters by reason, most frequent first. */
  deadLetterReasons: DeadLetterReason[];
  incidents: Incident[];
  createdIncidents: number;
  /** Per rule: detections, and the time of its evaluation (after the load when streamed). */
  rules: { id: string; detections: number; degraded?: string; ms: number }[];
  /** Time the streamed rules spent on the events as they were stored (all rules together). */
  streamMs: number;
  /** CPU time of the main thread and of the normalising worker thread (when one ran), ms. */
  cpuMs: { main: number; worker?: number };
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
  const cpuStart = process.threadCpuUsage();
  const inputStats: { workerCpuMs?: number } = {};
  const { store } = options;
  const source = options.source ?? 'replay';
  const receivedAt = (options.now ?? Date.now)();
  const speed = options.speed && options.speed > 0 ? options.speed : 0;
  let records = 0;
  let events = 0;
  let newEvents = 0;
  let deadLetters = 0;
  const reasons = new Map<string, DeadLetterReason>();
  let bytes = 0;
  const totalBytes = files.some(isRemoteInput)
    ? undefined
    : files.reduce((sum, f) => sum + statSync(f).size, 0);

  // Events already in the store (earlier replays) take part in the evaluation: then, and when
  // timestamps are shifted after the load, rules read the stored events at the end. Otherwise
  // (the usual fresh replay) each rule consumes the new events as they are stored.
  const previous = store.db.prepare('SELECT 1 FROM events LIMIT 1').get() !== undefined;
  const streaming = !previous && options.shiftTo === undefined;
  const enabled = options.rules.filter((r) => r.enabled);
  // The fields the rules and the inventory read: all the main thread needs of an event (the
  // worker sends these copies besides the documents, so the main thread never parses those).
  const fields = [...new Set([...enabled.flatMap(ruleFields), ...INVENTORY_FIELDS])];
  const decode = columnDecoder(fields, INVENTORY_FIELDS);
  const shared: SharedFilters = new Map();
  const streams = streaming
    ? enabled.map((rule) => ({
        rule,
        stream: ruleStream(rule, { project: projector(ruleFields(rule)), shared }),
      }))
    : [];
  const ruleStreams = streams.map((s) => s.stream);
  let streamMs = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  store.beginBulkLoad();

  // The API inventory, kept in the same file (same accumulator as the distributed workers).
  const saved = store.getJson<MemoryInventoryJSON>(INVENTORY_KEY);
  const inventoryStore = saved ? MemoryInventoryStore.fromJSON(saved) : new MemoryInventoryStore();
  const inventory = new InventoryAccumulator(inventoryStore);

  /** Store rows from ≤ i < to of a batch; the new ones go on to the inventory and the rules. */
  const take = (
    batch: InputBatch,
    docs: string[],
    objects: readonly unknown[],
    flat: readonly unknown[],
    from: number,
    to: number,
  ) => {
    if (to <= from) return;
    const isNew: boolean[] = new Array(to);
    store.addEventRows(batch.ids, batch.ts, docs, isNew, from, to);
    const added: unknown[] = [];
    const addedFlat: unknown[] = [];
    const addedTs: number[] = [];
    const addedIds: string[] = [];
    for (let i = from; i < to; i++) {
      if (!isNew[i]) continue;
      added.push(objects[i]);
      addedFlat.push(flat[i]);
      const t = batch.ts[i]!;
      addedTs.push(t);
      addedIds.push(batch.ids[i]!);
      if (t < min) min = t;
      if (t > max) max = t;
    }
    newEvents += added.length;
    inventory.add(addedFlat as GatewatchEvent[]);
    // event by event through every rule (shared sub-expressions are evaluated once per event)
    const t = performance.now();
    for (let k = 0; k < added.length; k++) {
      const e = added[k];
      const time = addedTs[k]!;
      const id = addedIds[k]!;
      for (let r = 0; r < ruleStreams.length; r++) ruleStreams[r]!.add(e, time, id);
    }
    streamMs += performance.now() - t;
  };

  // ×N real time: hold each record until its place in event time, scaled by the speed.
  let paceOrigin: { ts: number; wall: number } | undefined;
  const due = (ts: number) => {
    if (Number.isNaN(ts)) return 0;
    paceOrigin ??= { ts, wall: performance.now() };
    return paceOrigin.wall + (ts - paceOrigin.ts) / speed - performance.now();
  };

  try {
    for await (const batch of inputBatches(files, {
      // the file's own fingerprint secret unless one is configured (ingest/fingerprint-secret.ts)
      config: withFingerprintSecret(options.config, embeddedFingerprintSecret(store, options.config)),
      source,
      receivedAt,
      ...(options.since !== undefined ? { since: options.since } : {}),
      ...(options.until !== undefined ? { until: options.until } : {}),
      // paced replays are slow by design: normalise in process
      thread: speed === 0,
      fields,
      stats: inputStats,
    })) {
      records += batch.records;
      if (batch.bytes !== undefined) bytes = batch.bytes;
      for (const d of batch.deadLetters) {
        deadLetters++;
        store.addDeadLetter(d.id, source, d.reason, d.raw, receivedAt);
        let r = reasons.get(d.reason);
        if (!r) {
          r = { reason: d.reason, count: 0, examples: [] };
          reasons.set(d.reason, r);
        }
        r.count++;
        if (r.examples.length < DEAD_LETTER_EXAMPLES) r.examples.push(d.raw);
      }
      const n = batch.ids.length;
      events += n;
      if (n > 0) {
        const docs = batch.docs.split('\n');
        // events normalised in process are read as they are; from the worker, their
        // projections (and, for the inventory, the fields it reads under their dotted names)
        const decoded = batch.events ? undefined : decode(batch.columns!);
        const objects: readonly unknown[] = batch.events ?? decoded!.events;
        const flat: readonly unknown[] = decoded?.flat ?? objects;
        let from = 0;
        if (speed > 0) {
          for (let i = 0; i < n; i++) {
            const wait = due(batch.ts[i]!);
            if (wait > 5) {
              take(batch, docs, objects, flat, from, i);
              from = i;
              await new Promise((r) => setTimeout(r, wait));
            }
          }
        }
        take(batch, docs, objects, flat, from, n);
      }
      options.onProgress?.({ records, events, deadLetters, bytes, totalBytes });
    }
  } finally {
    store.endBulkLoad();
  }
  await inventory.flush();
  store.setJson(INVENTORY_KEY, inventoryStore.toJSON());
  options.onProgress?.({ records, events, deadLetters, bytes: totalBytes ?? bytes, totalBytes });

  if (options.shiftTo !== undefined) shiftTimestamps(store, options.shiftTo);

  const bounds = streaming ? (newEvents > 0 ? { min, max } : undefined) : store.timeBounds();
  const incidentStore = store.incidentStore();
  const exceptionStore = new SqliteExceptionStore(store);
  // Each rule's pass over the replay is recorded as a run, as the API's "run now" records one.
  installApiSchema(store);
  const recordRun = store.db.prepare(
    'INSERT INTO rule_runs (id, rule_id, started_at, doc) VALUES (?, ?, ?, ?)',
  );
  const foldWindowMs = durationMs(options.config.detections.foldWindow);
  const names = store.entityNames();
  const now = (options.now ?? Date.now)();
  const perRule: ReplayResult['rules'] = [];
  let createdIncidents = 0;
  if (bounds) {
    // Rules see every stored event: this replay's plus what earlier replays left in the file.
    const all = streaming ? [] : store.eventsBetween(bounds.min, bounds.max + 1);
    for (const rule of enabled) {
      const s = streams.find((x) => x.rule === rule);
      const t = performance.now();
      const range = replayRange(rule, bounds);
      const result = s ? s.stream.finish(range) : evaluateRule(rule, all, range);
      const incidents = result.detections.map((d) => toIncident(d, rule, now));
      const written = await writeIncidents(incidentStore, incidents, {
        ...(rule.output.suppress ? { suppression: { periodMs: rule.output.suppress.periodMs } } : {}),
        foldWindowMs,
        names,
        exceptions: { list: await exceptionStore.list({ rule_id: rule.id, activeAt: now }), now },
      });
      createdIncidents += written.created.length;
      store.setCheckpoint(rule.id, range.end);
      const ms = Math.round(performance.now() - t);
      const run: RunRecord = {
        id: randomUUID(),
        rule_id: rule.id,
        rule_version: rule.version,
        started_at: new Date(now).toISOString(),
        finished_at: new Date(now + ms).toISOString(),
        duration_ms: ms,
        range_start: new Date(range.start).toISOString(),
        range_end: new Date(range.end).toISOString(),
        outcome: result.degraded ? 'degraded' : 'ok',
        es_ms: 0,
        detections: result.detections.length,
        incidents_created: written.created.length,
        incidents_updated: written.updated.length,
        incidents_suppressed: written.suppressed.length,
        incidents_folded: written.folded.length,
        incidents_excepted: written.excepted.length,
        worker_ms: ms,
        ...(result.degraded ? { degraded_reason: result.degraded.reason } : {}),
      };
      recordRun.run(run.id, run.rule_id, run.started_at, JSON.stringify(run));
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
    deadLetterReasons: [...reasons.values()].sort(
      (a, b) => b.count - a.count || a.reason.localeCompare(b.reason),
    ),
    incidents: store.incidents(),
    createdIncidents,
    rules: perRule,
    streamMs,
    cpuMs: {
      main: (() => {
        const c = process.threadCpuUsage(cpuStart);
        return (c.user + c.system) / 1000;
      })(),
      ...(inputStats.workerCpuMs !== undefined ? { worker: inputStats.workerCpuMs } : {}),
    },
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
