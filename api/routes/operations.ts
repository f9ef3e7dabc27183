/**
 * Operations: the deployment's status at a glance (GET /api/v1/status: Elasticsearch health and
 * disk, Redis memory and persistence, queues and lag per source, dead letters per hour, rules
 * late or failing, retention; every warning with what to do) and the retention in force (GET
 * /api/v1/retention, also in the embedded mode).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { deploymentStatus, type StatusRule } from '../../operations/status.ts';
import type { StoreHealthWatch } from '../../operations/store-health.ts';
import type { AppContext } from '../app.ts';
import { HttpProblem } from '../problem.ts';

/** What the API process knows for the operations routes (wired by cli/commands/serve.ts). */
export interface OperationsContext {
  /** The process's watch on Elasticsearch (absent: read on each request). */
  watch?: StoreHealthWatch;
  /** The enabled rules, for rules behind their schedule. */
  rules?: () => Promise<StatusRule[]>;
  /** The last retention pass (the lifecycle's, or the embedded store's). */
  lastRun?: () => Promise<RetentionRun | null>;
}

export interface RetentionRun {
  started_at: string;
  finished_at: string;
  outcome: 'ok' | 'error';
  deleted_indices: string[];
  deleted_documents: Record<string, number>;
  errors: string[];
}

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Str = Type.String();
const Int = Type.Integer();
const Num = Type.Number();

const Policy = Type.Object(
  {
    events: Str,
    deadLetters: Str,
    ruleRuns: Str,
    incidents: Str,
    inventory: Str,
    audit: Str,
  },
  { description: 'How long each kind of data is kept (retention.*).' },
);

const Counts = Type.Record(Type.String(), Type.Integer());

const RunSchema = Type.Object({
  started_at: Str,
  finished_at: Str,
  outcome: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
  deleted_indices: Type.Array(Str),
  deleted_documents: Counts,
  errors: Type.Array(Str),
});

const QueueSchema = Nullable(
  Type.Object({
    waiting: Int,
    active: Int,
    delayed: Int,
    failed: Int,
    oldest_waiting_seconds: Nullable(Int),
  }),
);

const StatusSchema = Type.Object({
  at: Str,
  ok: Type.Boolean({ description: 'No warnings.' }),
  elasticsearch: Type.Object({
    reachable: Type.Boolean(),
    error: Nullable(Str),
    cluster: Nullable(Str),
    health: Nullable(Type.Union([Type.Literal('green'), Type.Literal('yellow'), Type.Literal('red')])),
    nodes: Int,
    data_nodes: Int,
    unassigned_shards: Int,
    disk: Type.Array(
      Type.Object({
        node: Str,
        used_percent: Num,
        free_bytes: Int,
        watermark: Type.Union([
          Type.Literal('none'),
          Type.Literal('low'),
          Type.Literal('high'),
          Type.Literal('flood_stage'),
        ]),
      }),
    ),
    watermarks: Type.Object({ low: Str, high: Str, flood_stage: Str, enabled: Type.Boolean() }),
    push_back: Nullable(Str),
    blocked_indices: Type.Array(Str),
  }),
  redis: Type.Object({
    reachable: Type.Boolean(),
    error: Nullable(Str),
    version: Nullable(Str),
    used_memory_bytes: Nullable(Int),
    maxmemory_bytes: Nullable(Int),
    maxmemory_policy: Nullable(Str),
    aof_enabled: Nullable(Type.Boolean()),
    aof_last_write_ok: Nullable(Type.Boolean()),
    last_snapshot_at: Nullable(Str),
    last_snapshot_ok: Nullable(Type.Boolean()),
  }),
  queues: Type.Object({ ingest: QueueSchema, detection: QueueSchema }),
  sources: Type.Array(
    Type.Object({
      name: Str,
      type: Str,
      queued_batches: Int,
      lag_seconds: Nullable(Int),
      last_stored_at: Nullable(Str),
    }),
  ),
  dead_letters: Type.Object({
    last_hour: Int,
    last_24h: Int,
    per_hour: Type.Array(Type.Object({ hour: Str, count: Int })),
  }),
  rules: Type.Object({
    enabled: Int,
    late: Type.Array(Type.Object({ rule: Str, covered_until: Nullable(Str), behind_seconds: Int })),
    failing: Type.Array(Type.Object({ rule: Str, outcome: Str, at: Str, reason: Str })),
  }),
  retention: Type.Object({
    policy: Policy,
    lifecycle: Type.Object({ enabled: Type.Boolean(), interval: Str }),
    last_run: Nullable(
      Type.Object({
        started_at: Str,
        finished_at: Str,
        outcome: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
        deleted_indices: Type.Array(Str),
        deleted_documents: Counts,
        remaining_documents: Counts,
        rolled_over: Type.Array(
          Type.Object({
            from: Str,
            to: Str,
            reason: Type.Union([Type.Literal('age'), Type.Literal('size')]),
          }),
        ),
        sealed: Type.Array(Str),
        errors: Type.Array(Str),
        events: Type.Object({ indices: Int, primary_bytes: Int, documents: Int, oldest_day: Nullable(Str) }),
        mapping_conflicts: Type.Array(Str),
      }),
    ),
    next_due_at: Nullable(Str),
  }),
  warnings: Type.Array(
    Type.Object({
      component: Type.Union([
        Type.Literal('elasticsearch'),
        Type.Literal('redis'),
        Type.Literal('queues'),
        Type.Literal('sources'),
        Type.Literal('dead_letters'),
        Type.Literal('rules'),
        Type.Literal('retention'),
      ]),
      level: Type.Union([Type.Literal('warning'), Type.Literal('critical')]),
      message: Str,
      action: Type.String({ description: 'What to do about it.' }),
    }),
  ),
});

