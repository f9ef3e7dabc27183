/**
 * Writes incidents exactly once, one attack one incident.
 *
 * Identity: an incident's id is its first detection's id, a hash of (rule id, rule version,
 * group key, window start): created with create semantics, and when it already exists (an
 * overlapping look-back, a retried run, a catch-up) updated in place. Every detection an
 * incident absorbs joins `detection_ids`, from which `occurrences` is counted, so absorbing is
 * idempotent too.
 *
 * Suppression: a detection whose suppression key matches an open incident of the same rule
 * whose suppression period [t, t + P) holds the detection's event time is merged into that
 * incident (t: the incident's window end; the period is not extended by merges).
 *
 * Folding: analysts triage an attacker, a key or an account, not six rows for one attack. A
 * detection of any rule whose entity (its rule's first entity, `entity_key`) is named by an open
 * incident, or that names the incident's entity, within `foldWindowMs` of the incident's span,
 * folds into it: the incident lists every rule and detection, its severity is the highest, its
 * risk combines the rules' risks (risk-based alerting: 100 × (1 − Π(1 − rᵢ/100))). The incident's
 * own window, title, summary and figures stay its first detection's, so they always agree;
 * `detections` holds each detection's own.
 *
 * Updates are partial documents guarded by sequence numbers (optimistic concurrency); no
 * scripts, which the test node does not have. Several processes writing at once (detect
 * workers) pass `lock`, which serialises the look-up-then-write of folding.
 *
 * Exceptions: given the rule's exceptions (detections/exceptions.ts), detections on an excepted
 * entity are dropped first: they neither open, update, fold into nor feed a suppressed incident.
 */
import {
  type DetectionRecord,
  ENTITY_ROLES,
  type Entities,
  type Incident,
  MAX_DETECTION_RECORDS,
  SEVERITY_RANK,
  type Severity,
} from '../../core/schema/incident.ts';
import { applyExceptions, type RuleException } from '../exceptions.ts';

export interface SuppressionPolicy {
  /** Suppression period in ms. */
  periodMs: number;
  /** After resolution a repeat opens a new incident (default) or reopens the resolved one. */
  afterResolution?: 'new_incident' | 'reopen';
}

export interface WriteOptions {
  /** The rule's suppression (absent: the rule does not suppress). */
  suppression?: SuppressionPolicy;
  /** Detections on an open incident's entity within this span of it fold into it (0: never). */
  foldWindowMs?: number;
  /** Serialises folding across processes; absent when one process writes. */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * Names the gateway knows entity values by (API key fingerprints → consumer or credential id),
   * from the events of [from, to].
   */
  names?: EntityNames;
  /** The rule's exceptions in force at `now`: detections on their entities are not written. */
  exceptions?: { list: readonly RuleException[]; now: number };
}

export type EntityNames = (
  entities: Entities,
  span: { from: string; to: string },
) => Promise<Record<string, string>>;

/** The fingerprint → name pairs of events, by whatever store holds them. */
export function entityNamesFrom(
  lookup: (fingerprints: string[], from: number, to: number) => Promise<Map<string, string>>,
): EntityNames {
  return async (entities, span) => {
    const fps = entities.api_key ?? [];
    if (fps.length === 0) return {};
    const found = await lookup(fps, Date.parse(span.from), Date.parse(span.to));
    return Object.fromEntries(found);
  };
}

/** The default fold window (`detections.foldWindow`). */
export const DEFAULT_FOLD_WINDOW_MS = 60 * 60_000;

export interface WriteOutcome {
  created: string[];
  updated: string[];
  suppressed: string[];
  /** Detections folded into an incident of their entity (another rule's, or an unsuppressed repeat). */
  folded: string[];
  /** Detections dropped because an exception of the rule covers one of their entities. */
  excepted: string[];
}

const OPEN = ['new', 'triaged', 'in_remediation'];
const MAX_EVIDENCE = 100;

function union(a: string[], b: string[], max = Number.POSITIVE_INFINITY): string[] {
  return [...new Set([...a, ...b])].slice(0, max);
}

const maxIso = (a: string, b: string) => (b > a ? b : a);
const minIso = (a: string, b: string) => (b < a ? b : a);

