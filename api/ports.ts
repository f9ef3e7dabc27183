/**
 * What the REST API needs from the rest of Gatewatch. The routes are written against these
 * interfaces only; the detection engine, event search and ingest runtime implement them and
 * are wired in by whoever starts the server (cli/commands/serve.ts).
 *
 * Rule text reaches a port only after the API parsed it with the rule language (parser/), and
 * event filters arrive as the parsed FilterExpr: no raw query text ever reaches Elasticsearch
 * through the API.
 */

import type { SourceType } from '../core/config/schema.ts';
import type { Incident } from '../core/schema/incident.ts';
import type { FieldStats } from '../detections/coverage.ts';
import type { IncidentRepository } from '../detections/incidents/repository.ts';
import type { PartialsStats } from '../detections/partials/store.ts';
import type { RunRecord } from '../detections/scheduler/scheduler.ts';
import type { Diagnostic, FilterExpr, ReadResult, RuleIR } from '../parser/index.ts';

export type { Diagnostic, FilterExpr, RuleIR, RunRecord };

/** Epoch milliseconds, end exclusive. */
export interface TimeRange {
  start: number;
  end: number;
}

/** A normalised event as stored (ECS fields, `event.id`, `@timestamp`). */
export type StoredEvent = Record<string, unknown>;

export interface PreviewResult {
  /**
   * Incidents the rule would have opened over the range, after its suppression and folding
   * (nothing is written).
   */
  incidents: Incident[];
  /** Its raw detections, each as the incident it would be on its own. */
  raw_detections: Incident[];
  detections: number;
  degraded?: { reason: string };
}

export interface RuleStatus {
  /** The last run was degraded (e.g. too many groups) or failed. */
  degraded: boolean;
  reason?: string;
  last_run?: RunRecord;
}

export interface RuleDayActivity {
  rule_id: string;
  /** YYYY-MM-DD (UTC). */
  day: string;
  runs: number;
  detections: number;
  /** Runs that ended in error or degraded. */
  failed: number;
}

export interface DetectionPort {
  /** Run the rules over the supplied events in process (nothing is written). */
  test(rules: RuleIR[], events: StoredEvent[]): Promise<Incident[]>;
  /** Backtest a rule over stored events in a past range without writing incidents. */
  preview(rule: RuleIR, range: TimeRange): Promise<PreviewResult>;
  /** Run a stored rule now over its normal range (writes incidents as a scheduled run would). */
  runNow(ruleId: string): Promise<RunRecord>;
  /** Most recent runs first. */
  runHistory(ruleId: string, limit: number): Promise<RunRecord[]>;
  status(ruleId: string): Promise<RuleStatus>;
  /** Runs, detections and failed runs per rule and UTC day whose runs started in the range. */
  dailyActivity(range: TimeRange): Promise<RuleDayActivity[]>;
  /** Called after a rule was created, changed, enabled, disabled or deleted. */
  rulesChanged?(ruleId: string): Promise<void>;
  /** What the stored events carry, per source, for rule coverage (detections/coverage.ts). */
  fieldStats(fields: string[], range?: { from?: number; to?: number }): Promise<FieldStats>;
}

export interface EventSearchRequest {
  /** Parsed filter (rule-language filter expression), compiled by the implementation. */
  filter: FilterExpr;
  range: TimeRange;
  size: number;
  /** Opaque cursor from the previous page (the implementation's own format). */
  cursor?: string;
  order: 'asc' | 'desc';
}

export interface EventSearchPage {
  events: StoredEvent[];
  next_cursor: string | null;
}

/** Events per bucket of a filter over a range (the first bucket starts at the range's start). */
export interface EventHistogram {
  /** Bucket starts (epoch ms), empty buckets included. */
  buckets: { start: number; count: number }[];
  total: number;
  /** False when the counts are an upper bound (a filter the store cannot express exactly). */
  exact: boolean;
}

