/**
 * API inventory findings (shadow, zombie, orphan, undocumented parameters and statuses,
 * anonymous success) become incidents. A finding's id is a hash of (kind, host, method,
 * route), so it is the incident id: raising the same finding again updates the incident
 * instead of opening another one.
 */
import type { Incident } from '../core/schema/incident.ts';
import { SEVERITY_RANK } from '../core/schema/incident.ts';
import { Classifier, type Finding } from '../inventory/classify.ts';
import type { SpecStore } from '../inventory/specs/registry.ts';
import type { InventoryStore } from '../inventory/store.ts';
import { type IncidentStore, type WriteOutcome, writeIncidents } from './incidents/writer.ts';

const OWASP_API9 = 'API9:2023';

export function findingToIncident(finding: Finding, now: Date): Incident {
  const at = now.toISOString();
  const first = finding.first_seen ?? at;
  const last = finding.last_seen ?? at;
  return {
    id: finding.id,
    rule: {
      id: `inventory-${finding.kind}`,
      version: '1',
      title: `API inventory: ${finding.kind}`,
      kind: 'inventory',
    },
    severity: finding.severity,
    severity_rank: SEVERITY_RANK[finding.severity],
    risk: { low: 21, medium: 47, high: 73 }[finding.severity],
    title: finding.title,
    summary: finding.detail,
    status: 'new',
    assignee: null,
    tags: [OWASP_API9, `inventory:${finding.kind}`],
    rules: [`inventory-${finding.kind}`],
    entity_key: `route:${finding.route}`,
    entity_names: {},
    group: {
      'url.domain': finding.host,
      'http.request.method': finding.method,
      'gatewatch.route': finding.route,
    },
    group_key: JSON.stringify([finding.host, finding.method, finding.route]),
    entities: { route: [finding.route] },
    window: { start: first, end: last },
    first_seen: first,
    last_seen: last,
    occurrences: 1,
    detection_ids: [finding.id],
    event_count: 0,
    metrics: {},
    detections: [],
    evidence: {
      event_ids: [],
      query: `url.domain == ${JSON.stringify(finding.host)} and http.request.method == ${JSON.stringify(finding.method)} and gatewatch.route == ${JSON.stringify(finding.route)}`,
    },
    suppression_key: null,
    suppression_keys: [],
    created_at: at,
    updated_at: at,
    acknowledged_at: null,
    resolved_at: null,
    history: [],
    comments: [],
  };
}

/** Classify the whole inventory against the imported specs and raise every finding. */
export async function raiseInventoryFindings(
  inventory: InventoryStore,
  specs: SpecStore,
  incidents: IncidentStore,
  now = new Date(),
): Promise<WriteOutcome & { findings: number }> {
  const classifier = new Classifier(await specs.list());
  const endpoints = [];
  for await (const e of inventory.all()) endpoints.push(e);
  const findings = classifier.findings(endpoints, now);
  const outcome = await writeIncidents(
    incidents,
    findings.map((f) => findingToIncident(f, now)),
  );
  return { ...outcome, findings: findings.length };
}
