/**
 * A deliberately small evaluator of threshold rules over parsed events, used by the tests to
 * check that attacks cross the built-in thresholds and benign traffic does not. It follows the
 * documented semantics (epoch-aligned half-open windows, exact distinct counts) but is not the
 * detection engine.
 */
import ipaddr from 'ipaddr.js';
import type { FilterExpr, HavingExpr, Metric, ThresholdRule } from '../../parser/ir.ts';

type Ev = Record<string, unknown>;

export function getField(ev: Ev, path: string): unknown {
  if (path in ev) return ev[path];
  let cur: unknown = ev;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Ev)[part];
  }
  return cur;
}

function cmp(a: unknown, op: string, b: unknown): boolean {
  if (a === undefined || a === null) return op === '!=';
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return (a as number) < (b as number);
    case '<=':
      return (a as number) <= (b as number);
    case '>':
      return (a as number) > (b as number);
    default:
      return (a as number) >= (b as number);
  }
}

function wildcard(pattern: string, ci: boolean): RegExp {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, ci ? 'si' : 's');
}

export function matches(f: FilterExpr, ev: Ev): boolean {
  switch (f.op) {
    case 'and':
      return f.args.every((a) => matches(a, ev));
    case 'or':
      return f.args.some((a) => matches(a, ev));
    case 'not':
      return !matches(f.arg, ev);
    case 'true':
      return true;
    case 'exists':
      return getField(ev, f.field) !== undefined;
    case 'cmp':
      return cmp(getField(ev, f.field), f.cmp, f.value);
    case 'in':
      return f.values.includes(getField(ev, f.field) as never);
    case 'wildcard': {
      const v = getField(ev, f.field);
      return typeof v === 'string' && wildcard(f.pattern, f.caseInsensitive).test(v);
    }
    case 'contains':
    case 'startswith':
    case 'endswith': {
      let v = getField(ev, f.field);
      if (typeof v !== 'string') return false;
      let x = f.value;
      if (f.caseInsensitive) {
        v = v.toLowerCase();
        x = x.toLowerCase();
      }
      const s = v as string;
      return f.op === 'contains' ? s.includes(x) : f.op === 'startswith' ? s.startsWith(x) : s.endsWith(x);
    }
    case 'regex': {
      const v = getField(ev, f.field);
      let p = f.pattern;
      let flags = '';
      const m = /^\(\?([a-z]+)\)/.exec(p);
      if (m) {
        flags = m[1]!.replace(/[^ims]/g, '');
        p = p.slice(m[0].length);
      }
      return typeof v === 'string' && new RegExp(p, flags).test(v);
    }
    case 'cidr': {
      const v = getField(ev, f.field);
      if (typeof v !== 'string' || !ipaddr.isValid(v)) return false;
      const a = ipaddr.process(v);
      return f.cidrs.some((c) => {
        const [r, len] = ipaddr.parseCIDR(c);
        return a.kind() === r.kind() && a.match([r, len] as never);
      });
    }
    default:
      return false;
  }
}

function metric(m: Metric, evs: Ev[]): number | null {
  switch (m.fn) {
    case 'count':
      return m.where ? evs.filter((e) => matches(m.where!, e)).length : evs.length;
    case 'distinct_count':
      return new Set(
        evs
          .map((e) => getField(e, m.field))
          .filter((v) => v !== undefined)
          .map(String),
      ).size;
    case 'ratio': {
      const den = m.of ? evs.filter((e) => matches(m.of!, e)).length : evs.length;
      return den === 0 ? null : evs.filter((e) => matches(m.where, e)).length / den;
    }
    case 'sum':
      return evs.reduce((s, e) => s + (Number(getField(e, m.field)) || 0), 0);
    default:
      return null;
  }
}

function having(h: HavingExpr, vals: Record<string, number | null>): boolean {
  switch (h.op) {
    case 'and':
      return h.args.every((a) => having(a, vals));
    case 'or':
      return h.args.some((a) => having(a, vals));
    case 'not':
      return !having(h.arg, vals);
    case 'cmp': {
      const v = vals[h.metric];
      return v !== null && v !== undefined && cmp(v, h.cmp, h.value);
    }
    case 'cmp_metric': {
      const a = vals[h.metric];
      const b = vals[h.other];
      return a !== null && a !== undefined && b !== null && b !== undefined && cmp(a, h.cmp, b);
    }
  }
}

export interface Firing {
  group: Record<string, string>;
  start: number;
  metrics: Record<string, number | null>;
}

/** Every (group, window) for which the rule's `having` holds. */
export function evaluateThreshold(rule: ThresholdRule, events: Ev[]): Firing[] {
  const { groupBy, window, metrics } = rule.threshold;
  const size = window.sizeMs;
  const slide = window.slideMs ?? size;
  const buckets = new Map<string, Ev[]>();
  for (const ev of events) {
    if (!matches(rule.filter, ev)) continue;
    const vals = groupBy.map((g) => getField(ev, g));
    if (vals.some((v) => v === undefined)) continue;
    const t = Date.parse(ev['@timestamp'] as string);
    const last = Math.floor(t / slide) * slide;
    for (let s = last; s > t - size; s -= slide) {
      const key = JSON.stringify([vals.map(String), s]);
      let list = buckets.get(key);
      if (!list) {
        list = [];
        buckets.set(key, list);
      }
      list.push(ev);
    }
  }
  const out: Firing[] = [];
  for (const [key, evs] of buckets) {
    const [vals, s] = JSON.parse(key) as [string[], number];
    const m: Record<string, number | null> = {};
    for (const x of metrics) m[x.name] = metric(x, evs);
    if (having(rule.threshold.having, m)) {
      out.push({ group: Object.fromEntries(groupBy.map((g, i) => [g, vals[i]!])), start: s, metrics: m });
    }
  }
  return out;
}
