/**
 * Splunk HTTP Event Collector compatibility:
 *   POST /services/collector[/event]  concatenated JSON objects {"event": …, "time": …}
 *   POST /services/collector/raw      raw lines
 *   POST /services/collector/ack      indexer acknowledgement: {"acks": [ids]} per channel
 *   GET  /services/collector/health   health probe
 * Authorization: Splunk <token> (also Bearer). Errors use HEC's codes and shapes: data that
 * cannot be taken is "Invalid data format" (400, the client does not resend it), only an
 * unavailable queue is "Server is busy" (503 with Retry-After, the client resends).
 *
 * Indexer acknowledgement: a request sent with a channel (`X-Splunk-Request-Channel: <GUID>` or
 * `?channel=`) is answered with an `ackId`; the ack endpoint reports it true once its batches
 * are stored in Elasticsearch (events, and dead letters for records that could not become
 * events), false while they are still queued. An id reported true is forgotten, as in Splunk.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SourceConfig } from '../../../core/config/schema.ts';
import {
  authenticatedRoute,
  HttpError,
  type HttpSourceContext,
  lines,
  tokenFromAuthorization,
} from './server.ts';

const HEC = {
  success: { status: 200, body: { text: 'Success', code: 0 } },
  tokenRequired: { status: 401, body: { text: 'Token is required', code: 2 } },
  invalidAuthorization: { status: 401, body: { text: 'Invalid authorization', code: 3 } },
  invalidToken: { status: 403, body: { text: 'Invalid token', code: 4 } },
  noData: { status: 400, body: { text: 'No data', code: 5 } },
  invalidFormat: { status: 400, body: { text: 'Invalid data format', code: 6 } },
  internal: { status: 500, body: { text: 'Internal server error', code: 8 } },
  busy: { status: 503, body: { text: 'Server is busy', code: 9 } },
  channelMissing: { status: 400, body: { text: 'Data channel is missing', code: 10 } },
  invalidChannel: { status: 400, body: { text: 'Invalid data channel', code: 11 } },
  healthy: { status: 200, body: { text: 'HEC is healthy', code: 17 } },
} as const;

/** Splunk channels are GUIDs. */
const CHANNEL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where indexer acknowledgements are kept (Redis in the ingest runtime), per source and channel. */
export interface HecAckStore {
  /** A new ack id (0, 1, 2 … per channel) for the jobs of one request. */
  register(source: string, channel: string, jobIds: string[]): Promise<number>;
  /** The job ids of the given ack ids that are known on the channel. */
  jobs(source: string, channel: string, ackIds: number[]): Promise<Map<number, string[]>>;
  /** Forget ack ids once reported true. */
  forget(source: string, channel: string, ackIds: number[]): Promise<void>;
}

function channelOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-splunk-request-channel'];
  if (typeof header === 'string' && header !== '') return header;
  const query = (request.query as { channel?: unknown } | undefined)?.channel;
  return typeof query === 'string' && query !== '' ? query : undefined;
}

/** Errors of HEC routes in HEC's shape: only an unavailable queue invites a resend. */
function hecErrorHandler(error: Error, _request: FastifyRequest, reply: FastifyReply) {
  const status =
    error instanceof HttpError ? error.status : ((error as { statusCode?: number }).statusCode ?? 500);
  if (status === 503) {
    reply.header('retry-after', '5');
    return send(reply, HEC.busy);
  }
  if (status === 413) return reply.code(413).send({ text: error.message, code: 6 });
  if (status >= 400 && status < 500) return send(reply, HEC.invalidFormat);
  console.error(`ingest HEC: ${error.stack ?? error.message}`);
  return send(reply, HEC.internal);
}

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
  if (!(await ctx.overHighWater())) return false;
  reply.header('retry-after', String(ctx.options.retryAfterSeconds ?? 5));
  await send(reply, HEC.busy);
  return true;
}

