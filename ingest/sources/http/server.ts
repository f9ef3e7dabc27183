/**
 * HTTP push sources: one Fastify server speaking the protocols existing shippers already use,
 * so they ship to Gatewatch unchanged. Each protocol is a plugin in this folder:
 *
 *   ndjson.ts        POST /ingest/:source          NDJSON, JSON array or one JSON object
 *   elastic-bulk.ts  POST /_bulk, /:index/_bulk    Filebeat, Logstash, Vector, Fluent Bit, rsyslog
 *   splunk-hec.ts    /services/collector/...       Splunk HEC clients
 *   firehose.ts      POST /firehose                AWS Kinesis Data Firehose HTTP endpoint
 *   logpush.ts       POST /logpush/:source         Cloudflare Logpush HTTP destination
 *
 * Shared here: per-source tokens, gzip bodies with a size limit that also bounds the
 * decompressed size, and back-pressure (429 + Retry-After above the queue's high-water mark).
 * A request is acknowledged only after its batches are in Redis.
 */
import { timingSafeEqual } from 'node:crypto';
import { gunzipSync, inflateSync } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { bodyTimeout } from '../../../api/body-timeout.ts';
import type { SourceConfig } from '../../../core/config/schema.ts';
import { batchHeader } from '../../pipeline/batch.ts';
import type { IngestProducer } from '../../pipeline/producer.ts';
import { registerElasticBulk } from './elastic-bulk.ts';
import { registerFirehose } from './firehose.ts';
import { registerLogpush } from './logpush.ts';
import { registerNdjson } from './ndjson.ts';
import { type HecAckStore, registerSplunkHec } from './splunk-hec.ts';

export interface HttpSourceOptions {
  sources: SourceConfig[];
  producer: IngestProducer;
  /** Largest body accepted, compressed or not (bytes). */
  maxBodyBytes: number;
  /** Longest time to receive a body (ms); slower ones are cut with 408. Default 120 s. */
  bodyTimeoutMs?: number;
  /** Seconds suggested to clients pushed back with 429/503. */
  retryAfterSeconds?: number;
  /** Replay-detection store for Firehose request ids. */
  seenRequestIds?: { claim(id: string): Promise<boolean>; release(id: string): Promise<void> };
  /** Splunk HEC indexer acknowledgements (without: requests get no ackId). */
  hecAcks?: HecAckStore;
  logger?: boolean;
}

export interface HttpSourceContext {
  options: HttpSourceOptions;
  /** The source a token belongs to, compared in constant time. */
  sourceForToken(token: string | undefined): SourceConfig | undefined;
  sourceByName(name: string): SourceConfig | undefined;
  /** Decompressed body as UTF-8 text; throws HttpError(413/400) on limits or bad gzip. */
  bodyText(request: FastifyRequest): string;
  /** Enqueue records for a source; throws BackpressureError when over high water. */
  accept(
    source: SourceConfig,
    records: string[],
    discriminator: string,
    request: FastifyRequest,
  ): Promise<number>;
  /** Reply 429 when the queue is over its high-water mark; returns true when it did. */
  pushBack(reply: FastifyReply, status?: 429 | 503): Promise<boolean>;
  /** Whether the queue is over its high-water mark; QueueUnavailableError when Redis does not answer. */
  overHighWater(): Promise<boolean>;
  /** Run a call to the queue's Redis; its failure becomes QueueUnavailableError (503, retry). */
  queue<T>(call: () => Promise<T>): Promise<T>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The source whose token the request carries, set before its body is read. */
    ingestSource: SourceConfig | null;
  }
}

/**
 * Route options that authenticate a push on its headers alone, before any of its body is read:
 * an unauthenticated sender costs no memory for what it sends, and the connection is closed
 * after the refusal instead of draining the body. `authenticate` answers the refusal in the
 * protocol's own shape and returns the source, or undefined when it refused.
 */
export function authenticatedRoute(
  authenticate: (request: FastifyRequest, reply: FastifyReply) => SourceConfig | undefined,
) {
  return {
    onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
      reply.header('connection', 'close');
      const source = authenticate(request, reply);
      if (!source) return reply;
      reply.removeHeader('connection');
      request.ingestSource = source;
    },
  };
}

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * The queue (Redis) did not take the data: nothing was accepted, the sender should retry. The
 * only failure answered 503 with Retry-After; anything else unexpected is a 500, so a request
 * that fails on its content is never invited back forever.
 */
