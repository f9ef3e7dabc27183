/**
 * Rule coverage: which rules can fire on the logs a deployment has, and why the others cannot.
 *
 * A rule silently never fires when its logs lack a field it needs (an ASN without an ASN
 * database, usernames that travel in request bodies, a TLS fingerprint only a CDN logs) or when
 * it needs more history than the data spans. Each rule's needs are read off its IR — the fields
 * without which its filter, grouping or conditions cannot hold, and the history it compares
 * against — and set beside what the stored events carry, per source: a rule can fire when one
 * source carries every field it needs.
 */
import type { Client } from '@elastic/elasticsearch';
import { getField } from '../core/schema/catalogue.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import type { FilterExpr, HavingExpr, Metric, RuleIR } from '../parser/ir.ts';

export interface RuleNeeds {
  /** Fields an event must carry for the rule to count it toward a detection. */
  fields: string[];
  /** History the rule compares against, when it needs any. */
  history?: { ms: number; minimumMs: number; kind: 'first_seen' | 'baseline' };
}

/** Fields that must be present for `f` to hold (and: all of them; or: those every branch needs). */
export function requiredFields(f: FilterExpr): Set<string> {
  switch (f.op) {
    case 'and': {
      const out = new Set<string>();
      for (const a of f.args) for (const x of requiredFields(a)) out.add(x);
      return out;
    }
    case 'or': {
      let out: Set<string> | undefined;
      for (const a of f.args) {
        const r = requiredFields(a);
        out = out === undefined ? r : new Set([...out].filter((x) => r.has(x)));
      }
      return out ?? new Set();
    }
    case 'not':
    case 'true':
      return new Set();
    case 'cmp':
      return f.cmp === '!=' ? new Set() : new Set([f.field]);
    default:
      return new Set([f.field]);
  }
}

/** Metrics that `having` needs to be positive (a lower bound above zero, on every branch). */
function positiveMetrics(h: HavingExpr): Set<string> {
  switch (h.op) {
    case 'and': {
      const out = new Set<string>();
      for (const a of h.args) for (const x of positiveMetrics(a)) out.add(x);
      return out;
    }
    case 'or': {
      let out: Set<string> | undefined;
      for (const a of h.args) {
        const r = positiveMetrics(a);
        out = out === undefined ? r : new Set([...out].filter((x) => r.has(x)));
      }
      return out ?? new Set();
    }
    case 'not':
      return new Set();
    case 'cmp':
      return (h.cmp === '>=' && h.value > 0) ||
        (h.cmp === '>' && h.value >= 0) ||
        (h.cmp === '==' && h.value > 0)
        ? new Set([h.metric])
        : new Set();
    case 'cmp_metric':
      return h.cmp === '>' ? new Set([h.metric]) : new Set();
  }
}

function metricFields(m: Metric): Set<string> {
  switch (m.fn) {
    case 'count':
      return m.where ? requiredFields(m.where) : new Set();
    case 'ratio':
      return requiredFields(m.where);
    default:
      return new Set([m.field]);
  }
}

export function ruleNeeds(rule: RuleIR): RuleNeeds {
  const fields = requiredFields(rule.filter);
  const add = (xs: Iterable<string>) => {
    for (const x of xs) fields.add(x);
  };
  let history: RuleNeeds['history'];
  switch (rule.kind) {
    case 'threshold': {
      add(rule.threshold.groupBy);
      const positive = positiveMetrics(rule.threshold.having);
      for (const m of rule.threshold.metrics) if (positive.has(m.name)) add(metricFields(m));
      break;
    }
    case 'sequence':
      add(rule.sequence.by);
      for (const s of rule.sequence.steps) if (!s.absent) add(requiredFields(s.filter));
      break;
    case 'first_seen':
      add(rule.firstSeen.groupBy);
      add(rule.firstSeen.fields);
      history = {
        ms: rule.firstSeen.historyMs,
        // A value is only "new" against some history; a group is only known after it was seen.
        minimumMs: 0,
        kind: 'first_seen',
      };
      break;
    case 'baseline':
      add(rule.baseline.groupBy);
      add(metricFields(rule.baseline.metric));
      history = {
        ms: rule.baseline.historyMs,
        minimumMs: rule.baseline.minHistoryBuckets * rule.baseline.windowMs,
        kind: 'baseline',
      };
      break;
    case 'filter':
      break;
  }
  return { fields: [...fields].sort(), ...(history ? { history } : {}) };
}

/** What the stored events carry: per source, how many events and how many carry each field. */
export interface FieldStats {
  events: number;
  span?: { start: number; end: number };
  sources: { name: string; events: number; present: Record<string, number> }[];
  /** True when the per-source counts come from a sample (the presence of a field is exact). */
  sampled?: boolean;
}

export type Verdict = 'can fire' | 'limited' | 'cannot fire';

