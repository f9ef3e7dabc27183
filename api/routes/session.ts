/**
 * The calling key itself: who it is and what its role may do, so a client (the console)
 * shows only the actions the API would accept. The API still checks every request.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ACCESS_ROLES } from '../app.ts';

export function sessionRoutes(): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/session',
      {
        config: { access: 'read' },
        schema: {
          tags: ['admin'],
          summary: 'The calling API key: id, name, role and what the role may do.',
          response: {
            200: Type.Object({
              key_id: Type.String(),
              name: Type.String(),
              role: Type.Union([Type.Literal('viewer'), Type.Literal('analyst'), Type.Literal('admin')]),
              can: Type.Object({
                triage: Type.Boolean({
                  description: 'Change incidents, comment, add exceptions, test rules.',
                }),
                admin: Type.Boolean({
                  description: 'Store, enable and run rules; upload specs; dead letters.',
                }),
              }),
            }),
          },
        },
      },
      async (request) => {
        const p = request.principal!;
        return {
          key_id: p.keyId,
          name: p.name,
          role: p.role as 'viewer' | 'analyst' | 'admin',
          can: { triage: ACCESS_ROLES.triage.includes(p.role), admin: ACCESS_ROLES.admin.includes(p.role) },
        };
      },
    );
  };
}
