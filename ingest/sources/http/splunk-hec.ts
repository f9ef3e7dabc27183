/**
 * Splunk HTTP Event Collector compatibility:
 *   POST /services/collector[/event]  concatenated JSON objects {"event": …, "time": …}
 *   POST /services/collector/raw      raw lines
 *   GET  /services/collector/health   health probe
 * Authorization: Splunk <token> (also Bearer). Errors use HEC's codes and shapes.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SourceConfig } from '../../../core/config/schema.ts';
import { type HttpSourceContext, lines, tokenFromAuthorization } from './server.ts';

const HEC = {
  success: { status: 200, body: { text: 'Success', code: 0 } },
  tokenRequired: { status: 401, body: { text: 'Token is required', code: 2 } },
  invalidAuthorization: { status: 401, body: { text: 'Invalid authorization', code: 3 } },
  invalidToken: { status: 403, body: { text: 'Invalid token', code: 4 } },
  noData: { status: 400, body: { text: 'No data', code: 5 } },
  invalidFormat: { status: 400, body: { text: 'Invalid data format', code: 6 } },
  busy: { status: 503, body: { text: 'Server is busy', code: 9 } },
  healthy: { status: 200, body: { text: 'HEC is healthy', code: 17 } },
} as const;

/**
 * Split HEC's concatenated JSON objects (`{…}{…}` or newline-separated). Returns the objects
 * or the 0-based index of the first malformed one.
 */
export function splitConcatenatedJson(text: string): { objects: unknown[] } | { invalidAt: number } {
  const objects: unknown[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b) {
      if (depth === 0) start = i;
      depth++;
    } else if (c === 0x7d) {
      depth--;
      if (depth < 0) return { invalidAt: objects.length };
      if (depth === 0) {
        try {
          objects.push(JSON.parse(text.slice(start, i + 1)));
        } catch {
          return { invalidAt: objects.length };
        }
      }
    } else if (depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      return { invalidAt: objects.length };
    }
  }
  if (depth !== 0 || inString) return { invalidAt: objects.length };
  return { objects };
}

function send(reply: FastifyReply, what: { status: number; body: object }, extra: object = {}) {
  return reply.code(what.status).send({ ...what.body, ...extra });
}

function authenticate(
  ctx: HttpSourceContext,
  request: FastifyRequest,
  reply: FastifyReply,
): SourceConfig | undefined {
  const header = request.headers.authorization;
  if (!header) {
    void send(reply, HEC.tokenRequired);
    return undefined;
  }
  const token = tokenFromAuthorization(header);
  if (!token) {
    void send(reply, HEC.invalidAuthorization);
    return undefined;
  }
  const source = ctx.sourceForToken(token);
  if (!source) void send(reply, HEC.invalidToken);
  return source;
}

async function busy(ctx: HttpSourceContext, reply: FastifyReply): Promise<boolean> {
  if (!(await ctx.options.producer.overHighWater())) return false;
  reply.header('retry-after', String(ctx.options.retryAfterSeconds ?? 5));
  await send(reply, HEC.busy);
  return true;
}

export function registerSplunkHec(app: FastifyInstance, ctx: HttpSourceContext): void {
  app.get('/services/collector/health', async (_request, reply) => send(reply, HEC.healthy));
  app.get('/services/collector/health/1.0', async (_request, reply) => send(reply, HEC.healthy));

  const eventHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const source = authenticate(ctx, request, reply);
    if (!source) return reply;
    if (await busy(ctx, reply)) return reply;
    const text = ctx.bodyText(request);
    if (text.trim() === '') return send(reply, HEC.noData);
    const split = splitConcatenatedJson(text);
    if ('invalidAt' in split)
      return send(reply, HEC.invalidFormat, { 'invalid-event-number': split.invalidAt });
    const records: string[] = [];
    for (const [i, obj] of split.objects.entries()) {
      const event = (obj as { event?: unknown } | null)?.event;
      if (event === undefined || event === null || event === '') {
        return reply.code(400).send({ text: 'Event field is required', code: 12, 'invalid-event-number': i });
      }
      records.push(typeof event === 'string' ? event : JSON.stringify(event));
    }
    const digest = createHash('sha256').update(text).digest('base64url');
    await ctx.accept(source, records, `hec:${digest}`, request);
    return send(reply, HEC.success);
  };
  app.post('/services/collector', eventHandler);
  app.post('/services/collector/event', eventHandler);
  app.post('/services/collector/event/1.0', eventHandler);

  app.post('/services/collector/raw', async (request, reply) => {
    const source = authenticate(ctx, request, reply);
    if (!source) return reply;
    if (await busy(ctx, reply)) return reply;
    const text = ctx.bodyText(request);
    const records = lines(text);
    if (records.length === 0) return send(reply, HEC.noData);
    const digest = createHash('sha256').update(text).digest('base64url');
    await ctx.accept(source, records, `hec-raw:${digest}`, request);
    return send(reply, HEC.success);
  });
}