/** Risk of several rules on one entity: each rule's risk once, combined like independent odds. */
export function combinedRisk(records: readonly { rule: { id: string; risk: number } }[], floor = 0): number {
  const byRule = new Map<string, number>();
  for (const r of records) byRule.set(r.rule.id, Math.max(byRule.get(r.rule.id) ?? 0, r.rule.risk));
  let keep = 1;
  for (const risk of byRule.values()) keep *= 1 - Math.min(100, Math.max(0, risk)) / 100;
  return Math.max(floor, Math.round((1 - keep) * 1000) / 10);
}

/** The first record of each rule, then the latest ones, at most MAX_DETECTION_RECORDS. */
function boundedRecords(records: DetectionRecord[]): DetectionRecord[] {
  if (records.length <= MAX_DETECTION_RECORDS) return records;
  const keep = new Set<DetectionRecord>();
  const seenRules = new Set<string>();
  for (const r of records) {
    if (!seenRules.has(r.rule.id)) {
      seenRules.add(r.rule.id);
      keep.add(r);
    }
  }
  for (let i = records.length - 1; i >= 0 && keep.size < MAX_DETECTION_RECORDS; i--) keep.add(records[i]!);
  return records.filter((r) => keep.has(r));
}

function unionEntities(a: Entities, b: Entities): Entities {
  const out: Entities = { ...a };
  for (const role of ENTITY_ROLES) {
    const add = b[role];
    if (add === undefined || add.length === 0) continue;
    out[role] = union(a[role] ?? [], add, 100);
  }
  return out;
}

/** Every "role:value" an incident names. */
export function entityKeys(entities: Entities): string[] {
  const out: string[] = [];
  for (const role of ENTITY_ROLES) for (const v of entities[role] ?? []) out.push(`${role}:${v}`);
  return out;
}

/**
 * What absorbing `found` changes on `existing` (never status, history or comments). The same
 * detection found again (late events) replaces its own figures; another detection is added.
 */
function absorb(existing: Incident, raw: Incident, sameDetection: boolean): Partial<Incident> {
  const detectionIds = union(existing.detection_ids, raw.detection_ids);
  const added = detectionIds.length > existing.detection_ids.length;
  // A detection found again comes without names: it keeps those the incident already knows.
  const names = { ...existing.entity_names, ...raw.entity_names };
  const found = withNamesOn(raw, names);
  const own = found.detections?.[0];
  let records = existing.detections ?? [];
  if (own !== undefined) {
    const at = records.findIndex((r) => r.id === own.id);
    if (at >= 0) records = records.map((r, i) => (i === at ? own : r));
    else if (added) records = boundedRecords([...records, own]);
  }
  const isFirst = sameDetection || existing.detection_ids[0] === found.id;
  const rules = union(existing.rules ?? [existing.rule.id], found.rules ?? [found.rule.id]);
  const severity = (
    SEVERITY_RANK[found.severity] > SEVERITY_RANK[existing.severity] ? found.severity : existing.severity
  ) as Severity;
  return {
    detection_ids: detectionIds,
    occurrences: detectionIds.length,
    rules,
    severity,
    severity_rank: SEVERITY_RANK[severity],
    // An incident written before detections were recorded keeps its risk as a floor.
    risk:
      records.length > 0
        ? combinedRisk(records, (existing.detections?.length ?? 0) === 0 ? existing.risk : 0)
        : found.risk,
    entities: unionEntities(existing.entities, found.entities),
    entity_names: names,
    suppression_keys: union(existing.suppression_keys ?? [], found.suppression_keys ?? []),
    last_seen: maxIso(existing.last_seen, found.last_seen),
    first_seen: minIso(existing.first_seen, found.first_seen),
    detections: records,
    // The incident's own window, title, summary and figures are its first detection's.
    ...(isFirst
      ? {
          window: found.window,
          title: found.title,
          summary: found.summary,
          metrics: found.metrics,
          event_count: found.event_count,
        }
      : {}),
    evidence: {
      event_ids: union(existing.evidence.event_ids, found.evidence.event_ids, MAX_EVIDENCE),
      query: existing.evidence.query,
    },
    updated_at: found.updated_at,
  };
}