export class QueueUnavailableError extends HttpError {
  constructor(cause: unknown) {
    super(
      503,
      `ingest queue unavailable, nothing was accepted; retry later (${(cause as Error)?.message ?? cause})`,
    );
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function decodeBody(body: Buffer, encoding: string | undefined, maxBytes: number): string {
  let bytes = body;
  const enc = (encoding ?? '').toLowerCase().trim();
  try {
    if (enc === 'gzip' || (enc === '' && bytes[0] === 0x1f && bytes[1] === 0x8b)) {
      bytes = gunzipSync(bytes, { maxOutputLength: maxBytes });
    } else if (enc === 'deflate') {
      bytes = inflateSync(bytes, { maxOutputLength: maxBytes });
    } else if (enc !== '' && enc !== 'identity') {
      throw new HttpError(415, `unsupported Content-Encoding "${enc}"`);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HttpError(413, `decompressed body exceeds ${maxBytes} bytes`);
    }
    throw new HttpError(400, `body is not valid ${enc || 'gzip'} data: ${(err as Error).message}`);
  }
  return bytes.toString('utf8');
}

/** Split text into non-empty lines (CRLF tolerated). */
export function lines(text: string): string[] {
  return text.split(/\r?\n/).filter((l) => l.trim().length > 0);
}

export function buildHttpSourceServer(options: HttpSourceOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.maxBodyBytes,
    // HEAD routes are declared where shippers use them (GET / and template probes).
    exposeHeadRoutes: false,
    // Shippers send odd content types (x-ndjson, charset suffixes, none): take every body raw.
  });
  app.decorateRequest('ingestSource', null);
  bodyTimeout(app, options.bodyTimeoutMs ?? 120_000, (seconds) => ({
    error: `the request body did not arrive within ${seconds} s`,
  }));
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const tokens: { token: string; source: SourceConfig }[] = [];
  for (const source of options.sources) for (const token of source.tokens) tokens.push({ token, source });
  const byName = new Map(options.sources.map((s) => [s.name, s]));

  const ctx: HttpSourceContext = {
    options,
    sourceForToken(token) {
      if (!token) return undefined;
      let found: SourceConfig | undefined;
      // Compare against every token so timing does not reveal which prefix matched.
      for (const entry of tokens) if (constantTimeEqual(entry.token, token)) found = entry.source;
      return found;
    },
    sourceByName: (name) => byName.get(name),
    bodyText(request) {
      const body = request.body;
      if (body === undefined || body === null) return '';
      if (!Buffer.isBuffer(body)) throw new HttpError(400, 'unexpected body');
      return decodeBody(
        body,
        request.headers['content-encoding'] as string | undefined,
        options.maxBodyBytes,
      );
    },
    async accept(source, records, discriminator, request) {
      return ctx.queue(() =>
        options.producer.enqueue(
          batchHeader(source, request.socket.remoteAddress?.replace(/^::ffff:/, '')),
          records,
          discriminator,
        ),
      );
    },
    async queue(call) {
      try {
        return await call();
      } catch (err) {
        throw new QueueUnavailableError(err);
      }
    },
    overHighWater: () => ctx.queue(() => options.producer.overHighWater()),
    async pushBack(reply, status = 429) {
      const reason = await ctx.queue(() => options.producer.pressure());
      if (reason === undefined) return false;
      await reply
        .code(status)
        .header('retry-after', String(options.retryAfterSeconds ?? 5))
        .send({ error: `${reason}; retry later` });
      return true;
    },
  };

  app.setErrorHandler((err, _request, reply) => {
    const error = err as Error;
    const status =
      error instanceof HttpError ? error.status : ((error as { statusCode?: number }).statusCode ?? 500);
    // Redis unreachable: the data was not accepted; tell the shipper to retry.
    if (status === 503) reply.header('retry-after', String(options.retryAfterSeconds ?? 5));
    // An unexpected failure says no more than that: the log has the rest.
    const message = status >= 500 && status !== 503 ? 'internal error' : error.message;
    if (status >= 500 && status !== 503) console.error(`ingest HTTP: ${error.stack ?? error.message}`);
    void reply.code(status).send({ error: message });
  });

  app.get('/health', async () => ({ status: 'ok' }));
  registerNdjson(app, ctx);
  registerElasticBulk(app, ctx);
  registerSplunkHec(app, ctx);
  registerFirehose(app, ctx);
  registerLogpush(app, ctx);
  return app;
}

/** `Bearer x`, `Basic base64(user:x)`, `ApiKey x`: the token part. */
export function tokenFromAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(/\s+/, 2);
  if (!scheme || !value) return undefined;
  switch (scheme.toLowerCase()) {
    case 'bearer':
    case 'apikey':
    case 'splunk':
      return value;
    case 'basic': {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon >= 0 ? decoded.slice(colon + 1) : decoded;
    }
    default:
      return undefined;
  }
}
