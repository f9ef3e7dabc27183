/** The ingest queue's depth and lag (the console's health page). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { AppContext } from '../app.ts';

export function ingestQueueRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/ingest/queue',
      {
        config: { access: 'read' },
        schema: {
          tags: ['ingest'],
          summary:
            'Batches waiting, being processed, delayed and failed in the ingest queue, and the oldest one’s age.',
          response: {
            200: Type.Object({
              queue: Type.Union(
                [
                  Type.Object({
                    waiting: Type.Integer(),
                    active: Type.Integer(),
                    delayed: Type.Integer(),
                    failed: Type.Integer(),
                    oldest_waiting_seconds: Type.Union([Type.Number(), Type.Null()]),
                    high_water_mark: Type.Integer({
                      description: 'Queued batches above which sources push back.',
                    }),
                  }),
                  Type.Null(),
                ],
                {
                  description:
                    'null: this deployment has no ingest queue (the embedded mode ingests by replay).',
                },
              ),
            }),
          },
        },
      },
      async () => ({ queue: ctx.ports.ingest.queue ? await ctx.ports.ingest.queue() : null }),
    );
  };
}
