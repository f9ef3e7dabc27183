/**
 * Detections: what one evaluation of a rule finds, before it becomes an incident. Both
 * backends (./evaluate.ts in process, ./elasticsearch.ts on a cluster) produce these, and
 * must produce identical ones for the same events (see ./SEMANTICS.md).
 */
import { createHash } from 'node:crypto';
import type { DetectionRecord, Entities, Incident } from '../../core/schema/incident.ts';
import { ENTITY_ROLES, SEVERITY_RANK } from '../../core/schema/incident.ts';
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

/**
 * The entity a detection is about, "role:value": its rule's first entity with a value (rule
 * authors list the entity an incident is about first), else the first entity it has at all.
 */
export function entityKeyOf(entities: Entities, rule?: RuleIR): string | null {
  for (const e of rule?.output.entities ?? []) {
    const v = entities[e.role]?.[0];
    if (v !== undefined) return `${e.role}:${v}`;
  }
  for (const role of ENTITY_ROLES) {
    const v = entities[role]?.[0];
    if (v !== undefined) return `${role}:${v}`;
  }
  return null;
}

function finiteMetrics(m: Record<string, number | null>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) if (v !== null && Number.isFinite(v)) out[k] = v;
  return out;
}

/** A rule's suppression key as incidents index it (`suppression_keys`). */
export function suppressionKeyOf(ruleId: string, key: string): string {
  return `${ruleId}\u0000${key}`;
}

/** A detection as an incident lists it. */
export function detectionRecord(detection: Detection, rule: RuleIR): DetectionRecord {
  return {
    id: detection.id,
    rule: { id: rule.id, title: rule.title, severity: rule.severity, risk: rule.risk },
    window: { start: iso(detection.window.start), end: iso(detection.window.end) },
    first_seen: iso(detection.firstSeen),
    last_seen: iso(detection.lastSeen),
    event_count: detection.eventCount,
    metrics: finiteMetrics(detection.metrics),
    title: detection.title,
    summary: detection.summary,
    query: detection.evidenceQuery,
    event_ids: detection.sampleEventIds.slice(0, 20),
    suppression_key: detection.suppressionKey,
  };
}

/** The Incident a detection becomes when first written (status new, no history). */
export function toIncident(detection: Detection, rule: RuleIR, now: number): Incident {
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
    rules: [rule.id],
    entity_key: entityKeyOf(detection.entities, rule),
    entity_names: {},
    group: { ...detection.group },
    group_key: detection.groupKey,
    entities: detection.entities,
    window: { start: iso(detection.window.start), end: iso(detection.window.end) },
    first_seen: iso(detection.firstSeen),
    last_seen: iso(detection.lastSeen),
    occurrences: 1,
    detection_ids: [detection.id],
    event_count: detection.eventCount,
    metrics: finiteMetrics(detection.metrics),
    detections: [detectionRecord(detection, rule)],
    evidence: { event_ids: [...detection.sampleEventIds], query: detection.evidenceQuery },
    suppression_key: detection.suppressionKey,
    suppression_keys:
      detection.suppressionKey === null ? [] : [suppressionKeyOf(rule.id, detection.suppressionKey)],
    created_at: at,
    updated_at: at,
    acknowledged_at: null,
    resolved_at: null,
    history: [],
    comments: [],
  };
}
