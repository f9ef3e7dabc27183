/**
 * An Elasticsearch-compatible `_bulk` endpoint, so Filebeat, Logstash, Vector, Fluent Bit and
 * rsyslog's omelasticsearch ship to Gatewatch with their Elasticsearch output unchanged.
 *
 * Shippers probe first: `GET /` (version + X-Elastic-Product header), license, templates,
 * ILM policies. Those are answered harmlessly. `_bulk` is lenient on legacy `_type`, blank
 * lines and `charset` in Content-Type; per-item results come back in order; 429 under
 * pressure (every shipper retries that). Authentication: Basic (password = source token),
 * ApiKey or Bearer.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SourceConfig } from '../../../core/config/schema.ts';
import { authenticatedRoute, type HttpSourceContext, tokenFromAuthorization } from './server.ts';

/** The version Gatewatch reports; shippers of 7.x–9.x accept 8.x. */
export const EMULATED_ES_VERSION = '8.19.0';

const PRODUCT_HEADER = { 'x-elastic-product': 'Elasticsearch' };

interface BulkAction {
  op: 'index' | 'create' | 'update' | 'delete';
  index?: string;
  id?: string;
}

export interface ParsedBulk {
  items: { action: BulkAction; record?: string; error?: string }[];
}

/** The log line in a shipped document: `message` (Beats, Logstash, Vector, rsyslog), `log` (Fluent Bit). */
export function recordFromDocument(doc: Record<string, unknown>): string {
  for (const key of ['message', 'log', 'msg']) {
    const value = doc[key];
    if (typeof value === 'string' && value.length > 0) return value;
  }
  return JSON.stringify(doc);
}

export function parseBulkBody(text: string): ParsedBulk {
  const items: ParsedBulk['items'] = [];
  const rows = text.split('\n');
  let i = 0;
  const next = () => {
    while (i < rows.length && rows[i]!.trim() === '') i++;
    return i < rows.length ? rows[i++]! : undefined;
  };
  for (let row = next(); row !== undefined; row = next()) {
    let header: Record<string, { _index?: string; _id?: string; _type?: string }>;
    try {
      header = JSON.parse(row);
    } catch {
      items.push({ action: { op: 'index' }, error: 'malformed action line' });
      continue;
    }
    const op = Object.keys(header)[0] as BulkAction['op'] | undefined;
    if (!op || !['index', 'create', 'update', 'delete'].includes(op)) {
      items.push({ action: { op: 'index' }, error: `unknown bulk action "${op}"` });
      continue;
    }
    const meta = header[op] ?? {};
    const action: BulkAction = {
      op,
      ...(meta._index ? { index: meta._index } : {}),
      ...(meta._id ? { id: meta._id } : {}),
    };
    if (op === 'delete') {
      items.push({ action, error: 'delete is not supported by Gatewatch ingest' });
      continue;
    }
    const source = next();
    if (source === undefined) {
      items.push({ action, error: 'action line without a document' });
      break;
    }
    try {
      const doc = JSON.parse(source) as unknown;
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not an object');
      const body = op === 'update' ? ((doc as { doc?: unknown }).doc as Record<string, unknown>) : doc;
      if (!body || typeof body !== 'object') throw new Error('update without doc');
      items.push({ action, record: recordFromDocument(body as Record<string, unknown>) });
    } catch (err) {
      items.push({ action, error: `malformed document: ${(err as Error).message}` });
    }
  }
  return { items };
}

/**
 * Elasticsearch's own 401 (security_exception with root_cause and the WWW-Authenticate
 * challenges, status), so a shipper treats missing or wrong credentials here exactly as it
 * would against Elasticsearch. The reason names the request path, as Elasticsearch's does.
 */
export function unauthorizedBody(path: string, presented: boolean) {
  const reason = presented
    ? `unable to authenticate with the provided credentials for REST request [${path}]`
    : `missing authentication credentials for REST request [${path}]`;
  const header = { 'WWW-Authenticate': [...WWW_AUTHENTICATE] };
  return {
    error: {
      root_cause: [{ type: 'security_exception', reason, header }],
      type: 'security_exception',
      reason,
      header,
    },
    status: 401,
  };
}

const WWW_AUTHENTICATE = ['Basic realm="security", charset="UTF-8"', 'ApiKey'] as const;

function authenticate(
  ctx: HttpSourceContext,
  request: FastifyRequest,
  reply: FastifyReply,
): SourceConfig | undefined {
  const source = ctx.sourceForToken(tokenFromAuthorization(request.headers.authorization));
  if (!source) {
    void reply
      .code(401)
      .headers(PRODUCT_HEADER)
      .header('www-authenticate', [...WWW_AUTHENTICATE])
      .send(unauthorizedBody(request.url.split('?')[0] ?? '/', request.headers.authorization !== undefined));
  }
  return source;
}

