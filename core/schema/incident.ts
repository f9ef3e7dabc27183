/**
 * The incident: what a detection rule produces and what analysts triage. One definition
 * gives the TypeScript type, the API's JSON Schema and (in ./mapping-incident.ts) the
 * Elasticsearch mapping.
 *
 * Identity: `id` is a hash of (rule id, rule version, group key, window start), so the same
 * detection found again — by an overlapping look-back, a retried run or a catch-up — lands
 * on the same document and updates it instead of creating a second one.
 */
import Type, { type Static } from 'typebox';
import { ENTITY_ROLES, type EntityRole } from './entity-roles.ts';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const STATUSES = ['new', 'triaged', 'in_remediation', 'resolved', 'false_positive'] as const;
export type IncidentStatus = (typeof STATUSES)[number];

/** Allowed status transitions. Re-opening a resolved incident goes back to `triaged`. */
export const TRANSITIONS: Record<IncidentStatus, readonly IncidentStatus[]> = {
  new: ['triaged', 'in_remediation', 'resolved', 'false_positive'],
  triaged: ['in_remediation', 'resolved', 'false_positive'],
  in_remediation: ['triaged', 'resolved', 'false_positive'],
  resolved: ['triaged'],
  false_positive: ['triaged'],
};

const Timestamp = Type.String({ format: 'date-time' });

export { ENTITY_ROLES, type EntityRole } from './entity-roles.ts';

export const EntitiesSchema = Type.Object(
  Object.fromEntries(ENTITY_ROLES.map((r) => [r, Type.Optional(Type.Array(Type.String()))])) as Record<
    EntityRole,
    ReturnType<typeof Type.Optional<ReturnType<typeof Type.Array<ReturnType<typeof Type.String>>>>>
  >,
);

export const HistoryEntrySchema = Type.Object({
  at: Timestamp,
  by: Type.String(),
  field: Type.String(),
  from: Type.Union([Type.String(), Type.Null()]),
  to: Type.Union([Type.String(), Type.Null()]),
  note: Type.Optional(Type.String()),
});

export const CommentSchema = Type.Object({
  id: Type.String(),
  at: Timestamp,
  by: Type.String(),
  text: Type.String(),
});

/**
 * One detection of an incident: a rule's finding on the incident's entity. An incident lists
 * every detection folded into it (its own first), each with its own consistent window, figures
 * and summary.
 */
