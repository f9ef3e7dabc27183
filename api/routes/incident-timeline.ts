/**
 * An incident's detection timeline: the events its evidence query finds, per bucket of the
 * rule's window, before, during and after the incident's window — with the rule's count
 * threshold, when it has one, to draw against them.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { loadRuleSetFrom } from '../../detections/rule-set.ts';
import { type FilterExpr, type HavingExpr, parseFilterExpression, type RuleIR } from '../../parser/index.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
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

/** The count a threshold rule compares against (`count() > N`), when it has a plain one. */
export function countThreshold(rule: RuleIR): { metric: string; op: string; value: number } | null {
  if (rule.kind !== 'threshold') return null;
  const counts = new Set(
    rule.threshold.metrics.filter((m) => m.fn === 'count' && !m.where).map((m) => m.name),
  );
  const find = (h: HavingExpr): { metric: string; op: string; value: number } | null => {
    if (h.op === 'cmp') return counts.has(h.metric) ? { metric: h.metric, op: h.cmp, value: h.value } : null;
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
        const filter = withoutTimeBounds(parsed.filter);
        const { rules } = await loadRuleSetFrom(ctx.config, ctx.rules);
        const rule = rules.find((r) => r.id === incident.rule.id);
        const start = Date.parse(incident.window.start);
        const end = Date.parse(incident.window.end);
        let interval = bucketOf(rule, end - start);
        const span = end - start + (BEFORE + AFTER) * interval;
        if (span / interval > MAX_BUCKETS) interval = Math.ceil(span / MAX_BUCKETS / 60_000) * 60_000;
        const from = Math.floor((start - BEFORE * interval) / interval) * interval;
        const to = Math.ceil((end + AFTER * interval) / interval) * interval;
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
          threshold: rule ? countThreshold(rule) : null,
        };
      },
    );
  };
}