/** When a filter's events were first and last seen, over all stored time. */
export interface EventExtent {
  first: number | null;
  last: number | null;
  total: number;
}

export interface EventSearchPort {
  search(request: EventSearchRequest): Promise<EventSearchPage>;
  get(id: string): Promise<StoredEvent | undefined>;
  /** Activity over time: entity pages and incident timelines. */
  histogram(filter: FilterExpr, range: TimeRange, intervalMs: number): Promise<EventHistogram>;
  extent(filter: FilterExpr): Promise<EventExtent>;
  /** The oldest stored event's time (epoch ms), or undefined when none is stored: what retention left. */
  earliest?(): Promise<number | undefined>;
}

/** Thrown by EventSearchPort.search for a cursor it did not issue (becomes a 400). */
export class InvalidEventCursorError extends Error {
  override name = 'InvalidEventCursorError';
}

export interface SourceStatus {
  name: string;
  type: SourceType;
  state: 'running' | 'idle' | 'error' | 'unknown';
  /** Seconds between the newest event received and now (null: nothing received yet). */
  lag_seconds: number | null;
  events_per_second: number;
  bytes_per_second: number;
  errors_total: number;
  /** Events stored since the counters began (a resent record counts once). */
  events_total: number;
  /** Records received again and already stored (resends, replays). */
  duplicates_total: number;
  /** Records that could not become stored events (listed under dead letters). */
  dead_letters_total: number;
  /** Records lost before the queue: UDP datagrams dropped by the kernel or above high water. */
  dropped_total: number;
  last_error: string | null;
  last_event_at: string | null;
  /** Pull sources: what is left to read, from the source's own progress report. */
  backlog?: SourceBacklog;
}

export interface SourceBacklog {
  /** Objects, blobs or messages known and not read to the end yet. */
  objects_pending: number | null;
  /** Bytes of those not read yet (compressed size for gzip objects). */
  bytes_behind: number | null;
  /** Kafka: records between the committed offsets and the partitions' ends. */
  consumer_lag: number | null;
  /** How far behind the source's checkpoint is in time (CloudWatch window end, oldest pending object). */
  behind_seconds: number | null;
  /** When the source last reported (null: it never ran). */
  updated_at: string | null;
}

export interface DeadLetter {
  id: string;
  source: string;
  at: string;
  reason: string;
  /** The rejected line or document, as received. */
  payload: string;
  replayed_at: string | null;
}

export interface DeadLetterPage {
  items: DeadLetter[];
  next_cursor: string | null;
}

export type { PartialsStats };

/** The ingest queue between sources and workers (distributed mode). */
export interface IngestQueueStatus {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  /** Age of the oldest batch waiting for a worker (null: none waiting). */
  oldest_waiting_seconds: number | null;
  /** Queued batches above which sources push back. */
  high_water_mark: number;
}

export interface IngestAdminPort {
  sources(): Promise<SourceStatus[]>;
  /** The queue's depth and lag; absent where there is no queue (the embedded mode). */
  queue?(): Promise<IngestQueueStatus>;
  /** What the rule partials hold (docs/partials.md), where they are kept. */
  partials?(): Promise<PartialsStats | undefined>;
  deadLetters(query: { source?: string; size: number; cursor?: string }): Promise<DeadLetterPage>;
  /** Replay dead letters by id, or every un-replayed one of a source. */
  replayDeadLetters(request: {
    ids?: string[];
    source?: string;
  }): Promise<{ replayed: number; failed: number }>;
}

/** How rule text resolves `include` and `list ... = file(...)` (absent: not allowed). */
export interface RuleReaders {
  readInclude?: (path: string, fromFile: string) => ReadResult | undefined;
  readList?: (path: string, fromFile: string) => ReadResult | undefined;
}

export interface ApiPorts {
  incidents: IncidentRepository;
  detection: DetectionPort;
  events: EventSearchPort;
  ingest: IngestAdminPort;
  ruleReaders?: RuleReaders;
}