export interface RuleCoverage {
  rule: string;
  title: string;
  kind: RuleIR['kind'];
  verdict: Verdict;
  reasons: string[];
  /** Share of events carrying each needed field, per source. */
  fields: { field: string; share: Record<string, number> }[];
  /** The sources on which the rule can fire. */
  sources: string[];
}

export interface CoverageReport {
  rules: RuleCoverage[];
  events: number;
  span?: { start: string; end: string };
  sources: { name: string; events: number }[];
  summary: string;
  warnings: string[];
}

/** Why a field is missing, and what to do, for fields that commonly are. */
const WHY_MISSING: Record<string, string> = {
  'source.as.number': 'no ASN (configure ingest.asnDatabase)',
  'source.as.organization.name': 'no ASN (configure ingest.asnDatabase)',
  'source.geo.country_iso_code':
    'no country (configure ingest.geoipDatabase, or ship a WAF/CDN log that has it)',
  'source.geo.location': 'no geolocation (configure ingest.geoipDatabase)',
  'tls.client.ja3': 'no TLS fingerprint in these logs',
  'tls.client.ja4': 'no TLS fingerprint in these logs',
  'user.name': 'no usernames in these logs',
  'user.id': 'no user ids in these logs',
  'gatewatch.waf.action': 'no WAF verdicts in these logs',
  'gatewatch.api_key.fingerprint': 'no API keys or tokens in these logs',
  'http.response.status_code': 'no response status in these logs',
  'gatewatch.auth.attempt': 'no authentication attempts in these logs',
  'user_agent.original': 'no user agents in these logs',
};

/** The short reason category used in the summary line ("no ASN (6)"). */
function category(reason: string): string {
  const paren = reason.indexOf(' (');
  return paren > 0 ? reason.slice(0, paren) : reason;
}

export function formatDuration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [u, s] of units) if (ms >= u) return `${Math.round((ms / u) * 10) / 10}${s}`;
  return `${ms}ms`;
}

export function coverageReport(
  rules: RuleIR[],
  stats: FieldStats,
  options: { geoipDatabase?: boolean; asnDatabase?: boolean } = {},
): CoverageReport {
  const spanMs = stats.span ? stats.span.end - stats.span.start : 0;
  const out: RuleCoverage[] = [];
  for (const rule of rules.filter((r) => r.enabled)) {
    const needs = ruleNeeds(rule);
    const reasons: string[] = [];
    const shares = needs.fields.map((field) => ({
      field,
      share: Object.fromEntries(
        stats.sources.map((s) => [s.name, s.events === 0 ? 0 : (s.present[field] ?? 0) / s.events]),
      ),
    }));
    const firing = stats.sources
      .filter((s) => s.events > 0 && needs.fields.every((f) => (s.present[f] ?? 0) > 0))
      .map((s) => s.name);
    let verdict: Verdict = 'can fire';
    if (stats.events === 0) {
      verdict = 'cannot fire';
      reasons.push('no events');
    } else if (firing.length === 0) {
      verdict = 'cannot fire';
      const missing = needs.fields.filter((f) => stats.sources.every((s) => (s.present[f] ?? 0) === 0));
      for (const f of missing) reasons.push(WHY_MISSING[f] ?? `no event carries ${f}`);
      if (missing.length === 0)
        reasons.push(
          `no one source carries all of ${needs.fields.join(', ')} (they come from different logs)`,
        );
    }
    if (needs.history && stats.events > 0) {
      const h = needs.history;
      if (h.minimumMs > 0 && spanMs < h.minimumMs) {
        verdict = 'cannot fire';
        reasons.push(
          `history longer than the data (needs ${formatDuration(h.minimumMs)} of history before it compares, data spans ${formatDuration(spanMs)})`,
        );
      } else if (spanMs < h.ms) {
        if (verdict === 'can fire') verdict = 'limited';
        reasons.push(
          `history longer than the data (looks back ${formatDuration(h.ms)}, data spans ${formatDuration(spanMs)}: ${
            h.kind === 'first_seen'
              ? 'values seen before the data began may be reported as new'
              : 'the baseline uses what exists'
          })`,
        );
      }
    }
    out.push({
      rule: rule.id,
      title: rule.title,
      kind: rule.kind,
      verdict,
      reasons,
      fields: shares,
      sources: firing,
    });
  }
  const cannot = out.filter((r) => r.verdict === 'cannot fire');
  const counts = new Map<string, number>();
  for (const r of cannot)
    for (const c of new Set(r.reasons.map(category))) counts.set(c, (counts.get(c) ?? 0) + 1);
  const summary =
    cannot.length === 0
      ? `all ${out.length} rules can fire on these logs${out.some((r) => r.verdict === 'limited') ? ` (${out.filter((r) => r.verdict === 'limited').length} limited)` : ''}`
      : `${cannot.length} of ${out.length} rules cannot fire on these logs: ${[...counts]
          .sort((a, b) => b[1] - a[1])
          .map(([c, n]) => `${c} (${n})`)
          .join(', ')}`;
  const warnings: string[] = [];
  if (options.asnDatabase === false)
    warnings.push(
      'no ASN database configured (ingest.asnDatabase): networks fall back to /24 and /48 address blocks',
    );
  if (options.geoipDatabase === false)
    warnings.push(
      'no GeoIP database configured (ingest.geoipDatabase): countries come only from logs that carry them',
    );
  return {
    rules: out,
    events: stats.events,
    ...(stats.span
      ? {
          span: {
            start: new Date(stats.span.start).toISOString(),
            end: new Date(stats.span.end).toISOString(),
          },
        }
      : {}),
    sources: stats.sources.map((s) => ({ name: s.name, events: s.events })),
    summary,
    warnings,
  };
}