const RetentionSchema = Type.Object({
  policy: Policy,
  lifecycle: Type.Object({
    enabled: Type.Boolean(),
    interval: Str,
    rolloverAge: Str,
    shardSize: Str,
    sealAfter: Str,
  }),
  earliest_event: Nullable(Type.String({ description: 'The oldest event still stored.' })),
  last_run: Nullable(RunSchema),
});

export function operationsRoutes(ctx: AppContext, ops: OperationsContext = {}): FastifyPluginAsyncTypebox {
  return async (app) => {
    if (ctx.es && ctx.redis) {
      const { es, redis } = ctx;
      app.get(
        '/status',
        {
          config: { access: 'read' },
          schema: {
            tags: ['operations'],
            summary:
              'The deployment at a glance: Elasticsearch health and disk, Redis memory and persistence, queues and lag per source, dead letters per hour, rules late or failing, retention — each warning with what to do.',
            response: { 200: StatusSchema },
          },
        },
        async () => {
          const storeHealth = ops.watch ? await ops.watch.refresh() : undefined;
          return deploymentStatus({
            es,
            redis,
            config: ctx.config,
            ...(ops.rules ? { rules: await ops.rules() } : {}),
            ...(storeHealth ? { storeHealth } : {}),
          });
        },
      );
    }

    app.get(
      '/retention',
      {
        config: { access: 'read' },
        schema: {
          tags: ['operations'],
          summary:
            'How long each kind of data is kept, the oldest event still stored, and the last retention pass.',
          response: { 200: RetentionSchema },
        },
      },
      async () => {
        const { retention, lifecycle } = ctx.config;
        let earliest: number | undefined;
        try {
          earliest = await ctx.ports.events.earliest?.call(ctx.ports.events);
        } catch (err) {
          throw new HttpProblem(
            503,
            'store-unavailable',
            `the event store does not answer: ${(err as Error).message}`,
          );
        }
        return {
          policy: retention,
          lifecycle: {
            enabled: lifecycle.enabled,
            interval: lifecycle.interval,
            rolloverAge: lifecycle.rolloverAge,
            shardSize: lifecycle.shardSize,
            sealAfter: lifecycle.sealAfter,
          },
          earliest_event: earliest === undefined ? null : new Date(earliest).toISOString(),
          last_run: (await ops.lastRun?.()) ?? null,
        };
      },
    );
  };
}