/** Where incidents live: Elasticsearch (./es-store.ts) or the embedded SQLite file. */
export interface IncidentStore {
  /** The incident and an opaque version for optimistic concurrency. */
  get(id: string): Promise<{ incident: Incident; version: string } | undefined>;
  /** The incident that absorbed a detection id (its own or merged by suppression or folding). */
  findByDetectionId(detectionId: string): Promise<Incident | undefined>;
  /**
   * Incidents in `statuses` holding a detection of `found`'s rule with its suppression key
   * (`suppression_keys`), last seen after `since`; the writer checks the period on the
   * detection records.
   */
  findSuppressing(found: Incident, statuses: string[], since: string): Promise<Incident[]>;
  /**
   * Open incidents (`statuses`) whose span [first_seen, last_seen] meets [from, to] and that
   * either name `entity` ("role:value") among their entities or are about one of `keys` (their
   * `entity_key`); the most recent first, at most 20.
   */
  findFolding(
    entity: string,
    keys: string[],
    statuses: string[],
    from: string,
    to: string,
  ): Promise<Incident[]>;
  /** Create unless the id exists. */
  create(incident: Incident): Promise<'created' | 'exists'>;
  /** Apply a partial update if the version still matches. */
  update(id: string, patch: Partial<Incident>, version: string): Promise<'ok' | 'conflict'>;
}

async function updateWithRetry(
  store: IncidentStore,
  id: string,
  change: (current: Incident) => Partial<Incident> | undefined,
): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await store.get(id);
    if (!current) throw new Error(`incident ${id} vanished during an update`);
    const patch = change(current.incident);
    if (!patch) return false;
    if ((await store.update(id, patch, current.version)) === 'ok') return true;
    // raced a triage edit: read again and re-apply
  }
  throw new Error(`incident ${id}: too many concurrent updates`);
}

/** Show API keys by their name beside the fingerprint in a title or summary. */
export function withNames(text: string, names: Record<string, string>): string {
  let out = text;
  for (const [value, name] of Object.entries(names)) {
    if (value.length < 16 || name === value || !out.includes(value)) continue;
    out = out.split(value).join(`${name} (${value.slice(0, 8)})`);
  }
  return out;
}

/** `found` with `names` recorded and shown in its title, summary and detection record. */
function withNamesOn(found: Incident, names: Record<string, string>): Incident {
  if (Object.keys(names).length === 0) return found;
  return {
    ...found,
    entity_names: { ...found.entity_names, ...names },
    title: withNames(found.title, names),
    summary: withNames(found.summary, names),
    detections: (found.detections ?? []).map((r, i) =>
      i === 0 ? { ...r, title: withNames(r.title, names), summary: withNames(r.summary, names) } : r,
    ),
  };
}

async function named(found: Incident, names: WriteOptions['names']): Promise<Incident> {
  if (names === undefined || (found.entities.api_key?.length ?? 0) === 0) return found;
  return withNamesOn(found, await names(found.entities, { from: found.first_seen, to: found.last_seen }));
}

/**
 * The incident whose suppression period [t, t + P) holds `found`'s event time, t being the window
 * end of the first detection of `found`'s rule and key there (the period is anchored there and
 * not extended by what the incident absorbs).
 */
function suppressingIncident(
  candidates: Incident[],
  found: Incident,
  periodMs: number,
): Incident | undefined {
  const end = Date.parse(found.window.end);
  let best: { incident: Incident; t: number } | undefined;
  for (const c of candidates) {
    if (c.id === found.id) continue;
    const first =
      c.detections?.find(
        (d) => d.rule.id === found.rule.id && (d.suppression_key ?? null) === found.suppression_key,
      ) ??
      // Written before detections were recorded: the incident's own window.
      (c.rule.id === found.rule.id && c.suppression_key === found.suppression_key
        ? { window: c.window }
        : undefined);
    if (!first) continue;
    const t = Date.parse(first.window.end);
    if (t > end || end >= t + periodMs) continue;
    if (!best || t < best.t) best = { incident: c, t };
  }
  return best?.incident;
}

