/** Incidents: list, get, triage (status / assignee / severity), comments, bulk status, statistics. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { durationMs } from '../../core/config/load.ts';
import {
  CommentSchema,
  IncidentSchema,
  IncidentSummarySchema,
  SEVERITIES,
  STATUSES,
} from '../../core/schema/incident.ts';
import {
  IllegalTransitionError,
  IncidentConflictError,
  IncidentNotFoundError,
  InvalidCursorError,
  InvalidQueryError,
  MAX_STATS_BUCKETS,
} from '../../detections/incidents/repository.ts';
import { evidenceExpiry } from '../../operations/retention.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
import { Cursor, IdParams, NextCursor, problemResponse, Timestamp } from '../schemas.ts';
import { actorOf, audit } from './util.ts';

const Status = Type.Union(
  [
    Type.Literal('new'),
    Type.Literal('triaged'),
    Type.Literal('in_remediation'),
    Type.Literal('resolved'),
    Type.Literal('false_positive'),
  ],
  { description: `One of: ${STATUSES.join(', ')}.` },
);
const Severity = Type.Union(
  [Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('critical')],
  { description: `One of: ${SEVERITIES.join(', ')}.` },
);
const Name = Type.String({ minLength: 1, maxLength: 256 });

export { IncidentSummarySchema };

const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Array(Status, { maxItems: 5, description: 'Repeat for several.' })),
    severity: Type.Optional(Type.Array(Severity, { maxItems: 4 })),
    rule: Type.Optional(Type.Array(Name, { maxItems: 50, description: 'Rule ids.' })),
    entity: Type.Optional(
      Type.Array(Name, {
        maxItems: 50,
        description: 'Entity values (IP, user, API key, route, ASN, country).',
      }),
    ),
    tag: Type.Optional(Type.Array(Name, { maxItems: 50 })),
    assignee: Type.Optional(Name),
    q: Type.Optional(
      Type.String({ minLength: 1, maxLength: 512, description: 'Words in the title (all must match).' }),
    ),
    from: Type.Optional(Timestamp),
    to: Type.Optional(Timestamp),
    sort: Type.Optional(
      Type.Union(
        [
          Type.Literal('created_at'),
          Type.Literal('last_seen'),
          Type.Literal('severity'),
          Type.Literal('risk'),
        ],
        {
          default: 'created_at',
        },
      ),
    ),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'desc' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

const TriageBody = Type.Object(
  {
    status: Type.Optional(Status),
    assignee: Type.Optional(Type.Union([Name, Type.Null()], { description: 'null unassigns.' })),
    severity: Type.Optional(Severity),
    note: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false, minProperties: 1 },
);

const INTERVALS = ['1m', '5m', '15m', '1h', '6h', '1d', '7d'];
const UNIT: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };
const ms = (i: string) => Number(i.slice(0, -1)) * UNIT[i.slice(-1)]!;

function mapError(err: unknown): never {
  if (err instanceof IncidentNotFoundError) throw new HttpProblem(404, 'incident-not-found', err.message);
  if (err instanceof IllegalTransitionError) throw new HttpProblem(409, 'illegal-transition', err.message);
  if (err instanceof IncidentConflictError) throw new HttpProblem(409, 'concurrent-change', err.message);
  if (err instanceof InvalidCursorError)
    throw new HttpProblem(400, 'invalid-cursor', err.message, {
      errors: [{ field: '/querystring/cursor', message: err.message }],
    });
  if (err instanceof InvalidQueryError) throw new HttpProblem(400, 'invalid-query', err.message);
  throw err;
}

export function incidentRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const repo = ctx.ports.incidents;
  return async (app) => {
    app.get(
      '/incidents',
      {
        config: { access: 'read' },
        schema: {
          tags: ['incidents'],
          summary: 'List incidents: filters, sort, cursor pagination (stable while new incidents arrive).',
          description:
            'Items are incident summaries: every field except `evidence`, `detection_ids`, `history` and `comments`, which GET /api/v1/incidents/{id} returns.',
          querystring: ListQuery,
          response: {
            200: Type.Object({ items: Type.Array(IncidentSummarySchema), next_cursor: NextCursor }),
          },
        },
      },
      async (request) => {
        const q = request.query;
        if (q.from && q.to && Date.parse(q.to) < Date.parse(q.from)) {
          throw new HttpProblem(400, 'invalid-query', '`to` is before `from`', {
            errors: [{ field: '/querystring/to', message: 'must not be before from' }],
          });
        }
        try {
          return await repo.list({
            ...(q.status ? { status: q.status } : {}),
            ...(q.severity ? { severity: q.severity } : {}),
            ...(q.rule ? { rule: q.rule } : {}),
            ...(q.entity ? { entity: q.entity } : {}),
            ...(q.tag ? { tags: q.tag } : {}),
            ...(q.assignee !== undefined ? { assignee: q.assignee } : {}),
            ...(q.q !== undefined ? { text: q.q } : {}),
            ...(q.from ? { from: q.from } : {}),
            ...(q.to ? { to: q.to } : {}),
            sort: q.sort ?? 'created_at',
            order: q.order ?? 'desc',
            limit: q.limit ?? 50,
            ...(q.cursor ? { cursor: q.cursor } : {}),
          });
        } catch (err) {
          mapError(err);
        }
      },
    );

    app.get(
      '/incidents/stats',
      {
        config: { access: 'read' },
        schema: {
          tags: ['incidents'],
          summary: 'Counts by status, severity and rule over time; mean time to acknowledge and to resolve.',
          querystring: Type.Object(
            {
              from: Type.Optional(Timestamp),
              to: Type.Optional(Timestamp),
              interval: Type.Optional(
                Type.String({
                  pattern: '^[1-9][0-9]{0,3}(m|h|d)$',
                  description: 'Histogram bucket, e.g. 1h, 1d (default: automatic).',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              from: Timestamp,
              to: Timestamp,
              interval: Type.String(),
              total: Type.Integer(),
              by_status: Type.Record(Type.String(), Type.Integer()),
              by_severity: Type.Record(Type.String(), Type.Integer()),
              by_rule: Type.Array(Type.Object({ rule_id: Type.String(), count: Type.Integer() })),
              over_time: Type.Array(
                Type.Object({
                  start: Timestamp,
                  count: Type.Integer(),
                  by_severity: Type.Record(Type.String(), Type.Integer()),
                }),
              ),
              mean_time_to_acknowledge_ms: Type.Union([Type.Number(), Type.Null()]),
              acknowledged: Type.Integer(),
              mean_time_to_resolve_ms: Type.Union([Type.Number(), Type.Null()]),
              resolved: Type.Integer(),
            }),
          },
        },
      },
      async (request) => {
        const to = request.query.to ? Date.parse(request.query.to) : Date.now();
        const from = request.query.from ? Date.parse(request.query.from) : to - 7 * 86_400_000;
        if (!(to > from)) {
          throw new HttpProblem(400, 'invalid-query', '`to` must be after `from`', {
            errors: [{ field: '/querystring/to', message: 'must be after from' }],
          });
        }
        const interval =
          request.query.interval ??
          INTERVALS.find((i) => (to - from) / ms(i) <= 100) ??
          INTERVALS[INTERVALS.length - 1]!;
        if ((to - from) / ms(interval) > MAX_STATS_BUCKETS) {
          throw new HttpProblem(
            400,
            'invalid-query',
            `more than ${MAX_STATS_BUCKETS} buckets: choose a larger interval`,
            {
              errors: [{ field: '/querystring/interval', message: 'too small for the range' }],
            },
          );
        }
        try {
          return await repo.stats({
            from: new Date(from).toISOString(),
            to: new Date(to).toISOString(),
            interval,
          });
        } catch (err) {
          mapError(err);
        }
      },
    );

    app.get(
      '/incidents/:id',
      {
        config: { access: 'read' },
        schema: {
          tags: ['incidents'],
          summary: 'One incident with its evidence, history and comments.',
          params: IdParams,
          response: { 200: IncidentSchema },
        },
      },
      async (request) => {
        const incident = await repo.get(request.params.id);
        if (!incident)
          throw new HttpProblem(404, 'incident-not-found', `incident ${request.params.id} does not exist`);
        // Incidents outlive their events (retention): the evidence says when they expired.
        const earliest = ctx.ports.events.earliest;
        if (earliest) {
          const expired = evidenceExpiry(
            incident.window,
            await earliest.call(ctx.ports.events),
            durationMs(ctx.config.retention.events),
            ctx.config.retention.events,
          );
          if (expired) return { ...incident, evidence: { ...incident.evidence, expired } };
        }
        return incident;
      },
    );

    app.patch(
      '/incidents/:id',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['incidents'],
          summary:
            'Change status, assignee and/or severity (status transitions are checked; history is recorded).',
          params: IdParams,
          body: TriageBody,
          response: { 200: IncidentSchema, 409: problemResponse(409) },
        },
      },
      async (request) => {
        try {
          const before = await repo.get(request.params.id);
          const incident = await repo.triage(request.params.id, request.body, actorOf(request));
          await audit(ctx, request, 'incident.update', 'incident', incident.id, {
            change: request.body,
            before: before
              ? { status: before.status, assignee: before.assignee, severity: before.severity }
              : null,
          });
          return incident;
        } catch (err) {
          mapError(err);
        }
      },
    );

    app.post(
      '/incidents/:id/comments',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['incidents'],
          summary: 'Add a comment.',
          params: IdParams,
          body: Type.Object(
            { text: Type.String({ minLength: 1, maxLength: 16_384 }) },
            { additionalProperties: false },
          ),
          response: { 201: CommentSchema, 409: problemResponse(409) },
        },
      },
      async (request, reply) => {
        try {
          const comment = await repo.comment(request.params.id, request.body.text, actorOf(request));
          await audit(ctx, request, 'incident.comment', 'incident', request.params.id, {
            comment_id: comment.id,
          });
          return reply.code(201).send(comment);
        } catch (err) {
          mapError(err);
        }
      },
    );

    app.post(
      '/incidents/bulk/status',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['incidents'],
          summary: 'Change the status of many incidents; per-incident outcome.',
          body: Type.Object(
            {
              ids: Type.Array(IdParams.properties.id, { minItems: 1, maxItems: 1000 }),
              status: Status,
              note: Type.Optional(Type.String({ maxLength: 4096 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              updated: Type.Integer(),
              failed: Type.Integer(),
              results: Type.Array(
                Type.Object({
                  id: Type.String(),
                  ok: Type.Boolean(),
                  error: Type.Optional(Type.String()),
                  detail: Type.Optional(Type.String()),
                }),
              ),
            }),
          },
        },
      },
      async (request) => {
        const { ids, status, note } = request.body;
        const results = await repo.bulkStatus(ids, status, actorOf(request), note);
        const updated = results.filter((r) => r.ok).length;
        await audit(ctx, request, 'incident.bulk_status', 'incident', 'bulk', {
          ids: results.filter((r) => r.ok).map((r) => r.id),
          status,
          note,
          requested: ids.length,
          updated,
        });
        return { updated, failed: results.length - updated, results };
      },
    );
  };
}