export function registerSplunkHec(app: FastifyInstance, ctx: HttpSourceContext): void {
  app.get('/services/collector/health', async (_request, reply) => send(reply, HEC.healthy));
  app.get('/services/collector/health/1.0', async (_request, reply) => send(reply, HEC.healthy));

  /** Enqueue a request's records; with a channel and an ack store, its ack id. */
  const accept = async (
    source: SourceConfig,
    records: string[],
    discriminator: string,
    request: FastifyRequest,
    reply: FastifyReply,
  ) => {
    await ctx.accept(source, records, discriminator, request);
    const channel = channelOf(request);
    const acks = ctx.options.hecAcks;
    if (channel === undefined || !acks) return send(reply, HEC.success);
    const jobIds = ctx.options.producer.jobIdsFor(source.name, records.length, discriminator);
    const ackId = await ctx.queue(() => acks.register(source.name, channel, jobIds));
    return send(reply, HEC.success, { ackId });
  };

  /** A channel given but not a GUID is refused before anything is read. */
  const badChannel = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const channel = channelOf(request);
    if (channel === undefined || CHANNEL.test(channel)) return false;
    void send(reply, HEC.invalidChannel);
    return true;
  };

  // Token and channel are checked on the headers, before the body is read.
  const guarded = authenticatedRoute((request, reply) => {
    const source = authenticate(ctx, request, reply);
    if (!source || badChannel(request, reply)) return undefined;
    return source;
  });

  const eventHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const source = request.ingestSource!;
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
      let record: string;
      try {
        record = typeof event === 'string' ? event : JSON.stringify(event);
      } catch {
        // Parsed, but cannot be written back out (nested too deeply): refused, not retried.
        return send(reply, HEC.invalidFormat, { 'invalid-event-number': i });
      }
      records.push(record);
    }
    const digest = createHash('sha256').update(text).digest('base64url');
    return accept(source, records, `hec:${digest}`, request, reply);
  };
  for (const url of ['/services/collector', '/services/collector/event', '/services/collector/event/1.0'])
    app.post(url, { ...guarded, errorHandler: hecErrorHandler }, eventHandler);

  app.post(
    '/services/collector/raw',
    { ...guarded, errorHandler: hecErrorHandler },
    async (request, reply) => {
      const source = request.ingestSource!;
      if (await busy(ctx, reply)) return reply;
      const text = ctx.bodyText(request);
      const records = lines(text);
      if (records.length === 0) return send(reply, HEC.noData);
      const digest = createHash('sha256').update(text).digest('base64url');
      return accept(source, records, `hec-raw:${digest}`, request, reply);
    },
  );

  const guardedAck = authenticatedRoute((request, reply) => authenticate(ctx, request, reply));
  app.post(
    '/services/collector/ack',
    { ...guardedAck, errorHandler: hecErrorHandler },
    async (request, reply) => {
      const source = request.ingestSource!;
      const channel = channelOf(request);
      if (channel === undefined) return send(reply, HEC.channelMissing);
      if (!CHANNEL.test(channel)) return send(reply, HEC.invalidChannel);
      let ids: unknown;
      try {
        ids = (JSON.parse(ctx.bodyText(request)) as { acks?: unknown } | null)?.acks;
      } catch {
        return send(reply, HEC.invalidFormat);
      }
      if (!Array.isArray(ids) || !ids.every((id) => Number.isSafeInteger(id) && id >= 0))
        return send(reply, HEC.invalidFormat);
      const acks = ctx.options.hecAcks;
      const known = acks
        ? await ctx.queue(() => acks.jobs(source.name, channel, ids as number[]))
        : new Map();
      const result: Record<string, boolean> = {};
      const done: number[] = [];
      for (const id of ids as number[]) {
        const jobs = known.get(id);
        const stored = jobs !== undefined && (await ctx.queue(() => ctx.options.producer.jobsDone(jobs)));
        result[String(id)] = stored;
        if (stored) done.push(id);
      }
      if (acks && done.length > 0) await ctx.queue(() => acks.forget(source.name, channel, done));
      return reply.send({ acks: result });
    },
  );
}
