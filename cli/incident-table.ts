/**
 * Incidents as terminal tables (replay's summary, `incidents list`), fitted to the width. The
 * entity column carries what tells incidents of one rule apart — the values of the rule's
 * group-by fields, shortened to their telling part (an API key's fingerprint prefix, "AS14061",
 * a scanner's tool rather than the browser boilerplate of its user agent) — and gives way
 * after the title, cut in the middle so both ends stay visible.
 */
import type { Incident, IncidentSummary } from '../core/schema/incident.ts';
import { type Column, renderTable } from './table.ts';

const SEVERITY_ORDER = { critical: 0, high: 1, medium: 2, low: 3 } as const;

/** Browser boilerplate in user agents: what remains is the tool (Nuclei, sqlmap …). */
const UA_BOILERPLATE =
  /\((?:[^()]|\([^()]*\))*\)|\b(?:Mozilla|AppleWebKit|Chrome|Safari|Gecko|Firefox|Version|Mobile|Edg|OPR)\/\S+|\blike Gecko\b/g;

/**
 * The telling part of a user agent: the tool named once the browser boilerplate is gone
 * ("… Chrome/105 Safari/537.36 Nuclei - Open-source project (…)" → "Nuclei"), the product in
 * "(compatible; Nmap Scripting Engine; …)", else the whole string.
 */
export function distinctiveUserAgent(ua: string): string {
  const rest = ua.replace(UA_BOILERPLATE, ' ').replace(/\s+/g, ' ').trim();
  const tool = rest.split(/\s+-\s+/)[0]!.trim();
  if (tool.length > 0 && tool !== '-') return tool;
  const compatible = /\(compatible;\s*([^;)]+)/i.exec(ua)?.[1]?.trim();
  return compatible && !/^MSIE\b/.test(compatible) ? compatible : ua;
}

const shortHash = (h: string) => (/^[0-9a-f]{16,}$/i.test(h) ? `${h.slice(0, 8)}…` : h);

/** How one group-by value reads in the entity column (a key by the name its gateway gave it). */
function groupValue(field: string, value: string | number | boolean, names: Record<string, string>): string {
  const text = String(value);
  if (field.endsWith('api_key.fingerprint')) return `key ${names[text] ?? shortHash(text)}`;
  if (field.endsWith('.as.number')) return `AS${text}`;
  if (field === 'user_agent.original') return distinctiveUserAgent(text);
  if (field.endsWith('.ja3') || field.endsWith('.ja4')) return `${field.split('.').pop()} ${shortHash(text)}`;
  return text;
}

/**
 * The entity column: the group-by values, or the incident's entities when it has no group.
 * (Incidents written before entity names were kept have none.)
 */
export function entityOf(
  i: Pick<IncidentSummary, 'group' | 'entities'> & { entity_names?: Record<string, string> },
): string {
  const names = i.entity_names ?? {};
  const parts = Object.entries(i.group)
    .filter(([, v]) => v !== null && v !== '')
    .map(([field, v]) => groupValue(field, v as string | number | boolean, names));
  if (parts.length > 0) return parts.join(' · ');
  const e = i.entities;
  return [
    ...(e.ip ?? []),
    ...(e.user ?? []),
    ...(e.api_key ?? []).map((k) => `key ${names[k] ?? shortHash(k)}`),
    ...(e.route ?? []),
    ...(e.asn ?? []).map((a) => `AS${a}`),
    ...(e.network ?? []),
    ...(e.country ?? []),
    ...(e.user_agent ?? []).map(distinctiveUserAgent),
  ].join(' · ');
}

/** The rule column: the incident's rule, and how many other rules folded into it. */
export function rulesOf(i: Pick<IncidentSummary, 'rule'> & { rules?: string[] }): string {
  const others = (i.rules ?? []).filter((r) => r !== i.rule.id).length;
  return others > 0 ? `${i.rule.id} +${others}` : i.rule.id;
}

const minute = (iso: string) => iso.slice(5, 16).replace('T', ' ');

/** Severity first, then time. */
export function bySeverity<T extends Pick<IncidentSummary, 'severity' | 'window'>>(incidents: T[]): T[] {
  return [...incidents].sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.window.start.localeCompare(b.window.start),
  );
}

/** The replay's summary: every incident, most severe first. */
export function incidentTable(incidents: Incident[], width?: number): string {
  const columns: Column[] = [
    { header: 'severity' },
    { header: 'rule', shrink: 3, min: 20, cut: 'middle' },
    { header: 'entity', shrink: 4, min: 18, cut: 'middle' },
    { header: 'window start' },
    { header: 'events', right: true },
    { header: 'title', shrink: 1, min: 24, drop: 2 },
  ];
  const rows = bySeverity(incidents).map((i) => [
    i.severity,
    rulesOf(i),
    entityOf(i),
    minute(i.window.start),
    String(i.event_count),
    i.title,
  ]);
  return renderTable(columns, rows, width);
}

/** Characters of an incident id shown in lists (commands accept any unique prefix). */
export const SHORT_ID = 12;

/** `incidents list`: one page, in the order asked for. */
export function incidentListTable(incidents: IncidentSummary[], width?: number): string {
  const columns: Column[] = [
    { header: 'id', shrink: 7, min: 8, cut: 'clip' },
    { header: 'severity' },
    { header: 'status' },
    { header: 'rule', shrink: 5, min: 16, cut: 'middle' },
    { header: 'entity', shrink: 8, min: 18, cut: 'middle' },
    { header: 'last seen', drop: 6 },
    { header: 'events', right: true },
    { header: 'assignee', shrink: 3, min: 8, drop: 4 },
    { header: 'title', shrink: 1, min: 24, drop: 2 },
  ];
  const rows = incidents.map((i) => [
    i.id.slice(0, SHORT_ID),
    i.severity,
    i.status,
    rulesOf(i),
    entityOf(i),
    minute(i.last_seen),
    String(i.event_count),
    i.assignee ?? '',
    i.title,
  ]);
  return renderTable(columns, rows, width);
}
