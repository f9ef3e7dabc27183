/**
 * POST /ingest/:source — NDJSON, a JSON array, or one JSON object (or plain text lines).
 * Authorization: Bearer <source token>.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { type HttpSourceContext, lines, tokenFromAuthorization } from './server.ts';

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
  app.post<{ Params: { source: string } }>('/ingest/:source', async (request, reply) => {
    const source = ctx.sourceByName(request.params.source);
    const bySource = ctx.sourceForToken(tokenFromAuthorization(request.headers.authorization));
    if (!bySource) return reply.code(401).send({ error: 'missing or invalid token' });
    if (!source || bySource.name !== source.name) {
      return reply.code(403).send({ error: `token does not belong to source "${request.params.source}"` });
    }
    if (await ctx.pushBack(reply)) return reply;
    const text = ctx.bodyText(request);
    const records = recordsOf(text);
    const digest = createHash('sha256').update(text).digest('base64url');
    const batches = await ctx.accept(source, records, `ndjson:${digest}`, request);
    return reply.code(202).send({ accepted: records.length, batches });
  });
}