export function registerElasticBulk(app: FastifyInstance, ctx: HttpSourceContext): void {
  const info = () => ({
    name: 'gatewatch',
    cluster_name: 'gatewatch',
    cluster_uuid: 'gatewatch-ingest',
    version: {
      number: EMULATED_ES_VERSION,
      build_flavor: 'default',
      build_type: 'docker',
      lucene_version: '9.12.0',
      minimum_wire_compatibility_version: '7.17.0',
      minimum_index_compatibility_version: '7.0.0',
    },
    tagline: 'You Know, for Search',
  });
  app.get('/', async (request, reply) => {
    if (!authenticate(ctx, request, reply)) return reply;
    return reply.headers(PRODUCT_HEADER).send(info());
  });
  app.head('/', async (request, reply) => {
    if (!authenticate(ctx, request, reply)) return reply;
    return reply.headers(PRODUCT_HEADER).code(200).send();
  });
  app.get('/_license', async (_request, reply) =>
    reply.headers(PRODUCT_HEADER).send({
      license: {
        status: 'active',
        uid: 'gatewatch',
        type: 'basic',
        issue_date_in_millis: 0,
        max_nodes: 1000,
      },
    }),
  );
  app.get('/_xpack', async (_request, reply) =>
    reply
      .headers(PRODUCT_HEADER)
      .send({ build: {}, license: { type: 'basic', status: 'active' }, features: {} }),
  );

  const bulk = async (request: FastifyRequest<{ Params: { index?: string } }>, reply: FastifyReply) => {
    const source = request.ingestSource!;
    reply.headers(PRODUCT_HEADER);
    const busy = await ctx.queue(() => ctx.options.producer.pressure());
    if (busy !== undefined) {
      return reply
        .code(429)
        .header('retry-after', String(ctx.options.retryAfterSeconds ?? 5))
        .send({
          error: {
            type: 'es_rejected_execution_exception',
            reason: `Gatewatch cannot take more now: ${busy}`,
          },
          status: 429,
        });
    }
    const text = ctx.bodyText(request);
    const started = Date.now();
    const parsed = parseBulkBody(text);
    const records = parsed.items.filter((it) => it.record !== undefined).map((it) => it.record!);
    const digest = createHash('sha256').update(text).digest('base64url');
    await ctx.accept(source, records, `bulk:${digest}`, request);
    const defaultIndex = request.params.index ?? source.name;
    let errors = false;
    const items = parsed.items.map((item, n) => {
      const index = item.action.index ?? defaultIndex;
      const id = item.action.id ?? `${digest.slice(0, 16)}-${n}`;
      const op = item.action.op === 'update' ? 'update' : item.action.op;
      if (item.error) {
        errors = true;
        return {
          [op]: {
            _index: index,
            _id: id,
            status: 400,
            error: { type: 'mapper_parsing_exception', reason: item.error },
          },
        };
      }
      return {
        [op]: {
          _index: index,
          _id: id,
          _version: 1,
          result: 'created',
          _shards: { total: 1, successful: 1, failed: 0 },
          _seq_no: n,
          _primary_term: 1,
          status: 201,
        },
      };
    });
    return reply.send({ took: Date.now() - started, errors, items });
  };
  const guarded = authenticatedRoute((request, reply) => authenticate(ctx, request, reply));
  app.post<{ Params: { index?: string } }>('/_bulk', guarded, bulk);
  app.put<{ Params: { index?: string } }>('/_bulk', guarded, bulk);
  app.post<{ Params: { index?: string } }>('/:index/_bulk', guarded, bulk);
  app.put<{ Params: { index?: string } }>('/:index/_bulk', guarded, bulk);

  // Template, ILM, pipeline and data-stream probes: Gatewatch manages its own; say yes.
  const harmlessGet = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.headers(PRODUCT_HEADER).send({});
  const harmlessPut = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.headers(PRODUCT_HEADER).send({ acknowledged: true });
  for (const path of [
    '/_index_template/:name',
    '/_template/:name',
    '/_ilm/policy/:name',
    '/_ingest/pipeline/:name',
    '/_data_stream/:name',
    '/_component_template/:name',
  ]) {
    app.get(path, harmlessGet);
    app.head(path, async (_request, reply) => reply.headers(PRODUCT_HEADER).code(200).send());
    app.put(path, harmlessPut);
    app.post(path, harmlessPut);
  }
  app.get('/_nodes', harmlessGet);
  app.get('/_nodes/*', harmlessGet);
  app.get('/_cluster/health', async (_request, reply) =>
    reply.headers(PRODUCT_HEADER).send({ status: 'green' }),
  );
}
