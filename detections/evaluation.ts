/**
 * Scoring incidents against ground truth written by whoever ran the traffic: one attack (or one
 * notable benign actor) per line, tool-neutral, in JSON Lines (docs/evaluation.md):
 *
 *   {"id":"hydra-form","class":"credential_stuffing","tool":"hydra 9.4",
 *    "entities":{"ip":["127.70.1.2"],"route":["/api/login"]},"start":"…","end":"…"}
 *
 * A label says nothing about which rule should fire: an incident counts for an attack when its
 * time span overlaps the attack's and it names one of the attack's entities (an address, an
 * account, an API key by its raw value or the gateway's name for it, a route, a user agent, a
 * network). Recall is per class (an attack is found when at least one incident matches it);
 * precision is over incidents. An incident that only matches attacks an earlier incident already
 * matched is a duplicate: counted apart, neither a true nor a false positive, because "one
 * attack, one incident" is itself a promise worth measuring.
 */
import type { Entities, EntityRole, Incident } from '../core/schema/incident.ts';
import { networkPrefix } from '../ingest/transforms/network.ts';

/** Entity kinds a label may name (the incident entity roles). */
export type LabelEntityKind = EntityRole;

export interface GroundTruthLabel {
  id: string;
  /** Attack class, free text (e.g. credential_stuffing, bola), or "benign" for notable benign actors. */
  class: string;
  tool?: string;
  description?: string;
  entities: Partial<Record<LabelEntityKind, string[]>>;
  start: string;
  end: string;
  requests?: number;
}

export interface ScoringOptions {
  /** Time allowed between an incident and an attack's span (default 5 minutes). */
  slackMs?: number;
  /** An API key fingerprint for each identity form a raw key value can take (the configured secret). */
  keyFingerprints?: (raw: string) => string[];
}

export interface ClassScore {
  class: string;
  attacks: number;
  found: number;
  recall: number;
  /** Incidents that were the first to match an attack of this class. */
  incidents: number;
  duplicates: number;
  missed: string[];
}

export interface EvaluationReport {
  classes: ClassScore[];
  incidents: number;
  truePositives: number;
  falsePositives: number;
  duplicates: number;
  /** truePositives / (truePositives + falsePositives). */
  precision: number;
  /** Attacks found / attacks, over every class. */
  recall: number;
  /** The lowest recall of any class. */
  minClassRecall: number;
  falsePositiveIncidents: { id: string; rules: string[]; title: string; benign?: string }[];
  duplicateIncidents: { id: string; rules: string[]; title: string; of: string[] }[];
}

/** Parse JSON Lines ground truth; errors name the line. */
export function parseGroundTruth(text: string, file = 'labels.jsonl'): GroundTruthLabel[] {
  const out: GroundTruthLabel[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const o = v as Partial<GroundTruthLabel>;
    const problem =
      typeof o !== 'object' || o === null
        ? 'a label must be a JSON object'
        : typeof o.class !== 'string' || o.class === ''
          ? '`class` is missing'
          : typeof o.entities !== 'object' || o.entities === null
            ? '`entities` is missing'
            : Number.isNaN(Date.parse(String(o.start))) || Number.isNaN(Date.parse(String(o.end)))
              ? '`start` and `end` must be ISO-8601 times'
              : undefined;
    if (problem) throw new Error(`${file}:${i + 1}: ${problem}`);
    out.push({ ...(o as GroundTruthLabel), id: o.id ?? `line-${i + 1}` });
  });
  return out;
}

/** A route template (`/users/{id}/addresses`) matches a literal path with a value in its place. */
function routeMatches(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = a.split('/');
  const pb = b.split('/');
  if (pa.length !== pb.length) return false;
  for (let i = 0; i < pa.length; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x !== y && !x.startsWith('{') && !y.startsWith('{')) return false;
  }
  return true;
}

function networkMatches(labelValue: string, incidentValue: string): boolean {
  if (labelValue === incidentValue) return true;
  // A label may name an address inside the incident's network block.
  return !labelValue.includes('/') && networkPrefix(labelValue) === incidentValue;
}

function span(inc: Incident): { start: number; end: number } {
  return {
    start: Math.min(Date.parse(inc.window.start), Date.parse(inc.first_seen)),
    end: Math.max(Date.parse(inc.window.end), Date.parse(inc.last_seen)),
  };
}

/**
 * Whether the incident names one of the label's entities. A route is shared by every client of
 * it, so it counts only when it is what the incident is about (its entity_key: a route-level
 * detection); addresses, accounts, keys, agents and networks count wherever the incident names them.
 */
