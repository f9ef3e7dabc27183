/**
 * AST -> IR. Runs only on rules that passed the checks in ./check.ts, so conversions here
 * do not report errors; anything that still fails to convert is dropped defensively.
 */
import { createHash } from 'node:crypto';
import { lookupField } from '../core/schema/catalogue.ts';
import type * as A from './ast.ts';
import {
  canonicalCidr,
  classifyRef,
  contextOf,
  convertValue,
  DEFAULT_EVIDENCE,
  DEFAULT_INTERVAL_MS,
  DEFAULT_LATENESS_MS,
  DEFAULT_RISK,
  fieldKind,
  parseTemplate,
  regexSource,
  ruleKind,
  type Scope,
} from './check.ts';
import type * as IR from './ir.ts';

export class Lowerer {
  private readonly scope: Scope;
  private readonly expanding = new Set<string>();
  constructor(scope: Scope) {
    this.scope = scope;
  }

  filter(f: A.Filter): IR.FilterExpr {
    switch (f.type) {
      case 'and':
      case 'or': {
        const args: IR.FilterExpr[] = [];
        for (const a of f.args) {
          const x = this.filter(a);
          if (x.op === f.type) args.push(...x.args);
          else args.push(x);
        }
        return { op: f.type, args };
      }
      case 'not':
        return { op: 'not', arg: this.filter(f.arg) };
      case 'true':
        return { op: 'true' };
      case 'ref': {
        const m = this.scope.macros.get(f.name.name);
        if (!m || this.expanding.has(f.name.name)) return { op: 'true' };
        this.expanding.add(f.name.name);
        try {
          return this.filter(m.decl.filter);
        } finally {
          this.expanding.delete(f.name.name);
        }
      }
      case 'exists':
        return { op: 'exists', field: f.field.name };
      case 'cmp': {
        const info = lookupField(f.field.name);
        const kind = info ? fieldKind(info) : 'string';
        const value = (convertValue(f.value.value, kind) ?? f.value.value) as IR.Scalar;
        return { op: 'cmp', field: f.field.name, cmp: f.op, value };
      }
      case 'in': {
        const info = lookupField(f.field.name);
        const kind = info ? fieldKind(info) : 'string';
        const values = dedupe(
          this.values(f.source).flatMap((v) => {
            const c = convertValue(v, kind);
            return c === undefined ? [] : [c as IR.Scalar];
          }),
        );
        const node: IR.FilterExpr = { op: 'in', field: f.field.name, values };
        return f.negated ? { op: 'not', arg: node } : node;
      }
      case 'like':
      case 'contains':
      case 'startswith':
      case 'endswith': {
        const values = dedupe(this.values(f.source).filter((v): v is string => typeof v === 'string'));
        const nodes: IR.FilterExpr[] = values.map((v) =>
          f.type === 'like'
            ? { op: 'wildcard', field: f.field.name, pattern: v, caseInsensitive: f.nocase }
            : {
                op: f.type as 'contains' | 'startswith' | 'endswith',
                field: f.field.name,
                value: v,
                caseInsensitive: f.nocase,
              },
        );
        return nodes.length === 1 ? nodes[0]! : { op: 'or', args: nodes };
      }
      case 'matches': {
        const r = regexSource(f.pattern, f.flags);
        return { op: 'regex', field: f.field.name, pattern: 'source' in r ? r.source : f.pattern };
      }
      case 'cidr': {
        const cidrs = dedupe(this.values(f.source).flatMap((v) => canonicalCidr(v) ?? []));
        return { op: 'cidr', field: f.field.name, cidrs };
      }
    }
  }

  private values(src: A.ValueSource): A.LiteralValue[] {
    if (src.kind === 'values') return src.values.map((v) => v.value);
    return this.scope.lists.get(src.name.name)?.values.map((v) => v.value) ?? [];
  }

  metric(m: A.MetricDecl): IR.Metric {
    const name = m.name.name;
    const [a0, a1] = m.args;
    const field = a0 && a0.kind === 'filter' && a0.filter.type === 'ref' ? a0.filter.name.name : '';
    const filt = (a: A.MetricArg | undefined): IR.FilterExpr | undefined =>
      a && a.kind === 'filter' ? this.filter(a.filter) : undefined;
    switch (m.fn.name) {
      case 'count': {
        const where = filt(a0);
        return where ? { name, fn: 'count', where } : { name, fn: 'count' };
      }
      case 'ratio': {
        const where = filt(a0) ?? { op: 'true' };
        const of = filt(a1);
        return of ? { name, fn: 'ratio', where, of } : { name, fn: 'ratio', where };
      }
      case 'distinct_count':
        return { name, fn: 'distinct_count', field };
      case 'percentile':
        return { name, fn: 'percentile', field, p: a1 && a1.kind === 'number' ? a1.value : 50 };
      default:
        return { name, fn: m.fn.name as 'sum' | 'avg' | 'min' | 'max', field };
    }
  }

