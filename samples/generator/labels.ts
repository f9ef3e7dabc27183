/**
 * Matching incidents against ground-truth labels. An incident matches an attack label when
 * the rule id is one of the label's rules, the label's entity value equals the incident's
 * group value for that field (or is among the incident's entities of that kind), every other
 * group field the label names agrees when the incident has it, and the incident's window
 * overlaps the label's span (with optional slack).
 */
import type { Label } from './types.ts';

export interface IncidentLike {
  rule: { id: string };
  /** Every rule folded into the incident (its own first); absent: only `rule`. */
  rules?: string[];
  group?: Record<string, string | number | boolean | null>;
  entities?: Partial<Record<string, string[]>>;
  window: { start: string; end: string };
}

export interface RuleScore {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  /** Incidents of the rule, and how many matched a label. */
  incidents: number;
  matchedIncidents: number;
  /** Matched incidents beyond one per label: the same attack reported again. */
  duplicates: number;
  /** Labels not found, and benign labels an incident fired on. */
  missed: string[];
  benignHits: string[];
}

const ENTITY_KINDS: Record<string, string> = { user_agent: '', ja3: '' };

/** The rules an incident stands for: its own and every rule folded into it. */
export function incidentRules(inc: IncidentLike): string[] {
  return inc.rules && inc.rules.length > 0 ? inc.rules : [inc.rule.id];
}

function valueMatches(label: Label, inc: IncidentLike, rule: string): boolean {
  const { field, value, kind } = label.ruleEntities?.[rule] ?? label.entity;
  const g = inc.group?.[field];
  if (g !== undefined && g !== null) {
    if (String(g) !== value) return false;
  } else {
    const list = kind in ENTITY_KINDS ? undefined : inc.entities?.[kind];
    if (!list?.includes(value)) return false;
  }
  for (const [f, v] of Object.entries(label.group ?? {})) {
    const x = inc.group?.[f];
    if (x !== undefined && x !== null && String(x) !== v) return false;
  }
  return true;
}

export function incidentMatchesLabel(label: Label, inc: IncidentLike, slackMs = 0): boolean {
  const rule = incidentRules(inc).find((r) => label.rules.includes(r));
  if (rule === undefined) return false;
  const ls = Date.parse(label.start) - slackMs;
  const le = Date.parse(label.end) + slackMs;
  const is = Date.parse(inc.window.start);
  const ie = Date.parse(inc.window.end);
  if (!(is <= le && ie >= ls)) return false;
  return valueMatches(label, inc, rule);
}

/** Per-rule true/false positives and negatives. Rules with neither labels nor incidents are absent. */
export function matchIncidents(
  labels: Label[],
  incidents: IncidentLike[],
  options: { slackMs?: number } = {},
): Record<string, RuleScore> {
  const slack = options.slackMs ?? 0;
  const rules = new Set<string>();
  for (const l of labels) if (l.kind === 'attack') for (const r of l.rules) rules.add(r);
  for (const l of labels) for (const r of l.optionalRules ?? []) rules.add(r);
  for (const i of incidents) for (const r of incidentRules(i)) rules.add(r);
  const out: Record<string, RuleScore> = {};
  for (const rule of [...rules].sort()) {
    const ls = labels.filter((l) => l.kind === 'attack' && l.rules.includes(rule));
    const benign = labels.filter((l) => l.kind === 'benign' && l.rules.includes(rule));
    // Attacks this rule may also see, depending on what else happens at the time: its incidents
    // on them are right, its silence is no miss.
    const optional = labels.filter((l) => l.kind === 'attack' && l.optionalRules?.includes(rule));
    const incs = incidents.filter((i) => incidentRules(i).includes(rule));
    const matches = (l: Label, i: IncidentLike) => incidentMatchesLabel({ ...l, rules: [rule] }, i, slack);
    const found = ls.filter((l) => incs.some((i) => matches(l, i)));
    const matched = incs.filter((i) => [...ls, ...optional].some((l) => matches(l, i)));
    const tp = found.length;
    const fn = ls.length - tp;
    const fp = incs.length - matched.length;
    out[rule] = {
      tp,
      fp,
      fn,
      precision: incs.length === 0 ? 1 : matched.length / incs.length,
      recall: ls.length === 0 ? 1 : tp / ls.length,
      incidents: incs.length,
      matchedIncidents: matched.length,
      duplicates: Math.max(0, matched.length - found.length),
      missed: ls.filter((l) => !found.includes(l)).map((l) => l.id),
      benignHits: benign
        .filter((b) => incs.some((i) => matches({ ...b, kind: 'attack' }, i)))
        .map((b) => b.id),
    };
  }
  return out;
}

/** Entity kinds of generator labels as ground-truth entity kinds (JA3 has no incident role). */
const GROUND_TRUTH_KIND: Partial<Record<string, string>> = {
  ip: 'ip',
  user: 'user',
  api_key: 'api_key',
  route: 'route',
  asn: 'asn',
  network: 'network',
  user_agent: 'user_agent',
  ja3: 'ja3',
};
const FIELD_KIND: Record<string, string> = {
  'source.ip': 'ip',
  'gatewatch.route': 'route',
  'user.name': 'user',
  'user.id': 'user',
  'gatewatch.api_key.fingerprint': 'api_key',
};

/**
 * The generator's per-rule labels as tool-neutral ground truth (detections/evaluation.ts): one
 * attack per label, its class the label id, its entities every entity the label names.
 */
export function toGroundTruth(labels: Label[]): import('../../detections/evaluation.ts').GroundTruthLabel[] {
  return labels.map((l) => {
    const entities: Record<string, string[]> = {};
    const add = (kind: string | undefined, value: string) => {
      if (kind === undefined) return;
      const list = entities[kind] ?? [];
      entities[kind] = list;
      if (!list.includes(value)) list.push(value);
    };
    add(GROUND_TRUTH_KIND[l.entity.kind], l.entity.value);
    // The entities of rules that must fire (an optional rule's entity, e.g. the login route several
    // campaigns share, would make one attack's incident match the others).
    for (const [rule, e] of Object.entries(l.ruleEntities ?? {}))
      if (l.rules.includes(rule)) add(GROUND_TRUTH_KIND[e.kind], e.value);
    for (const [f, v] of Object.entries(l.group ?? {})) add(FIELD_KIND[f], v);
    return {
      id: l.id,
      class: l.kind === 'benign' ? 'benign' : l.id,
      description: l.description,
      entities,
      start: l.start,
      end: l.end,
      requests: l.requests,
    };
  });
}
