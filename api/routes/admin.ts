/** Ingest administration (sources, dead letters), API keys and the audit log. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AppContext } from '../app.ts';
import { ROLES } from '../auth/keys.ts';
import { HttpProblem } from '../problem.ts';
import { Cursor, IdParams, NextCursor, problemResponse, Timestamp } from '../schemas.ts';
import { actorOf, audit } from './util.ts';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

const SourceStatusSchema = Type.Object({
  name: Type.String(),
  type: Type.Union([
    Type.Literal('file'),
    Type.Literal('http'),
    Type.Literal('syslog'),
    Type.Literal('s3'),
    Type.Literal('cloudwatch'),
    Type.Literal('kafka'),
    Type.Literal('azure-blob'),
  ]),
  state: Type.Union([
    Type.Literal('running'),
    Type.Literal('idle'),
    Type.Literal('error'),
    Type.Literal('unknown'),
  ]),
  lag_seconds: Type.Union([Type.Number(), Type.Null()]),
  events_per_second: Type.Number(),
  bytes_per_second: Type.Number(),
  errors_total: Type.Integer(),
  events_total: Type.Integer({ description: 'Events stored (a resent record counts once).' }),
  duplicates_total: Type.Integer({ description: 'Records received again and already stored.' }),
  dead_letters_total: Type.Integer({ description: 'Records that became dead letters.' }),
  dropped_total: Type.Integer({
    description:
      'Records lost before the queue (UDP syslog: kernel receive-buffer drops and drops above high water).',
  }),
  last_error: NullableString,
  last_event_at: NullableTimestamp,
  backlog: Type.Optional(
    Type.Object(
      {
        objects_pending: NullableNumber,
        bytes_behind: NullableNumber,
        consumer_lag: NullableNumber,
        behind_seconds: NullableNumber,
        updated_at: NullableTimestamp,
      },
      { description: 'Pull sources (s3, cloudwatch, kafka, azure-blob): what is left to read.' },
    ),
  ),
});

const DeadLetterSchema = Type.Object({
  id: Type.String(),
  source: Type.String(),
  at: Timestamp,
  reason: Type.String(),
  payload: Type.String(),
  replayed_at: NullableTimestamp,
});

const Role = Type.Union(
  [Type.Literal('viewer'), Type.Literal('analyst'), Type.Literal('admin'), Type.Literal('ingest')],
  {
    description: `One of: ${ROLES.join(', ')}.`,
  },
);

const KeyInfoSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  created_at: Timestamp,
  created_by: Type.String(),
  revoked_at: NullableTimestamp,
  revoked_by: NullableString,
});

const AuditEntrySchema = Type.Object({
  id: Type.String(),
  at: Timestamp,
  actor: Type.String(),
  actor_role: Type.String(),
  action: Type.String(),
  target_type: Type.String(),
  target_id: Type.String(),
  request_id: NullableString,
  details: Type.String({ description: 'JSON.' }),
});

const SourceName = Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,127}$' });

export function adminRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const ingest = ctx.ports.ingest;
  return async (app) => {
    app.get(
      '/ingest/sources',
      {
        config: { access: 'read' },
        schema: {
          tags: ['ingest'],
          summary: 'Ingest sources with status: lag, rates, errors.',
          response: { 200: Type.Object({ items: Type.Array(SourceStatusSchema) }) },
        },
      },
      async () => ({ items: await ingest.sources() }),
    );

    app.get(
      '/ingest/dead-letters',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['ingest'],
          summary: 'Dead letters (rejected lines and documents), newest first.',
          querystring: Type.Object(
            {
              source: Type.Optional(SourceName),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
              cursor: Type.Optional(Cursor),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ items: Type.Array(DeadLetterSchema), next_cursor: NextCursor }) },
        },
      },
      async (request) => {
        const { source, limit, cursor } = request.query;
        return ingest.deadLetters({
          size: limit ?? 50,
          ...(source ? { source } : {}),
          ...(cursor ? { cursor } : {}),
        });
      },
    );

    app.post(
      '/ingest/dead-letters/replay',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['ingest'],
          summary: 'Replay dead letters by id, or all un-replayed ones of a source.',
          body: Type.Object(
            {
              ids: Type.Optional(Type.Array(IdParams.properties.id, { minItems: 1, maxItems: 10_000 })),
              source: Type.Optional(SourceName),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: { 200: Type.Object({ replayed: Type.Integer(), failed: Type.Integer() }) },
        },
      },
      async (request) => {
        const result = await ingest.replayDeadLetters(request.body);
        await audit(ctx, request, 'dead_letters.replay', 'dead_letters', request.body.source ?? 'ids', {
          ...request.body,
          ...result,
        });
        return result;
      },
    );

    app.get(
      '/keys',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['admin'],
          summary: 'API keys (never their secrets).',
          response: { 200: Type.Object({ items: Type.Array(KeyInfoSchema) }) },
        },
      },
      async () => ({ items: await ctx.keys.list() }),
    );

    app.post(
      '/keys',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['admin'],
          summary: 'Create an API key; the token is returned once and never again.',
          body: Type.Object(
            {
              role: Role,
              name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' }),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ token: Type.String(), key: KeyInfoSchema }) },
        },
      },
      async (request, reply) => {
        const created = await ctx.keys.create(request.body.role, request.body.name, actorOf(request));
        await audit(ctx, request, 'key.create', 'api_key', created.key.id, {
          role: created.key.role,
          name: created.key.name,
        });
        return reply.code(201).send(created);
      },
    );

    app.delete(
      '/keys/:id',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['admin'],
          summary: 'Revoke an API key.',
          params: Type.Object(
            { id: Type.String({ pattern: '^[0-9a-f]{16}$' }) },
            { additionalProperties: false },
          ),
          response: { 200: KeyInfoSchema, 409: problemResponse(409) },
        },
      },
      async (request) => {
        if (request.params.id === request.principal?.keyId) {
          throw new HttpProblem(
            409,
            'own-key',
            'a key cannot revoke itself; use another admin key or the CLI',
          );
        }
        const key = await ctx.keys.revoke(request.params.id, actorOf(request));
        if (!key) throw new HttpProblem(404, 'key-not-found', `API key ${request.params.id} does not exist`);
        await audit(ctx, request, 'key.revoke', 'api_key', key.id, { role: key.role, name: key.name });
        return key;
      },
    );

    app.get(
      '/audit',
      {
        config: { access: 'admin' },
        schema: {
          tags: ['admin'],
          summary: 'Audit log of changes, newest first.',
          querystring: Type.Object(
            {
              action: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
              target_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ items: Type.Array(AuditEntrySchema) }) },
        },
      },
      async (request) => ({
        items: await ctx.audit.list({
          size: request.query.limit ?? 100,
          ...(request.query.action ? { action: request.query.action } : {}),
          ...(request.query.target_id ? { target_id: request.query.target_id } : {}),
        }),
      }),
    );
  };
}
