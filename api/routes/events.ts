/**
 * Events: search with a rule-language filter expression over a time range (cursor pages), and
 * one event by id (evidence drill-down). The filter is parsed here; only the parsed
 * expression reaches the EventSearchPort, which compiles it. No raw query text passes.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AppContext } from '../app.ts';
import { InvalidEventCursorError } from '../ports.ts';
import { HttpProblem } from '../problem.ts';
import { sandboxed } from '../rules/sandbox-problems.ts';
import { Cursor, IdParams, NextCursor, problemResponse, Timestamp } from '../schemas.ts';

const EventSchema = Type.Record(Type.String(), Type.Unknown(), {
  description: 'A stored event (ECS fields).',
});
const MAX_RANGE_MS = 92 * 86_400_000;

export function eventRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const port = ctx.ports.events;
  return async (app) => {
    app.post(
      '/events/search',
      {
        config: { access: 'read' },
        schema: {
          tags: ['events'],
          summary:
            'Search events with a filter expression of the rule language, e.g. `http.response.status_code >= 500`.',
          body: Type.Object(
            {
              filter: Type.String({
                minLength: 1,
                maxLength: 16_384,
                description: 'Rule-language filter expression.',
              }),
              from: Timestamp,
              to: Timestamp,
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
              order: Type.Optional(
                Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'desc' }),
              ),
              cursor: Type.Optional(Cursor),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ items: Type.Array(EventSchema), next_cursor: NextCursor }),
            422: problemResponse(422),
          },
        },
      },
      async (request) => {
        const { filter: text, from, to, limit, order, cursor } = request.body;
        const start = Date.parse(from);
        const end = Date.parse(to);
        if (!(end > start) || end - start > MAX_RANGE_MS) {
          throw new HttpProblem(400, 'validation', '`to` must be after `from`, at most 92 days later', {
            errors: [{ field: '/body/to', message: 'after from, within 92 days' }],
          });
        }
        // Parsed and checked off the thread that serves requests, within the check budget.
        const parsed = await sandboxed('check', () =>
          ctx.sandbox.check.run({ kind: 'parse-filter', text, file: 'filter' }),
        );
        const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
        if (!parsed.filter || errors.length > 0) {
          throw new HttpProblem(400, 'invalid-filter', `the filter has ${errors.length || 1} error(s)`, {
            errors: errors.map((d) => ({
              field: '/body/filter',
              message: `${d.code}: ${d.message}${d.hint ? ` (${d.hint})` : ''}`,
              line: d.line,
              column: d.column,
            })),
          });
        }
        try {
          const page = await port.search({
            filter: parsed.filter,
            range: { start, end },
            size: limit ?? 100,
            order: order ?? 'desc',
            ...(cursor ? { cursor } : {}),
          });
          return { items: page.events, next_cursor: page.next_cursor };
        } catch (err) {
          if (err instanceof InvalidEventCursorError) {
            throw new HttpProblem(400, 'invalid-cursor', err.message, {
              errors: [{ field: '/body/cursor', message: err.message }],
            });
          }
          throw err;
        }
      },
    );

    app.get(
      '/events/:id',
      {
        config: { access: 'read' },
        schema: {
          tags: ['events'],
          summary: 'One event by event.id (evidence drill-down).',
          params: IdParams,
          response: { 200: EventSchema },
        },
      },
      async (request) => {
        const event = await port.get(request.params.id);
        if (!event)
          throw new HttpProblem(404, 'event-not-found', `event ${request.params.id} does not exist`);
        return event;
      },
    );
  };
}