  having(h: A.Having): IR.HavingExpr {
    switch (h.type) {
      case 'and':
      case 'or': {
        const args: IR.HavingExpr[] = [];
        for (const a of h.args) {
          const x = this.having(a);
          if (x.op === h.type) args.push(...x.args);
          else args.push(x);
        }
        return { op: h.type, args };
      }
      case 'not':
        return { op: 'not', arg: this.having(h.arg) };
      case 'cmp':
        return { op: 'cmp', metric: h.metric.name, cmp: h.op, value: h.value.value };
      case 'cmp_metric':
        return { op: 'cmp_metric', metric: h.metric.name, cmp: h.op, other: h.other.name };
    }
  }

  rule(rule: A.RuleDecl, file: string): IR.RuleIR {
    const kind = ruleKind(rule);
    const ctx = contextOf(rule);
    let title = '';
    let description = '';
    let severity: IR.Severity = 'medium';
    let risk: number | undefined;
    let tags: string[] = [];
    let owner: string | undefined;
    let enabled = true;
    let filter: IR.FilterExpr = { op: 'true' };
    let correlate: IR.Correlation | undefined;
    let interval = DEFAULT_INTERVAL_MS;
    let lateness = DEFAULT_LATENESS_MS;
    let lookback: number | undefined;
    let requiredSpan = 0;
    let incident: A.IncidentItem[] = [];
    let specific: Record<string, unknown> = {};

    for (const c of rule.clauses) {
      switch (c.kind) {
        case 'title':
          title = c.text.value;
          break;
        case 'description':
          description = c.text.value;
          break;
        case 'owner':
          owner = c.text.value;
          break;
        case 'severity':
          severity = c.severity.name as IR.Severity;
          break;
        case 'risk':
          risk = c.risk.value;
          break;
        case 'tags':
          tags = dedupe(c.tags.map((t) => t.value));
          break;
        case 'enabled':
          enabled = c.enabled;
          break;
        case 'schedule':
          for (const e of c.entries) {
            if (e.key === 'every') interval = e.value.ms;
            else if (e.key === 'lateness') lateness = e.value.ms;
            else lookback = e.value.ms;
          }
          break;
        case 'correlate':
          correlate = { withinMs: c.within.ms };
          break;
        case 'where':
          filter = this.filter(c.filter);
          break;
        case 'threshold': {
          let groupBy: string[] = [];
          let window: IR.WindowSpec = { sizeMs: 0, mode: 'tumbling' };
          const metrics: IR.Metric[] = [];
          let having: IR.HavingExpr = { op: 'and', args: [] };
          for (const it of c.items) {
            if (it.kind === 'group_by') groupBy = it.fields.map((f) => f.name);
            else if (it.kind === 'window') window = windowSpec(it.window);
            else if (it.kind === 'metric') metrics.push(this.metric(it.metric));
            else having = this.having(it.having);
          }
          requiredSpan = window.sizeMs;
          specific = { threshold: { groupBy, window, metrics, having } };
          break;
        }
        case 'sequence': {
          let by: string[] = [];
          let maxSpanMs = 0;
          const steps: IR.SequenceStep[] = [];
          let until: IR.FilterExpr | undefined;
          for (const it of c.items) {
            if (it.kind === 'by') by = it.fields.map((f) => f.name);
            else if (it.kind === 'within') maxSpanMs = it.span.ms;
            else if (it.kind === 'until') until = this.filter(it.filter);
            else {
              const s = it.step;
              const step: IR.SequenceStep = {
                name: s.name.name,
                filter: this.filter(s.filter),
                minCount: s.absent ? 0 : (s.repeat?.min.value ?? 1),
                absent: s.absent,
              };
              if (!s.absent && s.repeat?.max) step.maxCount = s.repeat.max.value;
              steps.push(step);
            }
          }
          requiredSpan = maxSpanMs;
          const sequence: IR.SequenceRule['sequence'] = { by, maxSpanMs, steps };
          if (until) sequence.until = until;
          specific = { sequence };
          break;
        }
        case 'first_seen': {
          let fields: string[] = [];
          let groupBy: string[] = [];
          let historyMs = 0;
          let ignoreNewGroups = false;
          for (const it of c.items) {
            if (it.kind === 'values') fields = it.fields.map((f) => f.name);
            else if (it.kind === 'by') groupBy = it.fields.map((f) => f.name);
            else if (it.kind === 'history') historyMs = it.history.ms;
            else ignoreNewGroups = true;
          }
          specific = { firstSeen: { fields, historyMs, groupBy, ignoreNewGroups } };
          break;
        }
        case 'baseline': {
          const b: Partial<IR.BaselineRule['baseline']> = { groupBy: [], minHistoryBuckets: 1 };
          for (const it of c.items) {
            if (it.kind === 'group_by') b.groupBy = it.fields.map((f) => f.name);
            else if (it.kind === 'window') b.windowMs = it.window.size.ms;
            else if (it.kind === 'metric') b.metric = this.metric(it.metric);
            else if (it.kind === 'history') b.historyMs = it.history.ms;
            else if (it.kind === 'spike') b.comparison = { kind: it.spike, min: it.min.value };
            else if (it.kind === 'min_buckets') b.minHistoryBuckets = it.count.value;
            else if (it.kind === 'having') b.having = this.having(it.having);
          }
          requiredSpan = b.windowMs ?? 0;
          specific = {
            baseline: {
              groupBy: b.groupBy,
              metric: b.metric,
              windowMs: b.windowMs,
              historyMs: b.historyMs,
              comparison: b.comparison,
              minHistoryBuckets: b.minHistoryBuckets,
              ...(b.having ? { having: b.having } : {}),
            },
          };
          break;
        }
        case 'incident':
          incident = c.items;
          break;
        default:
          break;
      }
    }

    // Output.
    let titleT = template(title, ctx);
    let summaryT = template(description, ctx);
    const entities: IR.Output['entities'] = [];
    let suppress: IR.Output['suppress'];
    const evidence: IR.Output['evidence'] = { sampleSize: DEFAULT_EVIDENCE };
    for (const it of incident) {
      if (it.kind === 'title') titleT = template(it.text.value, ctx);
      else if (it.kind === 'summary') summaryT = template(it.text.value, ctx);
      else if (it.kind === 'entities')
        for (const e of it.entities)
          entities.push({ role: e.role.name as IR.EntityRole, field: e.field.name });
      else if (it.kind === 'suppress')
        suppress = { keyFields: it.by ? it.by.map((f) => f.name) : [...ctx.keys], periodMs: it.period.ms };
      else if (it.kind === 'evidence') {
        evidence.sampleSize = it.sample.value;
        if (it.fields) evidence.fields = it.fields.map((f) => f.name);
      }
    }
    const output: IR.Output = { title: titleT, summary: summaryT, entities, evidence };
    if (suppress) output.suppress = suppress;

    const schedule: IR.Schedule = {
      intervalMs: interval,
      lookbackMs: lookback ?? requiredSpan + interval + lateness,
      latenessMs: lateness,
    };
    const body = {
      irVersion: 1 as const,
      id: rule.id.name,
      title,
      description,
      severity,
      risk: risk ?? DEFAULT_RISK[severity] ?? 47,
      tags,
      ...(owner !== undefined ? { owner } : {}),
      enabled,
      schedule,
      ...(correlate ? { correlate } : {}),
      kind,
      filter,
      ...specific,
      output,
    };
    const version = createHash('sha256').update(canonicalJson(body)).digest('hex').slice(0, 16);
    return { ...body, version, source: { file, line: rule.pos.line } } as unknown as IR.RuleIR;
  }
}

function windowSpec(w: A.WindowDecl): IR.WindowSpec {
  if (w.mode === 'sliding' && w.slide) return { sizeMs: w.size.ms, mode: 'sliding', slideMs: w.slide.ms };
  return { sizeMs: w.size.ms, mode: 'tumbling' };
}

function template(text: string, ctx: ReturnType<typeof contextOf>): IR.Template {
  const parsed = parseTemplate(text);
  const parts: IR.TemplatePart[] = parsed.parts.map((p) =>
    'ref' in p ? { ref: p.ref, kind: classifyRef(p.ref, ctx) ?? 'field' } : { text: p.text },
  );
  return { source: text, parts };
}

function dedupe<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** JSON with object keys sorted, for hashing. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
