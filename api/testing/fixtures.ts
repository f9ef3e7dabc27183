import { type Incident, SEVERITY_RANK, type Severity } from '../../core/schema/incident.ts';

/** A complete incident (what the detection engine writes), numbered for predictable order. */
export function makeIncident(
  n: number,
  overrides: Partial<Incident> = {},
  base = Date.parse('2026-01-01T00:00:00Z'),
): Incident {
  const severity: Severity = overrides.severity ?? (['low', 'medium', 'high', 'critical'] as const)[n % 4]!;
  const at = new Date(base + n * 60_000).toISOString();
  const id = `inc-${String(n).padStart(7, '0')}`;
  return {
    id,
    rule: { id: `rule-${n % 3}`, version: 'v1', title: `Rule ${n % 3}`, kind: 'threshold' },
    severity,
    severity_rank: SEVERITY_RANK[severity],
    risk: 10 + (n % 90),
    title:
      n % 2 === 0 ? `Credential stuffing from 203.0.113.${n % 250}` : `Scraping of /users by client ${n}`,
    summary: 'summary',
    status: 'new',
    assignee: null,
    tags: n % 2 === 0 ? ['auth'] : ['scraping'],
    rules: [`rule-${n % 3}`],
    entity_key: `ip:203.0.113.${n % 250}`,
    entity_names: {},
    group: { 'source.ip': `203.0.113.${n % 250}` },
    group_key: `203.0.113.${n % 250}`,
    entities: { ip: [`203.0.113.${n % 250}`], user: [`user-${n % 7}`] },
    window: { start: at, end: at },
    first_seen: at,
    last_seen: at,
    occurrences: 1,
    detection_ids: [id],
    event_count: 10,
    metrics: { count: 10 },
    detections: [],
    evidence: { event_ids: ['e1', 'e2'], query: 'source.ip == "203.0.113.1"' },
    suppression_key: null,
    suppression_keys: [],
    created_at: at,
    updated_at: at,
    acknowledged_at: null,
    resolved_at: null,
    history: [],
    comments: [],
    ...overrides,
  };
}
