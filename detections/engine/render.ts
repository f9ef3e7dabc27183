/**
 * Turning a finding into a Detection: template rendering, entities, the evidence query (a
 * rule-language filter reproducing the events) and the suppression key. Shared by both
 * backends.
 */
import type { Entities } from '../../core/schema/incident.ts';
import type { FilterExpr, RuleIR, Scalar, Template } from '../../parser/ir.ts';
import { type Detection, detectionId, type GroupValue, type TimeRange } from './types.ts';
import { accessor, canonicalValues, fieldKind, groupKeyOf } from './values.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/** Numbers with at most 3 decimals, trailing zeros removed. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return String(Number(n.toFixed(3)));
}

function formatValue(v: unknown): string {
  if (v === undefined || v === null) return '(none)';
  if (Array.isArray(v)) return v.length === 0 ? '(none)' : v.map(formatValue).join(', ');
  if (typeof v === 'number') return formatNumber(v);
  return String(v);
}

export interface RenderContext {
  builtins: Record<string, string>;
  metrics: Record<string, number | null>;
  group: Record<string, GroupValue>;
  event?: unknown;
}

export function renderTemplate(t: Template, ctx: RenderContext): string {
  let out = '';
  for (const part of t.parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    const ref = part.ref;
    if (ref in ctx.builtins) out += ctx.builtins[ref];
    else if (ref in ctx.metrics) {
      const m = ctx.metrics[ref];
      out += m === null || m === undefined ? 'n/a' : formatNumber(m);
    } else if (ref in ctx.group) out += formatValue(ctx.group[ref]);
    else if (ctx.event !== undefined) out += formatValue(accessor(ref)(ctx.event));
    else out += '(none)';
  }
  return out;
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function scalar(v: Scalar | null): string {
  if (v === null) return 'null';
  return typeof v === 'string' ? quote(v) : String(v);
}

/** FilterExpr as rule-language text. */
export function filterToText(e: FilterExpr): string {
  const sub = (x: FilterExpr) => (x.op === 'and' || x.op === 'or' ? `(${filterToText(x)})` : filterToText(x));
  const nc = (ci: boolean) => (ci ? ' nocase' : '');
  switch (e.op) {
    case 'true':
      return 'true';
    case 'and':
    case 'or':
      return e.args.length === 0 ? 'true' : e.args.map(sub).join(` ${e.op} `);
    case 'not':
      return `not ${sub(e.arg)}`;
    case 'cmp':
      return `${e.field} ${e.cmp} ${scalar(e.value)}`;
    case 'in':
      return `${e.field} in (${e.values.map(scalar).join(', ')})`;
    case 'wildcard':
      return `${e.field} like ${quote(e.pattern)}${nc(e.caseInsensitive)}`;
    case 'contains':
    case 'startswith':
    case 'endswith':
      return `${e.field} ${e.op} ${quote(e.value)}${nc(e.caseInsensitive)}`;
    case 'regex':
      return `${e.field} matches /${e.pattern.replaceAll('/', '\\/')}/`;
    case 'cidr':
      return `${e.field} cidr (${e.cidrs.map(quote).join(', ')})`;
    case 'exists':
      return `${e.field} exists`;
  }
}

export function evidenceQuery(rule: RuleIR, group: Record<string, GroupValue>, range: TimeRange): string {
  const parts: string[] = [];
  if (rule.filter.op !== 'true')
    parts.push(rule.filter.op === 'or' ? `(${filterToText(rule.filter)})` : filterToText(rule.filter));
  for (const [f, v] of Object.entries(group)) {
    if (v === null) parts.push(`not ${f} exists`);
    else if (fieldKind(f) === 'date' && typeof v === 'number') parts.push(`${f} == ${quote(iso(v))}`);
    else parts.push(`${f} == ${scalar(v)}`);
  }
  parts.push(`@timestamp >= ${quote(iso(range.start))}`, `@timestamp < ${quote(iso(range.end))}`);
  return parts.join(' and ');
}

function entitiesOf(rule: RuleIR, group: Record<string, GroupValue>, event: unknown): Entities {
  const out: Entities = {};
  for (const { role, field } of rule.output.entities) {
    const vals =
      field in group
        ? group[field] === null
          ? []
          : [group[field]]
        : canonicalValues(fieldKind(field), event === undefined ? undefined : accessor(field)(event));
    if (vals.length === 0) continue;
    const list = out[role] ?? [];
    out[role] = list;
    for (const v of vals) if (!list.includes(String(v))) list.push(String(v));
  }
  return out;
}

function suppressionKeyOf(rule: RuleIR, group: Record<string, GroupValue>, event: unknown): string | null {
  const s = rule.output.suppress;
  if (!s) return null;
  const vals = s.keyFields.map((f) => {
    if (f in group) return group[f] ?? null;
    if (event === undefined) return null;
    return canonicalValues(fieldKind(f), accessor(f)(event))[0] ?? null;
  });
  return JSON.stringify([rule.id, vals]);
}

export interface Finding {
  groupFields: string[];
  groupValues: GroupValue[];
  anchor: number | string;
  window: TimeRange;
  firstSeen: number;
  lastSeen: number;
  eventCount: number;
  metrics: Record<string, number | null>;
  sampleEventIds: string[];
  /** The event whose fields templates may name (filter, first_seen: the event; sequence: the last). */
  event?: unknown;
  builtins?: Record<string, string>;
  /** Time range for the evidence query. */
  evidenceRange: TimeRange;
}

/**
 * The detection of one event (filter rules; first seen: the key's first event): its window is
 * the event's millisecond, its evidence the event itself.
 */
export function eventDetection(
  rule: RuleIR,
  event: { ts: number; id: string; fields: unknown },
  group: { fields: string[]; values: (string | number | boolean)[] } = { fields: [], values: [] },
): Detection {
  const { ts, id } = event;
  return buildDetection(rule, {
    groupFields: group.fields,
    groupValues: group.values,
    anchor: id,
    window: { start: ts, end: ts + 1 },
    firstSeen: ts,
    lastSeen: ts,
    eventCount: 1,
    metrics: {},
    sampleEventIds: rule.output.evidence.sampleSize > 0 ? [id] : [],
    event: event.fields,
    evidenceRange: { start: ts, end: ts + 1 },
  });
}

export function buildDetection(rule: RuleIR, f: Finding): Detection {
  const group: Record<string, GroupValue> = {};
  f.groupFields.forEach((name, i) => {
    group[name] = f.groupValues[i] ?? null;
  });
  const groupKey = groupKeyOf(f.groupValues);
  const builtins: Record<string, string> = {
    'rule.id': rule.id,
    'rule.title': rule.title,
    'rule.severity': rule.severity,
    'window.start': iso(f.window.start),
    'window.end': iso(f.window.end),
    ...f.builtins,
  };
  const ctx: RenderContext = { builtins, metrics: f.metrics, group, event: f.event };
  return {
    id: detectionId(rule.id, rule.version, groupKey, f.anchor),
    ruleId: rule.id,
    ruleVersion: rule.version,
    kind: rule.kind,
    groupKey,
    group,
    window: f.window,
    firstSeen: f.firstSeen,
    lastSeen: f.lastSeen,
    eventCount: f.eventCount,
    metrics: f.metrics,
    sampleEventIds: f.sampleEventIds,
    entities: entitiesOf(rule, group, f.event),
    title: renderTemplate(rule.output.title, ctx),
    summary: renderTemplate(rule.output.summary, ctx),
    evidenceQuery: evidenceQuery(rule, group, f.evidenceRange),
    suppressionKey: suppressionKeyOf(rule, group, f.event),
  };
}

/** Detections in a stable order: by first-seen time, then id. */
export function sortDetections(ds: Detection[]): Detection[] {
  return ds.sort((a, b) => a.window.start - b.window.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
