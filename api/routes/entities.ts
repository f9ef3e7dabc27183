/**
 * Entity pages: one API key, IP, user, route, ASN or country — when it was first and last
 * seen, its activity over time and the rule-language filter that finds its events (for event
 * search and incident lists by entity).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ENTITY_FIELDS, ENTITY_TYPES, entityFilter, entityFilterText } from '../../core/schema/entities.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
import { Timestamp } from '../schemas.ts';

/** Bucket sizes offered, smallest first; the first giving at most MAX_BUCKETS is used. */
export const INTERVALS_MS = [
  60_000,
  300_000,
  900_000,
  3_600_000,
  6 * 3_600_000,
  86_400_000,
  7 * 86_400_000,
  30 * 86_400_000,
];
const MAX_BUCKETS = 120;

export function autoInterval(spanMs: number): number {
  return INTERVALS_MS.find((i) => spanMs / i <= MAX_BUCKETS) ?? INTERVALS_MS[INTERVALS_MS.length - 1]!;
}

/** One of ENTITY_TYPES (written out: the literal types must survive for the handlers). */
export const EntityTypeSchema = Type.Union(
  [
    Type.Literal('ip'),
    Type.Literal('user'),
    Type.Literal('api_key'),
    Type.Literal('route'),
    Type.Literal('asn'),
    Type.Literal('network'),
    Type.Literal('country'),
    Type.Literal('user_agent'),
    Type.Literal('ja3'),
  ],
  { description: `One of: ${ENTITY_TYPES.join(', ')}.` },
);

export const HistogramSchema = Type.Array(Type.Object({ start: Timestamp, count: Type.Integer() }));

export function entityRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const events = ctx.ports.events;
  return async (app) => {
    app.get(
      '/entities/:type/:value',
      {
        config: { access: 'read' },
        schema: {
          tags: ['entities'],
          summary:
            'An entity (api_key, ip, user, route, asn, country): first and last seen, events over time, and the filter that finds its events.',
          params: Type.Object(
            {
              type: EntityTypeSchema,
              value: Type.String({ minLength: 1, maxLength: 1024 }),
            },
            { additionalProperties: false },
          ),
          querystring: Type.Object(
            {
              from: Type.Optional(Timestamp),
              to: Type.Optional(Timestamp),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              type: Type.String(),
              value: Type.String(),
              fields: Type.Array(Type.String(), { description: 'Event fields it is looked up in.' }),
              filter: Type.String({ description: 'Rule-language filter for its events.' }),
              first_seen: Type.Union([Timestamp, Type.Null()]),
              last_seen: Type.Union([Timestamp, Type.Null()]),
              event_count: Type.Integer({ description: 'Events over all stored time.' }),
              from: Timestamp,
              to: Timestamp,
              interval_ms: Type.Integer(),
              activity: HistogramSchema,
              activity_exact: Type.Boolean(),
            }),
          },
        },
      },
      async (request) => {
        const { type, value } = request.params;
        const filter = entityFilter(type, value);
        if (!filter) {
          throw new HttpProblem(400, 'validation', `"${value}" cannot be a ${type} (a number is expected)`, {
            errors: [{ field: '/params/value', message: `not a ${type}` }],
          });
        }
        const extent = await events.extent(filter);
        let to = request.query.to ? Date.parse(request.query.to) : undefined;
        let from = request.query.from ? Date.parse(request.query.from) : undefined;
        // Default range: the entity's own activity (all of it), or the last day when it has none.
        to ??= extent.last !== null ? extent.last + 1 : Date.now();
        from ??= extent.first !== null && extent.first < to ? extent.first : to - 86_400_000;
        if (!(to > from)) {
          throw new HttpProblem(400, 'validation', '`to` must be after `from`', {
            errors: [{ field: '/querystring/to', message: 'must be after from' }],
          });
        }
        const interval = autoInterval(to - from);
        const histogram = await events.histogram(filter, { start: from, end: to }, interval);
        const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
        return {
          type,
          value,
          fields: [...ENTITY_FIELDS[type]],
          filter: entityFilterText(type, value)!,
          first_seen: iso(extent.first),
          last_seen: iso(extent.last),
          event_count: extent.total,
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          interval_ms: interval,
          activity: histogram.buckets.map((b) => ({
            start: new Date(b.start).toISOString(),
            count: b.count,
          })),
          activity_exact: histogram.exact,
        };
      },
    );
  };
}