/** The union of the fields `rules` need (what FieldStats must count). */
export function neededFields(rules: RuleIR[]): string[] {
  const out = new Set<string>();
  for (const r of rules) for (const f of ruleNeeds(r).fields) out.add(f);
  return [...out].sort();
}

/** Field stats of in-memory events (tests, small replays). */
export function fieldStatsOf(events: readonly unknown[], fields: readonly string[]): FieldStats {
  const bySource = new Map<string, { events: number; present: Record<string, number> }>();
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    const name = String(getField(e, 'gatewatch.source.name') ?? getField(e, 'event.dataset') ?? 'unknown');
    let s = bySource.get(name);
    if (s === undefined) {
      s = { events: 0, present: {} };
      bySource.set(name, s);
    }
    s.events++;
    for (const f of fields) if (getField(e, f) !== undefined) s.present[f] = (s.present[f] ?? 0) + 1;
    const t = Date.parse(String(getField(e, '@timestamp')));
    if (Number.isFinite(t)) {
      if (t < start) start = t;
      if (t > end) end = t;
    }
  }
  return {
    events: events.length,
    ...(Number.isFinite(start) ? { span: { start, end } } : {}),
    sources: [...bySource].map(([name, s]) => ({ name, ...s })),
  };
}

/** The report as text: every rule (`all`), or only those that cannot fire fully (after a replay). */
export function formatCoverage(report: CoverageReport, options: { all?: boolean } = {}): string {
  const lines: string[] = [];
  const width = Math.max(...report.rules.map((r) => r.rule.length), 4);
  for (const r of report.rules) {
    if (!options.all && r.verdict === 'can fire') continue;
    const mark =
      r.verdict === 'can fire' ? 'can fire   ' : r.verdict === 'limited' ? 'limited    ' : 'cannot fire';
    lines.push(`  ${r.rule.padEnd(width)}  ${mark}${r.reasons.length ? `  ${r.reasons.join('; ')}` : ''}`);
  }
  lines.push(`Rule coverage: ${report.summary}.`);
  for (const w of report.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

/** Field stats of the events index over [from, to) (all of it without a range): one aggregation. */
export async function elasticsearchFieldStats(
  client: Client,
  prefix: string,
  fields: readonly string[],
  range?: { from?: number; to?: number },
): Promise<FieldStats> {
  const filter =
    range && (range.from !== undefined || range.to !== undefined)
      ? [
          {
            range: {
              '@timestamp': {
                ...(range.from !== undefined ? { gte: range.from } : {}),
                ...(range.to !== undefined ? { lt: range.to } : {}),
                format: 'epoch_millis',
              },
            },
          },
        ]
      : [];
  const r = await client.search({
    index: indexNames(prefix).eventsAlias,
    size: 0,
    ignore_unavailable: true,
    allow_no_indices: true,
    track_total_hits: true,
    query: { bool: { filter } },
    aggs: {
      first: { min: { field: '@timestamp' } },
      last: { max: { field: '@timestamp' } },
      sources: {
        terms: { field: 'gatewatch.source.name', size: 100, missing: 'unknown' },
        aggs: Object.fromEntries(fields.map((f, i) => [`f${i}`, { filter: { exists: { field: f } } }])),
      },
    },
  });
  type Agg = {
    value?: number | null;
    buckets?: ({ key: string; doc_count: number } & Record<string, unknown>)[];
  };
  const aggs = (r.aggregations ?? {}) as Record<string, Agg>;
  const total = typeof r.hits.total === 'number' ? r.hits.total : (r.hits.total?.value ?? 0);
  const first = aggs.first?.value;
  const last = aggs.last?.value;
  return {
    events: total,
    ...(typeof first === 'number' && typeof last === 'number' ? { span: { start: first, end: last } } : {}),
    sources: (aggs.sources?.buckets ?? []).map((b) => ({
      name: String(b.key),
      events: b.doc_count,
      present: Object.fromEntries(
        fields.map((f, i) => [f, (b[`f${i}`] as { doc_count: number } | undefined)?.doc_count ?? 0]),
      ),
    })),
  };
}