function sharesEntity(label: GroundTruthLabel, inc: Incident, opts: ScoringOptions): boolean {
  const e: Entities = inc.entities;
  const names = inc.entity_names ?? {};
  const aboutRoute = inc.entity_key?.startsWith('route:') === true;
  for (const [kind, values] of Object.entries(label.entities) as [LabelEntityKind, string[]][]) {
    if (!values || values.length === 0) continue;
    if (kind === 'route' && !aboutRoute) continue;
    const mine = e[kind] ?? [];
    for (const v of values) {
      switch (kind) {
        case 'api_key': {
          const fps = opts.keyFingerprints?.(v) ?? [];
          if (mine.some((fp) => fp === v || fps.includes(fp) || names[fp] === v)) return true;
          break;
        }
        case 'route':
          if (mine.some((r) => routeMatches(r, v))) return true;
          break;
        case 'network':
          if (mine.some((n) => networkMatches(v, n))) return true;
          break;
        case 'user':
          // An account may be the key identity of Basic credentials (named by its user).
          if (mine.includes(v) || Object.values(names).includes(v)) return true;
          break;
        default:
          if (mine.includes(v)) return true;
      }
    }
    // An address named by the label lies in a network the incident names.
    if (kind === 'ip')
      for (const v of values) if ((e.network ?? []).some((n) => networkMatches(v, n))) return true;
  }
  return false;
}

export function labelMatches(label: GroundTruthLabel, inc: Incident, opts: ScoringOptions = {}): boolean {
  const slack = opts.slackMs ?? 5 * 60_000;
  const s = span(inc);
  if (s.start > Date.parse(label.end) + slack || s.end < Date.parse(label.start) - slack) return false;
  return sharesEntity(label, inc, opts);
}

export function scoreIncidents(
  labels: GroundTruthLabel[],
  incidents: Incident[],
  opts: ScoringOptions = {},
): EvaluationReport {
  const attacks = labels.filter((l) => l.class !== 'benign');
  const benign = labels.filter((l) => l.class === 'benign');
  const ordered = [...incidents].sort(
    (a, b) => span(a).start - span(b).start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  const found = new Map<string, string>();
  const tpByClass = new Map<string, number>();
  const dupByClass = new Map<string, number>();
  const falsePositiveIncidents: EvaluationReport['falsePositiveIncidents'] = [];
  const duplicateIncidents: EvaluationReport['duplicateIncidents'] = [];
  let tp = 0;
  for (const inc of ordered) {
    const rules = inc.rules?.length ? inc.rules : [inc.rule.id];
    const hits = attacks.filter((l) => labelMatches(l, inc, opts));
    if (hits.length === 0) {
      const b = benign.find((l) => labelMatches(l, inc, opts));
      falsePositiveIncidents.push({ id: inc.id, rules, title: inc.title, ...(b ? { benign: b.id } : {}) });
      continue;
    }
    const fresh = hits.filter((l) => !found.has(l.id));
    if (fresh.length === 0) {
      duplicateIncidents.push({ id: inc.id, rules, title: inc.title, of: hits.map((l) => l.id) });
      for (const c of new Set(hits.map((l) => l.class))) dupByClass.set(c, (dupByClass.get(c) ?? 0) + 1);
      continue;
    }
    tp++;
    for (const l of fresh) found.set(l.id, inc.id);
    for (const c of new Set(fresh.map((l) => l.class))) tpByClass.set(c, (tpByClass.get(c) ?? 0) + 1);
  }
  const classes = [...new Set(attacks.map((l) => l.class))].sort().map((c): ClassScore => {
    const mine = attacks.filter((l) => l.class === c);
    const hit = mine.filter((l) => found.has(l.id));
    return {
      class: c,
      attacks: mine.length,
      found: hit.length,
      recall: mine.length === 0 ? 1 : hit.length / mine.length,
      incidents: tpByClass.get(c) ?? 0,
      duplicates: dupByClass.get(c) ?? 0,
      missed: mine.filter((l) => !found.has(l.id)).map((l) => l.id),
    };
  });
  const fp = falsePositiveIncidents.length;
  return {
    classes,
    incidents: incidents.length,
    truePositives: tp,
    falsePositives: fp,
    duplicates: duplicateIncidents.length,
    precision: tp + fp === 0 ? 1 : tp / (tp + fp),
    recall: attacks.length === 0 ? 1 : found.size / attacks.length,
    minClassRecall: classes.reduce((m, c) => Math.min(m, c.recall), 1),
    falsePositiveIncidents,
    duplicateIncidents,
  };
}
