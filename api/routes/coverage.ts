/**
 * GET /api/v1/rules/coverage — which enabled rules can fire on the stored events, and why the
 * others cannot (fields their logs lack, history shorter than they need); detections/coverage.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { coverageReport, neededFields } from '../../detections/coverage.ts';
import { loadRuleSetFrom } from '../../detections/rule-set.ts';
import type { AppContext } from '../app.ts';
import { Timestamp } from '../schemas.ts';

const Verdict = Type.Union([Type.Literal('can fire'), Type.Literal('limited'), Type.Literal('cannot fire')]);

export const CoverageReportSchema = Type.Object({
  rules: Type.Array(
    Type.Object({
      rule: Type.String(),
      title: Type.String(),
      kind: Type.String(),
      verdict: Verdict,
      reasons: Type.Array(Type.String()),
      fields: Type.Array(
        Type.Object({
          field: Type.String(),
          share: Type.Record(Type.String(), Type.Number(), {
            description: "Share of the source's events that carry the field, per source.",
          }),
        }),
      ),
      sources: Type.Array(Type.String(), {
        description: 'Sources whose events carry every field the rule needs.',
      }),
    }),
  ),
  events: Type.Integer(),
  span: Type.Optional(Type.Object({ start: Timestamp, end: Timestamp })),
  sources: Type.Array(Type.Object({ name: Type.String(), events: Type.Integer() })),
  summary: Type.String({ description: 'E.g. "9 of 19 rules cannot fire on these logs: no ASN (6), …".' }),
  warnings: Type.Array(Type.String()),
});

export function coverageRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/rules/coverage',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary:
            'Rule coverage: for each enabled rule, the fields it needs, the share of events carrying them per source, and whether it can fire on the stored events (over [from, to) when given).',
          querystring: Type.Object(
            { from: Type.Optional(Timestamp), to: Type.Optional(Timestamp) },
            { additionalProperties: false },
          ),
          response: { 200: CoverageReportSchema },
        },
      },
      async (request) => {
        const rules = (await loadRuleSetFrom(ctx.config, ctx.rules)).rules.filter((r) => r.enabled);
        const { from, to } = request.query;
        const stats = await ctx.ports.detection.fieldStats(neededFields(rules), {
          ...(from ? { from: Date.parse(from) } : {}),
          ...(to ? { to: Date.parse(to) } : {}),
        });
        return coverageReport(rules, stats, {
          geoipDatabase: ctx.config.ingest.geoipDatabase !== undefined,
          asnDatabase: ctx.config.ingest.asnDatabase !== undefined,
        });
      },
    );
  };
}
