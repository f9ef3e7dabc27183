/**
 * Ground truth: `labels.jsonl`, one JSON object per line, in a tool-neutral format any scorer can
 * read (documented in range/README.md). The driver writes a label for every attack it ran and for
 * every notable benign actor, from what was actually sent — source addresses recorded by the
 * range's clients or by the source-address shim, first and last request times, request counts —
 * never from detection thresholds.
 */
import { readFileSync } from 'node:fs';

export const LABEL_CLASSES = [
  'credential_stuffing',
  'password_spraying',
  'brute_force',
  'account_takeover',
  'bola',
  'forced_browsing',
  'waf_bypass',
  'injection',
  'scraping',
  'stolen_api_key',
  'credential_in_url',
  'server_error_spike',
  'benign',
] as const;
export type LabelClass = (typeof LABEL_CLASSES)[number];

export interface LabelEntities {
  ip?: string[];
  user?: string[];
  /** Raw key values as the client sent them. */
  api_key?: string[];
  /** Literal paths or path templates. */
  route?: string[];
  user_agent?: string[];
}

export interface Label {
  id: string;
  class: LabelClass;
  tool: string;
  description: string;
  entities: LabelEntities;
  /** ISO-8601 times of the first and last request actually sent. */
  start: string;
  end: string;
  requests: number;
}

/** A label being assembled during the run (sets, epoch ms), finished by toLabel(). */
export interface LabelDraft {
  id: string;
  class: LabelClass;
  tool: string;
  description: string;
  ips: Set<string>;
  users?: Iterable<string>;
  apiKeys?: Iterable<string>;
  routes?: Iterable<string>;
  userAgents?: Iterable<string>;
  first: number;
  last: number;
  /** Requests sent, when the client counted them; else counted from the gateway log (see run.ts). */
  requests?: number;
  /**
   * Tool runs: from the tool's start to its exit (and the attacker's follow-up). The requests of
   * its addresses the gateway logged in this window are the run's requests; the last of them ends
   * the label (a tool that keeps its connections open sends after its last connect).
   */
  window?: { from: number; to: number };
}

function sorted(v: Iterable<string> | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const a = [...new Set(v)].sort(ipAwareCompare);
  return a.length === 0 ? undefined : a;
}

/** Addresses in numeric order, other strings alphabetically. */
function ipAwareCompare(a: string, b: string): number {
  const pa = /^\d+\.\d+\.\d+\.\d+$/.test(a) ? a.split('.').map(Number) : undefined;
  const pb = /^\d+\.\d+\.\d+\.\d+$/.test(b) ? b.split('.').map(Number) : undefined;
  if (pa && pb) {
    for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
    return 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

export function toLabel(d: LabelDraft, requests: number): Label {
  const entities: LabelEntities = {};
  const ip = sorted(d.ips);
  if (ip) entities.ip = ip;
  const user = sorted(d.users);
  if (user) entities.user = user;
  const key = sorted(d.apiKeys);
  if (key) entities.api_key = key;
  const route = sorted(d.routes);
  if (route) entities.route = route;
  const ua = sorted(d.userAgents);
  if (ua) entities.user_agent = ua;
  return {
    id: d.id,
    class: d.class,
    tool: d.tool,
    description: d.description,
    entities,
    start: new Date(d.first).toISOString(),
    end: new Date(d.last).toISOString(),
    requests,
  };
}

/** Problems of one parsed label line (empty when valid). */
export function labelProblems(v: unknown): string[] {
  const out: string[] = [];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return ['not a JSON object'];
  const o = v as Record<string, unknown>;
  for (const k of ['id', 'tool', 'description', 'start', 'end'] as const) {
    if (typeof o[k] !== 'string' || o[k] === '') out.push(`${k} must be a non-empty string`);
  }
  if (!LABEL_CLASSES.includes(o.class as LabelClass))
    out.push(`class must be one of ${LABEL_CLASSES.join(', ')}`);
  if (typeof o.requests !== 'number' || !Number.isInteger(o.requests) || o.requests < 0)
    out.push('requests must be a non-negative integer');
  for (const k of ['start', 'end'] as const)
    if (typeof o[k] === 'string' && Number.isNaN(Date.parse(o[k]))) out.push(`${k} is not an ISO-8601 time`);
  if (typeof o.start === 'string' && typeof o.end === 'string' && Date.parse(o.start) > Date.parse(o.end))
    out.push('start is after end');
  const e = o.entities;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) out.push('entities must be an object');
  else {
    for (const [k, list] of Object.entries(e)) {
      if (!['ip', 'user', 'api_key', 'route', 'user_agent'].includes(k)) out.push(`unknown entity kind ${k}`);
      if (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))
        out.push(`entities.${k} must be a list of strings`);
    }
  }
  return out;
}

export function readLabels(path: string): Label[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      const v: unknown = JSON.parse(l);
      const p = labelProblems(v);
      if (p.length > 0) throw new Error(`${path}:${i + 1}: ${p.join('; ')}`);
      return v as Label;
    });
}
