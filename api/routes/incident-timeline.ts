/**
 * An incident's detection timeline: the events its evidence query finds, per bucket of the
 * rule's window, before, during and after the incident's window — with the rule's count
 * threshold, when it has one, to draw against them.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { type FilterExpr, type HavingExpr, parseFilterExpression, type RuleIR } from '../../parser/index.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
import { currentRules } from '../rules/current.ts';
import { IdParams, Timestamp } from '../schemas.ts';
import { HistogramSchema } from './entities.ts';

/** Buckets shown before and after the incident's window. */
const BEFORE = 8;
const AFTER = 4;
const MAX_BUCKETS = 240;

/** The evidence query without its own time bounds (the timeline chooses the range). */
export function withoutTimeBounds(filter: FilterExpr): FilterExpr {
  const isTime = (f: FilterExpr) => f.op === 'cmp' && f.field === '@timestamp';
  if (filter.op !== 'and') return isTime(filter) ? { op: 'true' } : filter;
  const args = filter.args.filter((f) => !isTime(f));
  if (args.length === 0) return { op: 'true' };
  return args.length === 1 ? args[0]! : { op: 'and', args };
}

export interface CountThreshold {
  metric: string;
  op: string;
  value: number;
  /** The events the metric counts, beyond the rule's own filter (`count(login_failure)`). */
  where?: FilterExpr;
}

/**
 * The count a threshold rule compares against (`having failures >= 25` with
 * `failures = count(...)`), when its condition has one.
 */
export function countThreshold(rule: RuleIR): CountThreshold | null {
  if (rule.kind !== 'threshold') return null;
  const counts = new Map(
    rule.threshold.metrics.flatMap((m) => (m.fn === 'count' ? [[m.name, m.where] as const] : [])),
  );
  const find = (h: HavingExpr): CountThreshold | null => {
    if (h.op === 'cmp' && counts.has(h.metric)) {
      const where = counts.get(h.metric);
      return { metric: h.metric, op: h.cmp, value: h.value, ...(where ? { where } : {}) };
    }
    if (h.op === 'and') {
      for (const a of h.args) {
        const t = find(a);
        if (t) return t;
      }
    }
    return null;
  };
  return find(rule.threshold.having);
}

/** The bucket that matches how the rule looks at time. */
function bucketOf(rule: RuleIR | undefined, windowMs: number): number {
  if (rule?.kind === 'threshold') return rule.threshold.window.sizeMs;
  if (rule?.kind === 'baseline') return rule.baseline.windowMs;
  return Math.max(60_000, windowMs);
}

export function incidentTimelineRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/incidents/:id/timeline',
      {
        config: { access: 'read' },
        schema: {
          tags: ['incidents'],
          summary:
            "The incident's events per bucket of its rule's window, around the incident's window, with the rule's count threshold.",
          params: IdParams,
          response: {
            200: Type.Object({
              incident_id: Type.String(),
              rule_id: Type.String(),
              kind: Type.String(),
              query: Type.String({ description: 'The evidence query without its time bounds.' }),
              from: Timestamp,
              to: Timestamp,
              interval_ms: Type.Integer(),
              window: Type.Object({ start: Timestamp, end: Timestamp }),
              buckets: HistogramSchema,
              exact: Type.Boolean(),
              threshold: Type.Union(
                [
                  Type.Object({ metric: Type.String(), op: Type.String(), value: Type.Number() }),
                  Type.Null(),
                ],
                {
                  description:
                    'The count per bucket the rule fires above (threshold rules with a plain count).',
                },
              ),
            }),
          },
        },
      },
      async (request) => {
        const incident = await ctx.ports.incidents.get(request.params.id);
        if (!incident) {
          throw new HttpProblem(404, 'incident-not-found', `incident ${request.params.id} does not exist`);
        }
        const parsed = parseFilterExpression(incident.evidence.query, { file: 'evidence' });
        if (!parsed.filter) {
          throw new HttpProblem(409, 'evidence-query', 'the incident’s evidence query no longer parses', {
            errors: parsed.diagnostics.map((d) => ({ field: 'evidence.query', message: d.message })),
          });
        }
        const rules = await currentRules(ctx);
        const rule = rules.find((r) => r.id === incident.rule.id);
        const threshold = rule ? countThreshold(rule) : null;
        // With a threshold on a count of some events, the chart counts those events.
        const evidence = withoutTimeBounds(parsed.filter);
        const filter: FilterExpr = threshold?.where
          ? { op: 'and', args: [evidence, threshold.where] }
          : evidence;
        const start = Date.parse(incident.window.start);
        const end = Date.parse(incident.window.end);
        let interval = bucketOf(rule, end - start);
        const span = end - start + (BEFORE + AFTER) * interval;
        if (span / interval > MAX_BUCKETS) interval = Math.ceil(span / MAX_BUCKETS / 60_000) * 60_000;
        // Buckets line up with the incident's window: one of them is the window itself.
        const from = start - BEFORE * interval;
        const to = start + Math.ceil((end - start) / interval) * interval + AFTER * interval;
        const histogram = await ctx.ports.events.histogram(filter, { start: from, end: to }, interval);
        return {
          incident_id: incident.id,
          rule_id: incident.rule.id,
          kind: incident.rule.kind,
          query: incident.evidence.query
            .replace(/ and @timestamp >= "[^"]*" and @timestamp < "[^"]*"$/, '')
            .trim(),
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          interval_ms: interval,
          window: { start: incident.window.start, end: incident.window.end },
          buckets: histogram.buckets.map((b) => ({ start: new Date(b.start).toISOString(), count: b.count })),
          exact: histogram.exact,
          threshold: threshold
            ? { metric: threshold.metric, op: threshold.op, value: threshold.value }
            : null,
        };
      },
    );
  };
}
