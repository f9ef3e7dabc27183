/**
 * Writes incidents exactly once. An incident's id is its first detection's id, a hash of
 * (rule id, rule version, group key, window start): created with create semantics, and when it
 * already exists (an overlapping look-back, a retried run, a catch-up) updated in place.
 *
 * Suppression: a detection whose suppression key matches an open incident of the same rule
 * seen within the suppression period is merged into that incident; its id joins
 * `detection_ids`, from which `occurrences` is counted, so merging is idempotent too.
 * Updates are partial documents guarded by sequence numbers (optimistic concurrency); no
 * scripts, which the test node does not have.
 */
import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import type { Incident } from '../../core/schema/incident.ts';
import { incidentMappings } from '../../core/schema/incident.ts';
import { ensureIndex, indexNames } from '../../core/store/elasticsearch.ts';

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
}

export async function ensureIncidentIndex(client: Client, prefix: string): Promise<void> {
  await ensureIndex(client, indexNames(prefix).incidents, {
    settings: { number_of_shards: 1, number_of_replicas: 0 },
    mappings: incidentMappings,
  });
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
    last_seen: found.last_seen > existing.last_seen ? found.last_seen : existing.last_seen,
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

async function updateWithRetry(
  client: Client,
  index: string,
  id: string,
  change: (current: Incident) => Partial<Incident> | undefined,
): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await client.get<Incident>({ index, id });
    const patch = change(current._source!);
    if (!patch) return false;
    try {
      await client.update({
        index,
        id,
        doc: patch,
        if_seq_no: current._seq_no!,
        if_primary_term: current._primary_term!,
        refresh: 'wait_for',
      });
      return true;
    } catch (err) {
      if (err instanceof errors.ResponseError && err.statusCode === 409) continue; // raced a triage edit
      throw err;
    }
  }
  throw new Error(`incident ${id}: too many concurrent updates`);
}

async function findSuppressing(
  client: Client,
  index: string,
  found: Incident,
  policy: SuppressionPolicy,
): Promise<Incident | undefined> {
  const since = new Date(Date.parse(found.first_seen) - policy.periodMs).toISOString();
  const statuses = policy.afterResolution === 'reopen' ? [...OPEN, 'resolved'] : OPEN;
  const response = await client.search<Incident>({
    index,
    size: 1,
    query: {
      bool: {
        filter: [
          { term: { 'rule.id': found.rule.id } },
          { term: { suppression_key: found.suppression_key! } },
          { terms: { status: statuses } },
          { range: { last_seen: { gte: since } } },
        ],
        must_not: [{ term: { id: found.id } }],
      },
    },
    sort: [{ last_seen: 'desc' }],
  });
  return response.hits.hits[0]?._source;
}

/**
 * Write the incidents one rule run found. Runs of one rule are serialised by the scheduler,
 * so the suppression look-up cannot race another run of the same rule.
 */
export async function writeIncidents(
  client: Client,
  prefix: string,
  incidents: Incident[],
  suppression?: SuppressionPolicy,
): Promise<WriteOutcome> {
  const index = indexNames(prefix).incidents;
  const outcome: WriteOutcome = { created: [], updated: [], suppressed: [] };
  for (const found of incidents) {
    // Already known under its own id: update in place.
    const exists = await client.exists({ index, id: found.id });
    if (exists) {
      const changed = await updateWithRetry(client, index, found.id, (current) => mergeFields(current, found, true));
      if (changed) outcome.updated.push(found.id);
      continue;
    }
    // Merged into an earlier incident before? (its id is in that incident's detection_ids)
    const merged = await client.search<Incident>({
      index,
      size: 1,
      query: { term: { detection_ids: found.id } },
    });
    const host = merged.hits.hits[0]?._source;
    if (host) {
      await updateWithRetry(client, index, host.id, (current) => mergeFields(current, found, false));
      outcome.suppressed.push(found.id);
      continue;
    }
    if (suppression && found.suppression_key) {
      const open = await findSuppressing(client, index, found, suppression);
      if (open) {
        await updateWithRetry(client, index, open.id, (current) => {
          const patch = mergeFields(current, found, false);
          if (current.status === 'resolved' && suppression.afterResolution === 'reopen') {
            return {
              ...patch,
              status: 'triaged',
              resolved_at: null,
              history: [
                ...current.history,
                { at: found.updated_at, by: 'gatewatch', field: 'status', from: 'resolved', to: 'triaged', note: 'reopened by a repeat detection' },
              ],
            };
          }
          return patch;
        });
        outcome.suppressed.push(found.id);
        continue;
      }
    }
    try {
      await client.create({ index, id: found.id, document: found, refresh: 'wait_for' });
      outcome.created.push(found.id);
    } catch (err) {
      if (!(err instanceof errors.ResponseError && err.statusCode === 409)) throw err;
      await updateWithRetry(client, index, found.id, (current) => mergeFields(current, found, true));
      outcome.updated.push(found.id);
    }
  }
  return outcome;
}
