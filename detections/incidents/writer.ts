/**
 * Writes incidents exactly once. An incident's id is its first detection's id, a hash of
 * (rule id, rule version, group key, window start): created with create semantics, and when it
 * already exists (an overlapping look-back, a retried run, a catch-up) updated in place.
 *
 * Suppression: a detection whose suppression key matches an open incident of the same rule
 * whose suppression period [t, t + P) holds the detection's event time is merged into that
 * incident (t: the incident's window end; the period is not extended by merges); its id joins
 * `detection_ids`, from which `occurrences` is counted, so merging is idempotent too.
 * Updates are partial documents guarded by sequence numbers (optimistic concurrency); no
 * scripts, which the test node does not have.
 *
 * Exceptions: given the rule's exceptions, detections on an excepted entity are not written.
 */
import type { Incident } from '../../core/schema/incident.ts';
import { applyExceptions, type RuleException } from '../exceptions.ts';

export interface SuppressionPolicy {
  /** Suppression period in ms. */
  periodMs: number;
  /** After resolution a repeat opens a new incident (default) or reopens the resolved one. */
  afterResolution?: 'new_incident' | 'reopen';
}

export interface WriteOutcome {
  created: string[];
  updated: string[];
  suppressed: string[];
  /** Detections dropped because an exception of the rule covers one of their entities. */
  excepted: string[];
}

const OPEN = ['new', 'triaged', 'in_remediation'];
const MAX_EVIDENCE = 100;

function union(a: string[], b: string[], max = Number.POSITIVE_INFINITY): string[] {
  return [...new Set([...a, ...b])].slice(0, max);
}

/** What a re-detection changes on an existing incident (never status, history or comments). */
function mergeFields(existing: Incident, found: Incident, sameDetection: boolean): Partial<Incident> {
  const detectionIds = union(existing.detection_ids, found.detection_ids);
  const added = detectionIds.length > existing.detection_ids.length;
  return {
    detection_ids: detectionIds,
    occurrences: detectionIds.length,
    // ISO-8601 UTC strings compare in time order (Math.min/max would turn them into NaN)
    // biome-ignore lint/complexity/useMathMinMax: string comparison, not numbers
    last_seen: found.last_seen > existing.last_seen ? found.last_seen : existing.last_seen,
    // biome-ignore lint/complexity/useMathMinMax: string comparison, not numbers
    first_seen: found.first_seen < existing.first_seen ? found.first_seen : existing.first_seen,
    // The same detection recomputed (e.g. late events arrived) replaces its own figures;
    // a different detection merged by suppression adds its events.
    event_count: sameDetection ? found.event_count : existing.event_count + (added ? found.event_count : 0),
    metrics: sameDetection || added ? found.metrics : existing.metrics,
    window: sameDetection ? found.window : existing.window,
    evidence: {
      event_ids: union(existing.evidence.event_ids, found.evidence.event_ids, MAX_EVIDENCE),
      query: existing.evidence.query,
    },
    summary: sameDetection ? found.summary : existing.summary,
    updated_at: found.updated_at,
  };
}

/** Where incidents live: Elasticsearch (./es-store.ts) or the embedded SQLite file. */
export interface IncidentStore {
  /** The incident and an opaque version for optimistic concurrency. */
  get(id: string): Promise<{ incident: Incident; version: string } | undefined>;
  /** The incident that absorbed a detection id (its own or merged by suppression). */
  findByDetectionId(detectionId: string): Promise<Incident | undefined>;
  /**
   * An incident of the same rule and suppression key, in `statuses`, whose suppression period
   * covers `found`: its own event time (window end) is after `since` and not after `found`'s.
   */
  findSuppressing(found: Incident, statuses: string[], since: string): Promise<Incident | undefined>;
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

/**
 * Write the incidents one rule run found. Runs of one rule are serialised by the scheduler,
 * so the suppression look-up cannot race another run of the same rule.
 */
export async function writeIncidents(
  store: IncidentStore,
  incidents: Incident[],
  suppression?: SuppressionPolicy,
  exceptions?: { list: readonly RuleException[]; now: number },
): Promise<WriteOutcome> {
  const outcome: WriteOutcome = { created: [], updated: [], suppressed: [], excepted: [] };
  // Excepted entities are dropped first: they neither open, update nor feed a suppressed
  // incident (detections/exceptions.ts).
  let toWrite = incidents;
  if (exceptions && exceptions.list.length > 0) {
    const split = applyExceptions(incidents, exceptions.list, exceptions.now);
    toWrite = split.kept;
    outcome.excepted = split.excepted.map((e) => e.incident.id);
  }
  for (const found of toWrite) {
    // Already known under its own id: update in place.
    if (await store.get(found.id)) {
      const changed = await updateWithRetry(store, found.id, (current) => mergeFields(current, found, true));
      if (changed) outcome.updated.push(found.id);
      continue;
    }
    // Merged into an earlier incident before (its id is in that incident's detection_ids)?
    const host = await store.findByDetectionId(found.id);
    if (host) {
      await updateWithRetry(store, host.id, (current) => mergeFields(current, found, false));
      outcome.suppressed.push(found.id);
      continue;
    }
    if (suppression && found.suppression_key) {
      // The period [t, t + P) is anchored at the first incident's event time t (its window
      // end) and not extended by what it absorbs (docs/rule-language.md, Suppression).
      const since = new Date(Date.parse(found.window.end) - suppression.periodMs).toISOString();
      const statuses = suppression.afterResolution === 'reopen' ? [...OPEN, 'resolved'] : OPEN;
      const open = await store.findSuppressing(found, statuses, since);
      if (open) {
        await updateWithRetry(store, open.id, (current) => {
          const patch = mergeFields(current, found, false);
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
    if ((await store.create(found)) === 'created') outcome.created.push(found.id);
    else {
      await updateWithRetry(store, found.id, (current) => mergeFields(current, found, true));
      outcome.updated.push(found.id);
    }
  }
  return outcome;
}
