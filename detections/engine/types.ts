/**
 * Detections: what one evaluation of a rule finds, before it becomes an incident. Both
 * backends (./evaluate.ts in process, ./elasticsearch.ts on a cluster) produce these, and
 * must produce identical ones for the same events (see ./SEMANTICS.md).
 */
import { createHash } from 'node:crypto';
import type { Entities, Incident } from '../../core/schema/incident.ts';
import { SEVERITY_RANK } from '../../core/schema/incident.ts';
import type { RuleIR, RuleKind } from '../../parser/ir.ts';

/** Epoch milliseconds, half-open [start, end). */
export interface TimeRange {
  start: number;
  end: number;
}

export type GroupValue = string | number | boolean | null;

export interface Degraded {
  reason: string;
}

export interface Detection {
  /** detectionId(rule id, version, groupKey, anchor): the incident id. */
  id: string;
  ruleId: string;
  ruleVersion: string;
  kind: RuleKind;
  /** Canonical JSON of the group values in key order, e.g. `["203.0.113.7"]`. */
  groupKey: string;
  group: Record<string, GroupValue>;
  /** The window (threshold, baseline) or [first event, last event + 1 ms) for the others. */
  window: TimeRange;
  firstSeen: number;
  lastSeen: number;
  eventCount: number;
  metrics: Record<string, number | null>;
  sampleEventIds: string[];
  entities: Entities;
  title: string;
  summary: string;
  evidenceQuery: string;
  /** Key for suppression (`null` when the rule does not suppress). */
  suppressionKey: string | null;
  degraded?: Degraded;
}

export interface EvaluationResult {
  detections: Detection[];
  degraded?: Degraded;
}

/**
 * The incident id. `anchor` is the window start (threshold, baseline) or the id of the event
 * that identifies the detection (filter: the event; sequence: the match's last event;
 * first_seen: the first new event).
 */
export function detectionId(
  ruleId: string,
  ruleVersion: string,
  groupKey: string,
  anchor: number | string,
): string {
  return createHash('sha256')
    .update(JSON.stringify([ruleId, ruleVersion, groupKey, anchor]))
    .digest('hex')
    .slice(0, 32);
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The Incident a detection becomes when first written (status new, no history). */
export function toIncident(detection: Detection, rule: RuleIR, now: number): Incident {
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(detection.metrics))
    if (v !== null && Number.isFinite(v)) metrics[k] = v;
  const at = iso(now);
  return {
    id: detection.id,
    rule: { id: rule.id, version: rule.version, title: rule.title, kind: rule.kind },
    severity: rule.severity,
    severity_rank: SEVERITY_RANK[rule.severity],
    risk: rule.risk,
    title: detection.title,
    summary: detection.summary,
    status: 'new',
    assignee: null,
    tags: [...rule.tags],
    group: { ...detection.group },
    group_key: detection.groupKey,
    entities: detection.entities,
    window: { start: iso(detection.window.start), end: iso(detection.window.end) },
    first_seen: iso(detection.firstSeen),
    last_seen: iso(detection.lastSeen),
    occurrences: 1,
    detection_ids: [detection.id],
    event_count: detection.eventCount,
    metrics,
    evidence: { event_ids: [...detection.sampleEventIds], query: detection.evidenceQuery },
    suppression_key: detection.suppressionKey,
    created_at: at,
    updated_at: at,
    acknowledged_at: null,
    resolved_at: null,
    history: [],
    comments: [],
  };
}