/** The open incident `found` folds into: about its entity, or naming it, close enough in time. */
async function foldTarget(
  store: IncidentStore,
  found: Incident,
  windowMs: number,
): Promise<Incident | undefined> {
  if (windowMs <= 0 || found.entity_key === null) return undefined;
  const from = new Date(Date.parse(found.first_seen) - windowMs).toISOString();
  const to = new Date(Date.parse(found.last_seen) + windowMs).toISOString();
  const keys = entityKeys(found.entities);
  const candidates = (await store.findFolding(found.entity_key, keys, OPEN, from, to)).filter(
    (c) => c.id !== found.id,
  );
  // The nearest in time (overlapping spans first): two campaigns on one login route an hour
  // apart stay apart from the detection that saw only the first.
  const start = Date.parse(found.first_seen);
  const end = Date.parse(found.last_seen);
  const gap = (c: Incident) => Math.max(0, Date.parse(c.first_seen) - end, start - Date.parse(c.last_seen));
  let best: Incident | undefined;
  for (const c of candidates) if (best === undefined || gap(c) < gap(best)) best = c;
  return best;
}

/**
 * Write the incidents one rule run found. Runs of one rule are serialised by the scheduler, so
 * the suppression look-up cannot race another run of the same rule; folding across rules is
 * serialised by `options.lock` when several processes write.
 */
export async function writeIncidents(
  store: IncidentStore,
  incidents: Incident[],
  options: WriteOptions = {},
): Promise<WriteOutcome> {
  const outcome: WriteOutcome = { created: [], updated: [], suppressed: [], folded: [], excepted: [] };
  const suppression = options.suppression;
  const foldWindow = options.foldWindowMs ?? DEFAULT_FOLD_WINDOW_MS;
  const serial = options.lock ?? (<T>(fn: () => Promise<T>) => fn());
  // In event-time order: suppression is anchored at the first incident's window end, so a run
  // whose paths list detections in another order (partials by group, raw by bucket) would
  // otherwise open the incident on a later window and fold the earlier one into it.
  let toWrite = [...incidents].sort(
    (a, b) =>
      Date.parse(a.window.end) - Date.parse(b.window.end) ||
      Date.parse(a.window.start) - Date.parse(b.window.start),
  );
  if (options.exceptions && options.exceptions.list.length > 0) {
    const split = applyExceptions(toWrite, options.exceptions.list, options.exceptions.now);
    toWrite = split.kept;
    outcome.excepted = split.excepted.map((e) => e.incident.id);
  }
  for (const raw of toWrite) {
    // Already known under its own id: update in place.
    if (await store.get(raw.id)) {
      const changed = await updateWithRetry(store, raw.id, (current) => absorb(current, raw, true));
      if (changed) outcome.updated.push(raw.id);
      continue;
    }
    // Absorbed by an earlier incident before (its id is in that incident's detection_ids)?
    const host = await store.findByDetectionId(raw.id);
    if (host) {
      await updateWithRetry(store, host.id, (current) => absorb(current, raw, false));
      outcome.suppressed.push(raw.id);
      continue;
    }
    const found = await named(raw, options.names);
    if (suppression && found.suppression_key) {
      // The period [t, t + P) is anchored at the first incident's event time t (its window
      // end) and not extended by what it absorbs (docs/rule-language.md, Suppression).
      const since = new Date(Date.parse(found.window.end) - suppression.periodMs).toISOString();
      const statuses = suppression.afterResolution === 'reopen' ? [...OPEN, 'resolved'] : OPEN;
      const open = suppressingIncident(
        await store.findSuppressing(found, statuses, since),
        found,
        suppression.periodMs,
      );
      if (open) {
        await updateWithRetry(store, open.id, (current) => {
          const patch = absorb(current, found, false);
          if (current.status === 'resolved' && suppression.afterResolution === 'reopen') {
            return {
              ...patch,
              status: 'triaged',
              resolved_at: null,
              history: [
                ...current.history,
                {
                  at: found.updated_at,
                  by: 'gatewatch',
                  field: 'status',
                  from: 'resolved',
                  to: 'triaged',
                  note: 'reopened by a repeat detection',
                },
              ],
            };
          }
          return patch;
        });
        outcome.suppressed.push(found.id);
        continue;
      }
    }
    const result = await serial(async () => {
      const target = await foldTarget(store, found, foldWindow);
      if (target) {
        await updateWithRetry(store, target.id, (current) => absorb(current, found, false));
        return 'folded' as const;
      }
      return store.create(found);
    });
    if (result === 'folded') outcome.folded.push(found.id);
    else if (result === 'created') outcome.created.push(found.id);
    else {
      await updateWithRetry(store, found.id, (current) => absorb(current, found, true));
      outcome.updated.push(found.id);
    }
  }
  return outcome;
}
