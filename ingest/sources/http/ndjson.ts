/**
 * POST /ingest/:source — NDJSON, a JSON array, or one JSON object (or plain text lines).
 * Authorization: Bearer <source token>.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticatedRoute, type HttpSourceContext, lines, tokenFromAuthorization } from './server.ts';

/** Records of a push body: array elements, one object, or lines. */
export function recordsOf(text: string): string[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    try {
      const parsed = JSON.parse(trimmed) as unknown;
      if (Array.isArray(parsed)) return parsed.map((r) => (typeof r === 'string' ? r : JSON.stringify(r)));
    } catch {
      // Not one JSON array: fall through to lines (each bad line is dead-lettered on its own).
    }
  }
  if (trimmed.startsWith('{') && !trimmed.includes('\n')) return [trimmed.trimEnd()];
  return lines(text);
}

export function registerNdjson(app: FastifyInstance, ctx: HttpSourceContext): void {
  const authenticate = (request: FastifyRequest, reply: FastifyReply) => {
    const name = (request.params as { source: string }).source;
    const source = ctx.sourceByName(name);
    const bySource = ctx.sourceForToken(tokenFromAuthorization(request.headers.authorization));
    if (!bySource) {
      void reply.code(401).send({ error: 'missing or invalid token' });
      return undefined;
    }
    if (!source || bySource.name !== source.name) {
      void reply.code(403).send({ error: `token does not belong to source "${name}"` });
      return undefined;
    }
    return source;
  };
  app.post<{ Params: { source: string } }>(
    '/ingest/:source',
    authenticatedRoute(authenticate),
    async (request, reply) => {
      const source = request.ingestSource!;
      if (await ctx.pushBack(reply)) return reply;
      const text = ctx.bodyText(request);
      const records = recordsOf(text);
      const digest = createHash('sha256').update(text).digest('base64url');
      const batches = await ctx.accept(source, records, `ndjson:${digest}`, request);
      return reply.code(202).send({ accepted: records.length, batches });
    },
  );
}