export const DetectionRecordSchema = Type.Object({
  id: Type.String(),
  rule: Type.Object({
    id: Type.String(),
    title: Type.String(),
    severity: Type.String(),
    risk: Type.Number(),
  }),
  window: Type.Object({ start: Timestamp, end: Timestamp }),
  first_seen: Timestamp,
  last_seen: Timestamp,
  event_count: Type.Integer(),
  metrics: Type.Record(Type.String(), Type.Number()),
  title: Type.String(),
  summary: Type.String(),
  /** A filter in the rule language that reproduces this detection's events. */
  query: Type.String(),
  event_ids: Type.Array(Type.String()),
  suppression_key: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type DetectionRecord = Static<typeof DetectionRecordSchema>;

/** Detections kept per incident (the first, then the latest; `occurrences` counts them all). */
export const MAX_DETECTION_RECORDS = 50;

export const IncidentSchema = Type.Object({
  id: Type.String(),
  rule: Type.Object({
    id: Type.String(),
    version: Type.String(),
    title: Type.String(),
    kind: Type.String(),
  }),
  severity: Type.Union([
    Type.Literal('low'),
    Type.Literal('medium'),
    Type.Literal('high'),
    Type.Literal('critical'),
  ]),
  /** 1 (low) … 4 (critical), for sorting by severity. */
  severity_rank: Type.Integer({ minimum: 1, maximum: 4 }),
  risk: Type.Number(),
  title: Type.String(),
  summary: Type.String(),
  status: Type.Union([
    Type.Literal('new'),
    Type.Literal('triaged'),
    Type.Literal('in_remediation'),
    Type.Literal('resolved'),
    Type.Literal('false_positive'),
  ]),
  assignee: Type.Union([Type.String(), Type.Null()]),
  tags: Type.Array(Type.String()),
  /**
   * Every rule with a detection in this incident (its own rule first): detections of several
   * rules on one entity within `detections.foldWindow` fold into one incident.
   */
  rules: Type.Array(Type.String()),
  /**
   * The entity the incident is about ("role:value", from its first detection's first entity),
   * which later detections fold on.
   */
  entity_key: Type.Union([Type.String(), Type.Null()]),
  /** Names the gateway knows entities by, per value (an API key's consumer or credential id). */
  entity_names: Type.Record(Type.String(), Type.String()),
  /** The values of the rule's group-by (or join) fields, e.g. {"source.ip": "203.0.113.7"}. */
  group: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
  group_key: Type.String(),
  entities: EntitiesSchema,
  window: Type.Object({ start: Timestamp, end: Timestamp }),
  first_seen: Timestamp,
  last_seen: Timestamp,
  /** How many times the detection matched (re-detections inside suppression add here). */
  occurrences: Type.Integer(),
  /**
   * Ids of every detection merged into this incident (its own first). Occurrences are counted
   * from this set, so re-finding the same detection in an overlapping run changes nothing.
   */
  detection_ids: Type.Array(Type.String()),
  /**
   * The first detection's figures, consistent with `window`, `title` and `summary`; every
   * detection's own are in `detections`.
   */
  event_count: Type.Integer(),
  metrics: Type.Record(Type.String(), Type.Number()),
  /** The detections folded into this incident, first and latest (see MAX_DETECTION_RECORDS). */
  detections: Type.Array(DetectionRecordSchema),
  evidence: Type.Object({
    event_ids: Type.Array(Type.String()),
    /** A filter in the rule language that reproduces the detection's events. */
    query: Type.String(),
    /**
     * Set in API answers (never stored) once retention has deleted the incident's events: when,
     * and what the query still finds.
     */
    expired: Type.Optional(
      Type.Object({
        at: Timestamp,
        partial: Type.Boolean(),
        note: Type.String(),
      }),
    ),
  }),
  suppression_key: Type.Union([Type.String(), Type.Null()]),
  /**
   * "rule id NUL key" of every suppressing detection the incident holds: a rule's repeat is
   * suppressed into the incident that holds its first detection, also when that incident is
   * another rule's (folded).
   */
  suppression_keys: Type.Array(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
  acknowledged_at: Type.Union([Timestamp, Type.Null()]),
  resolved_at: Type.Union([Timestamp, Type.Null()]),
  history: Type.Array(HistoryEntrySchema),
  comments: Type.Array(CommentSchema),
});

export type Incident = Static<typeof IncidentSchema>;

/**
 * What incident list pages carry: the incident without its long, growing parts (evidence
 * event ids, detection ids, history, comments). Get one incident for those.
 */
export const INCIDENT_DETAIL_FIELDS = [
  'evidence',
  'detection_ids',
  'detections',
  'history',
  'comments',
] as const;
export const IncidentSummarySchema = Type.Omit(IncidentSchema, INCIDENT_DETAIL_FIELDS, {
  description:
    'An incident as list pages show it: everything but evidence, detection_ids, detections, history and comments (GET /api/v1/incidents/{id} returns those).',
});
export type IncidentSummary = Static<typeof IncidentSummarySchema>;
export type Entities = Static<typeof EntitiesSchema>;

export const incidentMappings = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    rule: {
      properties: {
        id: { type: 'keyword' },
        version: { type: 'keyword' },
        title: { type: 'keyword' },
        kind: { type: 'keyword' },
      },
    },
    severity: { type: 'keyword' },
    severity_rank: { type: 'byte' },
    risk: { type: 'float' },
    title: { type: 'keyword', fields: { text: { type: 'text' } } },
    summary: { type: 'text' },
    status: { type: 'keyword' },
    assignee: { type: 'keyword' },
    tags: { type: 'keyword' },
    rules: { type: 'keyword' },
    entity_key: { type: 'keyword' },
    entity_names: { type: 'object', enabled: false },
    detections: { type: 'object', enabled: false },
    group: { type: 'flattened' },
    group_key: { type: 'keyword' },
    entities: {
      properties: Object.fromEntries(ENTITY_ROLES.map((r) => [r, { type: 'keyword' }])) as Record<
        EntityRole,
        { type: 'keyword' }
      >,
    },
    window: { properties: { start: { type: 'date' }, end: { type: 'date' } } },
    first_seen: { type: 'date' },
    last_seen: { type: 'date' },
    occurrences: { type: 'long' },
    detection_ids: { type: 'keyword' },
    event_count: { type: 'long' },
    metrics: { type: 'object', enabled: false },
    evidence: {
      properties: {
        event_ids: { type: 'keyword' },
        query: { type: 'keyword', index: false, doc_values: false },
      },
    },
    suppression_key: { type: 'keyword' },
    suppression_keys: { type: 'keyword' },
    created_at: { type: 'date' },
    updated_at: { type: 'date' },
    acknowledged_at: { type: 'date' },
    resolved_at: { type: 'date' },
    history: { type: 'object', enabled: false },
    comments: { type: 'object', enabled: false },
  },
} as const;

export const SEVERITY_RANK: Record<Severity, number> = { low: 1, medium: 2, high: 3, critical: 4 };
