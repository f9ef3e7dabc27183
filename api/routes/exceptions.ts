/**
 * Rule exceptions (detections/exceptions.ts): suppress one entity for one rule, for a time or
 * for good, with who and why. Listing is for every role; adding and lifting is triage.
 * The detection engine skips excepted entities from the rule's next run on.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';
import { currentRules } from '../rules/current.ts';
import { Timestamp } from '../schemas.ts';
import { EntityTypeSchema } from './entities.ts';
import { actorOf, audit } from './util.ts';

const EntityType = EntityTypeSchema;
const RuleId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$', description: 'Rule id.' });
const Entity = Type.Object(
  { type: EntityType, value: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);

export const ExceptionSchema = Type.Object({
  id: Type.String(),
  rule_id: Type.String(),
  entity: Type.Object({ type: EntityType, value: Type.String() }),
  reason: Type.String(),
  created_at: Timestamp,
  created_by: Type.String(),
  expires_at: Type.Union([Timestamp, Type.Null()], { description: 'null: for good.' }),
  incident_id: Type.Union([Type.String(), Type.Null()]),
  removed_at: Type.Union([Timestamp, Type.Null()]),
  removed_by: Type.Union([Type.String(), Type.Null()]),
  active: Type.Boolean({ description: 'In force now: not lifted, not expired.' }),
});

export function exceptionRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const store = ctx.exceptions;
  const withActive = <T extends { removed_at: string | null; expires_at: string | null }>(
    e: T,
    now: number,
  ) => ({
    ...e,
    active: e.removed_at === null && (e.expires_at === null || Date.parse(e.expires_at) > now),
  });
  return async (app) => {
    app.get(
      '/exceptions',
      {
        config: { access: 'read' },
        schema: {
          tags: ['rules'],
          summary: 'Rule exceptions, newest first (lifted and expired ones included unless active=true).',
          querystring: Type.Object(
            { rule_id: Type.Optional(RuleId), active: Type.Optional(Type.Boolean()) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ items: Type.Array(ExceptionSchema) }) },
        },
      },
      async (request) => {
        const now = Date.now();
        const items = await store.list({
          ...(request.query.rule_id ? { rule_id: request.query.rule_id } : {}),
          ...(request.query.active ? { activeAt: now } : {}),
        });
        return { items: items.map((e) => withActive(e, now)) };
      },
    );

    app.post(
      '/exceptions',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['rules'],
          summary:
            "Except an entity from a rule (for a time or for good): the rule's next runs skip its detections.",
          body: Type.Object(
            {
              rule_id: RuleId,
              entity: Entity,
              reason: Type.String({ minLength: 3, maxLength: 4096, description: 'Why (kept with who).' }),
              expires_at: Type.Optional(
                Type.Union([Timestamp, Type.Null()], {
                  description: 'Until when; absent or null: for good.',
                }),
              ),
              incident_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            },
            { additionalProperties: false },
          ),
          response: { 201: ExceptionSchema },
        },
      },
      async (request, reply) => {
        const { rule_id, entity, reason, expires_at, incident_id } = request.body;
        const now = Date.now();
        if (expires_at && !(Date.parse(expires_at) > now)) {
          throw new HttpProblem(400, 'validation', '`expires_at` must be in the future', {
            errors: [{ field: '/body/expires_at', message: 'must be in the future' }],
          });
        }
        const known = async (fresh: boolean) =>
          (await currentRules(ctx, fresh)).some((r) => r.id === rule_id);
        if (!(await known(false)) && !(await known(true))) {
          throw new HttpProblem(404, 'rule-not-found', `rule ${rule_id} does not exist`);
        }
        if (incident_id !== undefined) {
          const incident = await ctx.ports.incidents.get(incident_id);
          if (!incident)
            throw new HttpProblem(404, 'incident-not-found', `incident ${incident_id} does not exist`);
          if (incident.rule.id !== rule_id) {
            throw new HttpProblem(
              400,
              'validation',
              `incident ${incident_id} is of rule ${incident.rule.id}`,
              {
                errors: [{ field: '/body/incident_id', message: `belongs to rule ${incident.rule.id}` }],
              },
            );
          }
        }
        const created = await store.create(
          { rule_id, entity, reason, expires_at: expires_at ?? null, incident_id: incident_id ?? null },
          actorOf(request),
          now,
        );
        await audit(ctx, request, 'exception.create', 'rule', rule_id, {
          exception_id: created.id,
          entity,
          expires_at: created.expires_at,
        });
        return reply
          .code(201)
          .header('location', `/api/v1/exceptions/${created.id}`)
          .send(withActive(created, now));
      },
    );

    app.delete(
      '/exceptions/:id',
      {
        config: { access: 'triage' },
        schema: {
          tags: ['rules'],
          summary: 'Lift an exception (kept with who lifted it and when); the rule sees the entity again.',
          params: Type.Object(
            { id: Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' }) },
            { additionalProperties: false },
          ),
          response: { 200: ExceptionSchema },
        },
      },
      async (request) => {
        const now = Date.now();
        const lifted = await store.remove(request.params.id, actorOf(request), now);
        if (!lifted) {
          throw new HttpProblem(404, 'exception-not-found', `exception ${request.params.id} does not exist`);
        }
        await audit(ctx, request, 'exception.remove', 'rule', lifted.rule_id, { exception_id: lifted.id });
        return withActive(lifted, now);
      },
    );
  };
}
