/**
 * POST /logpush/:source — a Cloudflare Logpush HTTP destination: gzip NDJSON bodies. Logpush
 * validates a destination by uploading `{"content":"tests"}`; that is answered 200 and dropped.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticatedRoute, type HttpSourceContext, lines, tokenFromAuthorization } from './server.ts';

export function registerLogpush(app: FastifyInstance, ctx: HttpSourceContext): void {
  const authenticate = (request: FastifyRequest, reply: FastifyReply) => {
    const token =
      tokenFromAuthorization(request.headers.authorization) ?? (request.query as { token?: string }).token;
    const source = ctx.sourceForToken(token);
    if (!source) {
      void reply.code(401).send({ error: 'missing or invalid token' });
      return undefined;
    }
    if (source.name !== (request.params as { source: string }).source) {
      void reply.code(403).send({ error: 'token does not belong to source' });
      return undefined;
    }
    return source;
  };
  app.post<{ Params: { source: string }; Querystring: { token?: string } }>(
    '/logpush/:source',
    authenticatedRoute(authenticate),
    async (request, reply) => {
      const source = request.ingestSource!;
      const text = ctx.bodyText(request);
      const records = lines(text);
      if (records.length === 1 && /^\{\s*"content"\s*:\s*"tests"\s*\}$/.test(records[0]!.trim())) {
        return reply.code(200).send({ ok: true, validation: true });
      }
      if (await ctx.pushBack(reply)) return reply;
      const digest = createHash('sha256').update(text).digest('base64url');
      await ctx.accept(source, records, `logpush:${digest}`, request);
      return reply.code(200).send({ ok: true, accepted: records.length });
    },
  );
}
