/**
 * Liveness (public), readiness (Redis + Elasticsearch, or the embedded SQLite file) and
 * Prometheus metrics.
 */
import type { Client } from '@elastic/elasticsearch';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import Type from 'typebox';
import type { StoreHealthWatch } from '../../operations/store-health.ts';
import type { AppContext } from '../app.ts';
import { metrics, registry } from '../metrics.ts';
import { problemResponse } from '../schemas.ts';

const Check = Type.Object({
  ok: Type.Boolean(),
  latency_ms: Type.Number(),
  detail: Type.Optional(Type.String()),
});

/** One readiness check: resolves (with an optional detail) when the dependency answers. */
export type ReadinessCheck = () => Promise<string | undefined>;

/**
 * The distributed mode's checks: Redis and Elasticsearch (with what the disk watch says: the API
 * stays ready while ingest pushes back on a filling disk, and says so).
 */
export function serverReadiness(
  redis: Redis,
  es: Client,
  watch?: StoreHealthWatch,
): Record<string, ReadinessCheck> {
  return {
    redis: async () => {
      const pong = await redis.ping();
      if (pong !== 'PONG') throw new Error(`unexpected PING answer ${pong}`);
      return undefined;
    },
    elasticsearch: async () => {
      const h = await es.cluster.health({ timeout: '2s' });
      if (h.status === 'red') throw new Error('cluster health is red');
      const pushBack = watch?.pushBack();
      return `cluster ${h.status}${pushBack ? `; ingest pushes back: ${pushBack}` : ''}`;
    },
  };
}

const readySchema = (names: string[]) =>
  Type.Object({
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    checks: Type.Object(Object.fromEntries(names.map((n) => [n, Check]))),
  });

async function timed(
  check: () => Promise<string | undefined>,
): Promise<{ ok: boolean; latency_ms: number; detail?: string }> {
  const start = performance.now();
  try {
    const detail = await Promise.race([
      check(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('timed out after 2 s')), 2000).unref(),
      ),
    ]);
    return { ok: true, latency_ms: Math.round(performance.now() - start), ...(detail ? { detail } : {}) };
  } catch (err) {
    return { ok: false, latency_ms: Math.round(performance.now() - start), detail: (err as Error).message };
  }
}

/**
 * Ingest runs in other processes: its per-source counters (kept in Redis by workers and
 * receivers) are read at each scrape, so one scrape of the API sees them. Redis not answering
 * leaves them out of this scrape rather than failing it.
 */
async function refreshIngestCounters(ctx: AppContext): Promise<void> {
  let sources: Awaited<ReturnType<AppContext['ports']['ingest']['sources']>>;
  try {
    sources = await ctx.ports.ingest.sources();
  } catch {
    return;
  }
  metrics.ingestEvents.reset();
  for (const s of sources) {
    metrics.ingestEvents.inc({ source: s.name, outcome: 'indexed' }, s.events_total);
    metrics.ingestEvents.inc({ source: s.name, outcome: 'duplicate' }, s.duplicates_total);
    metrics.ingestEvents.inc({ source: s.name, outcome: 'dead_letter' }, s.dead_letters_total);
    metrics.ingestEvents.inc({ source: s.name, outcome: 'dropped' }, s.dropped_total);
  }
}

/** The partials' size, per level and rule version; Elasticsearch not answering leaves them out. */
async function refreshPartials(ctx: AppContext): Promise<void> {
  const stats = await ctx.ports.ingest.partials?.().catch(() => undefined);
  if (!stats) return;
  metrics.partialsBytes.set(stats.bytes);
  metrics.partialsDocuments.set({ level: 'batch' }, stats.documents.batch);
  metrics.partialsDocuments.set({ level: 'compact' }, stats.documents.compact);
  metrics.partialsPending.set(stats.pending.cells);
  metrics.partialsDocuments.set({ level: 'key' }, stats.documents.key);
  for (const r of stats.rules) {
    metrics.partialsRuleCells.set({ rule: r.rule }, r.cells);
    metrics.partialsRuleBytes.set({ rule: r.rule }, r.bytes);
  }
  metrics.partialsBuildDays.reset();
  metrics.partialsBuildEvents.reset();
  for (const b of stats.builds) {
    metrics.partialsBuildDays.set({ rule: b.rule, state: 'built' }, b.daysBuilt);
    metrics.partialsBuildDays.set({ rule: b.rule, state: 'to_build' }, b.daysToBuild);
    metrics.partialsBuildEvents.set({ rule: b.rule }, b.events);
  }
}

export function healthRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const names = Object.keys(ctx.readiness);
  const Ready = readySchema(names);
  const what =
    names.length === 2 && names.includes('redis') && names.includes('elasticsearch')
      ? 'Redis and Elasticsearch answer'
      : `${names.join(', ')} answer${names.length === 1 ? 's' : ''}`;
  return async (app) => {
    app.get(
      '/health/live',
      {
        config: { access: 'public', rateLimit: false },
        schema: {
          tags: ['operations'],
          summary: 'Liveness: the process answers (no key needed).',
          response: { 200: Type.Object({ status: Type.Literal('alive') }) },
        },
      },
      async () => ({ status: 'alive' as const }),
    );

    app.get(
      '/health/ready',
      {
        config: { access: 'read' },
        schema: {
          tags: ['operations'],
          summary: `Readiness: ${what}.`,
          response: { 200: Ready, 503: { ...Ready, description: 'A dependency is down.' } },
        },
      },
      async (_request, reply) => {
        const results = await Promise.all(names.map((n) => timed(ctx.readiness[n]!)));
        const checks = Object.fromEntries(names.map((n, i) => [n, results[i]!]));
        const ok = results.every((r) => r.ok);
        return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
      },
    );

    app.get(
      '/metrics',
      {
        config: { access: 'read' },
        schema: {
          tags: ['operations'],
          summary: 'Prometheus metrics (text exposition format).',
          produces: ['text/plain'],
          response: {
            200: {
              description: 'Prometheus text format.',
              content: { 'text/plain': { schema: Type.String() } },
            },
            500: problemResponse(500),
          },
        },
      },
      async (_request, reply) => {
        await refreshIngestCounters(ctx);
        await refreshPartials(ctx);
        const body = await registry.metrics();
        return reply.type(registry.contentType).send(body);
      },
    );
  };
}
