/** Display helpers. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}Z`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = s / 60;
  if (m < 120) return `${m.toFixed(0)} min`;
  const h = m / 60;
  return h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`;
}

export const STATUS_LABEL: Record<string, string> = {
  new: 'New',
  triaged: 'Triaged',
  in_remediation: 'In remediation',
  resolved: 'Resolved',
  false_positive: 'False positive',
};

export const STATUSES = ['new', 'triaged', 'in_remediation', 'resolved', 'false_positive'] as const;
export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;

/**
 * Next statuses offered from each status: the incident lifecycle documented with the API
 * (core/schema/incident.ts). The API checks every change and answers 409 to anything else.
 */
export const NEXT_STATUS: Record<string, readonly string[]> = {
  new: ['triaged', 'in_remediation', 'resolved', 'false_positive'],
  triaged: ['in_remediation', 'resolved', 'false_positive'],
  in_remediation: ['triaged', 'resolved', 'false_positive'],
  resolved: ['triaged'],
  false_positive: ['triaged'],
};

export const ENTITY_LABEL: Record<string, string> = {
  ip: 'IP',
  user: 'User',
  api_key: 'API key',
  route: 'Route',
  asn: 'ASN',
  network: 'Network',
  country: 'Country',
  user_agent: 'User agent',
  ja3: 'JA3',
};

export function entityHref(type: string, value: string): string {
  return `/entities/${encodeURIComponent(type)}/${encodeURIComponent(value)}`;
}

/** datetime-local input value (UTC) ⇄ ISO. */
export function toLocalInput(iso: string | undefined | null): string {
  return iso ? iso.slice(0, 16) : '';
}
export function fromLocalInput(value: string): string | undefined {
  return value ? new Date(`${value}:00Z`).toISOString() : undefined;
}
