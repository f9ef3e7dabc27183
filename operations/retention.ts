/**
 * Retention: how long each kind of data is kept (`retention.*`), in one policy shared by the
 * Elasticsearch lifecycle (operations/lifecycle.ts), the embedded store (embedded/retention.ts)
 * and the API, which shows it and says when an incident's events have expired.
 *
 *   events        whole indices, once their newest event is older than retention.events
 *   dead letters  documents older than retention.deadLetters (@timestamp)
 *   rule runs     run records (and lifecycle run records) older than retention.ruleRuns
 *   incidents     kept longest: closed (resolved, false positive) or never looked at (new)
 *                 incidents not updated for retention.incidents; triaged and in-remediation
 *                 ones stay until closed. An incident outlives the events it was found in.
 *   inventory     API endpoints not seen for retention.inventory (derived from events)
 *   audit         API audit entries older than retention.audit
 */
import { durationMs } from '../core/config/load.ts';
import type { RetentionConfig } from '../core/config/schema.ts';

export const RETENTION_KINDS = [
  'events',
  'deadLetters',
  'ruleRuns',
  'incidents',
  'inventory',
  'audit',
] as const;
export type RetentionKind = (typeof RETENTION_KINDS)[number];

export type RetentionPolicy = Record<RetentionKind, number>;

export function retentionPolicy(config: RetentionConfig): RetentionPolicy {
  return Object.fromEntries(RETENTION_KINDS.map((k) => [k, durationMs(config[k])])) as RetentionPolicy;
}

/** Incident statuses retention may delete (the others wait until someone closes them). */
export const EXPIRING_INCIDENT_STATUSES = ['new', 'resolved', 'false_positive'] as const;

/** What an incident's evidence says once its events are (partly) gone. */
export interface EvidenceExpiry {
  /** When the events of the incident's window were (or will be) deleted. */
  at: string;
  /** Only the earliest of its events are gone. */
  partial: boolean;
  note: string;
}

/**
 * Whether the events behind an incident (its window) are still stored: `earliest` is the
 * oldest event stored now (undefined: none are). Undefined when they all are.
 */
export function evidenceExpiry(
  window: { start: string; end: string },
  earliest: number | undefined,
  eventsRetentionMs: number,
  retentionText: string,
): EvidenceExpiry | undefined {
  const start = Date.parse(window.start);
  const end = Date.parse(window.end);
  if (earliest !== undefined && earliest <= start) return undefined;
  const partial = earliest !== undefined && earliest < end;
  const at = new Date((partial ? start : end) + eventsRetentionMs).toISOString();
  return {
    at,
    partial,
    note: partial
      ? `events before ${new Date(earliest).toISOString()} have expired (retention.events ${retentionText}): the evidence query finds only this incident's later events`
      : `this incident's events expired around ${at.slice(0, 10)} (retention.events ${retentionText}); the evidence query finds none of them now — the incident, its detections and its evidence ids are kept`,
  };
}
