/** The event schema's fields, as the rule language knows them (field-name completion). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { FIELDS, kindOf } from '../../core/schema/catalogue.ts';

export function eventFieldRoutes(): FastifyPluginAsyncTypebox {
  const items = [...FIELDS.values()]
    .filter((f) => f.indexed)
    .map((f) => ({
      name: f.name,
      type: f.type,
      kind: kindOf(f.type),
      array: f.array,
      description: f.description,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  return async (app) => {
    app.get(
      '/events/fields',
      {
        config: { access: 'read' },
        schema: {
          tags: ['events'],
          summary: 'Searchable event fields (ECS names) with their types, for filters and rules.',
          response: {
            200: Type.Object({
              items: Type.Array(
                Type.Object({
                  name: Type.String(),
                  type: Type.String({ description: 'Elasticsearch field type.' }),
                  kind: Type.String({ description: 'What a rule compares it as: string, number, ip, date…' }),
                  array: Type.Boolean(),
                  description: Type.String(),
                }),
              ),
            }),
          },
        },
      },
      async () => ({ items }),
    );
  };
}
