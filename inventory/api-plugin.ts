/**
 * Fastify plugin for the API inventory:
 *   GET    /inventory/endpoints        discovered endpoints (filters, sort, cursor pages)
 *   GET    /inventory/endpoints/:id    one endpoint with its classification
 *   GET    /inventory/specs            imported specs (all versions)
 *   GET    /inventory/specs/:id        one spec with its operations
 *   POST   /inventory/specs            upload a JSON or YAML spec (400 problem+json with pointers)
 *   DELETE /inventory/specs/:id        delete one spec version
 *   GET    /inventory/findings         shadow / zombie / orphan / undocumented / anonymous success
 *   GET    /inventory/openapi          the discovered inventory as an OpenAPI 3.1 document
 * Authentication is the parent's business: every route declares `config.access` (`read` for
 * reads, `admin` for spec changes) as the main app requires, and `opts.authorize(access)`
 * can add a preHandler when the plugin is mounted elsewhere.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyContextConfig,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  preHandlerAsyncHookHandler,
} from 'fastify';
import Type from 'typebox';
import { sendProblem } from '../api/problem.ts';
import { NextCursor } from '../api/schemas.ts';
import { Classifier, type ClassifierOptions, type EndpointClassification, type Finding } from './classify.ts';
import { exportOpenApi } from './export.ts';
import { SpecInvalidError, type SpecProblem } from './specs/parse.ts';
import { type ImportedSpec, importSpec, type SpecStore } from './specs/registry.ts';
import type { EndpointState } from './state.ts';
import { InvalidCursorError, type InventoryStore } from './store.ts';

export type InventoryAccess = 'read' | 'admin';

export interface InventoryPluginOptions {
  store: InventoryStore;
  specs: SpecStore;
  classifier?: ClassifierOptions;
  /** Extra per-route preHandler for the given access level (when the parent does not authorise). */
  authorize?: (access: InventoryAccess) => preHandlerAsyncHookHandler;
  /** Clock (tests). */
  now?: () => Date;
}

const SPEC_CONTENT_TYPES = [
  'application/json',
  'application/yaml',
  'application/x-yaml',
  'text/yaml',
  'text/x-yaml',
  'text/plain',
];

const Timestamp = Type.String({ format: 'date-time' });
const ClassificationSchema = Type.Union([
  Type.Literal('documented'),
  Type.Literal('shadow'),
  Type.Literal('zombie'),
]);
const FindingKindSchema = Type.Union([
  Type.Literal('shadow'),
  Type.Literal('zombie'),
  Type.Literal('orphan'),
  Type.Literal('undocumented_parameter'),
  Type.Literal('undocumented_status'),
  Type.Literal('anonymous_success'),
]);
const SortSchema = Type.Union([
  Type.Literal('last_seen'),
  Type.Literal('first_seen'),
  Type.Literal('requests'),
  Type.Literal('route'),
  Type.Literal('clients_estimate'),
]);
const Str = Type.String({ minLength: 1, maxLength: 2048 });

const OperationRefSchema = Type.Object({
  spec_id: Type.String(),
  spec_key: Type.String(),
  spec_version: Type.Integer(),
  method: Type.String(),
  path: Type.String(),
  operation_id: Type.Optional(Type.String()),
});

const Counts = (keys: string[]) => Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])));

export const EndpointViewSchema = Type.Object(
  {
    id: Type.String(),
    host: Type.String(),
    method: Type.String(),
    route: Type.String({ description: 'Route template as first seen.' }),
    route_key: Type.String({
      description: 'Route with placeholders written {param}: the endpoint identity.',
    }),
    route_variants: Type.Array(Type.String()),
    first_seen: Timestamp,
    last_seen: Timestamp,
    requests: Type.Integer(),
    clients_estimate: Type.Integer({
      description: 'Distinct source IPs (exact up to 64, then HyperLogLog).',
    }),
    keys_estimate: Type.Integer({ description: 'Distinct API key fingerprints.' }),
    status_classes: Counts(['1xx', '2xx', '3xx', '4xx', '5xx', 'other']),
    status_codes: Type.Record(Type.String(), Type.Integer()),
    auth: Type.Object({
      present: Type.Integer(),
      absent: Type.Integer(),
      unknown: Type.Integer(),
      anonymous_success: Type.Integer(),
      last_anonymous_success: Type.Optional(Timestamp),
    }),
    params: Type.Array(Type.String(), { description: 'Query parameter names seen (bounded).' }),
    params_overflow: Type.Boolean(),
    bytes_p50: Type.Optional(Type.Number({ description: 'Typical response size (estimated median).' })),
    bytes_p95: Type.Optional(Type.Number()),
    classification: ClassificationSchema,
    reason: Type.String(),
    operation: Type.Optional(OperationRefSchema),
    undocumented_params: Type.Array(Type.String()),
    undocumented_statuses: Type.Array(Type.String()),
    anonymous_success: Type.Boolean(),
  },
  { title: 'InventoryEndpoint' },
);

const SpecSummarySchema = Type.Object(
  {
    id: Type.String(),
    key: Type.String(),
    hosts: Type.Array(Type.String()),
    service: Type.Optional(Type.String()),
    version: Type.Integer(),
    current: Type.Boolean(),
    title: Type.String(),
    api_version: Type.String(),
    format: Type.String(),
    imported_at: Timestamp,
    source: Type.Optional(Type.String()),
    base_paths: Type.Array(Type.String()),
    operations: Type.Integer(),
    deprecated_operations: Type.Integer(),
  },
  { title: 'InventorySpecSummary' },
);

const SpecOperationSchema = Type.Object({
  method: Type.String(),
  path: Type.String(),
  full_paths: Type.Array(Type.String()),
  operation_id: Type.Optional(Type.String()),
  deprecated: Type.Boolean(),
  query_params: Type.Array(Type.String()),
  statuses: Type.Array(Type.String()),
  requires_auth: Type.Optional(Type.Boolean()),
});

const FindingSchema = Type.Object(
  {
    id: Type.String({ description: 'hash(kind, host, method, route): stable across runs.' }),
    kind: FindingKindSchema,
    severity: Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')]),
    host: Type.String(),
    method: Type.String(),
    route: Type.String(),
    title: Type.String(),
    detail: Type.String(),
    endpoint_id: Type.Optional(Type.String()),
    first_seen: Type.Optional(Timestamp),
    last_seen: Type.Optional(Timestamp),
    operation: Type.Optional(OperationRefSchema),
    evidence: Type.Record(Type.String(), Type.Unknown()),
  },
  { title: 'InventoryFinding' },
);

export const SpecProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          // Optional: request-validation problems from the API core carry `field` only.
          pointer: Type.Optional(
            Type.String({ description: 'JSON pointer into the uploaded document ("" = root).' }),
          ),
          field: Type.String({ description: 'Same as pointer (the API-wide name).' }),
          message: Type.String(),
          line: Type.Optional(Type.Integer()),
          column: Type.Optional(Type.Integer()),
        }),
      ),
    ),
  },
  { title: 'InventoryProblem' },
);

// Ids are hashes; 100 is also Fastify's router limit for a path parameter.
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

const EndpointsQuery = Type.Object(
  {
    host: Type.Optional(Str),
    method: Type.Optional(Type.String({ pattern: '^[A-Za-z]{1,16}$' })),
    classification: Type.Optional(ClassificationSchema),
    route_prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, pattern: '^/' })),
    sort: Type.Optional(SortSchema),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 1024, description: 'next_cursor of the previous page.' })),
  },
  { additionalProperties: false },
);

const FindingsQuery = Type.Object(
  {
    kind: Type.Optional(FindingKindSchema),
    host: Type.Optional(Str),
    severity: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
    cursor: Type.Optional(Type.String({ maxLength: 256, description: 'next_cursor of the previous page.' })),
  },
  { additionalProperties: false },
);

const UploadQuery = Type.Object({
  key: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 256,
      description: 'Version under this key (default: service, first host, title).',
    }),
  ),
  host: Type.Optional(
    Type.Array(Str, {
      maxItems: 50,
      description: 'Hosts the spec applies to (repeat); default: from servers/host.',
    }),
  ),
  service: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  source: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'File name or label.' })),
});

function problem(
  reply: FastifyReply,
  _request: FastifyRequest,
  status: number,
  type: string,
  _title: string,
  detail: string,
  problems?: SpecProblem[],
) {
  // The API core's RFC 9457 body: `field` is the JSON pointer into the uploaded document.
  return sendProblem(
    reply,
    status,
    type,
    detail,
    problems?.map((p) => ({
      field: p.pointer,
      message: p.message,
      ...(p.line !== undefined ? { line: p.line } : {}),
      ...(p.column !== undefined ? { column: p.column } : {}),
    })),
  );
}

function specSummary(s: ImportedSpec, current: boolean) {
  return {
    id: s.id,
    key: s.key,
    hosts: s.hosts,
    ...(s.service ? { service: s.service } : {}),
    version: s.version,
    current,
    title: s.title,
    api_version: s.apiVersion,
    format: s.format,
    imported_at: s.imported_at,
    ...(s.source ? { source: s.source } : {}),
    base_paths: s.basePaths,
    operations: s.operations.length,
    deprecated_operations: s.operations.filter((o) => o.deprecated).length,
  };
}

function currentIds(specs: ImportedSpec[]): Set<string> {
  const latest = new Map<string, ImportedSpec>();
  for (const s of specs) if ((latest.get(s.key)?.version ?? 0) < s.version) latest.set(s.key, s);
  return new Set([...latest.values()].map((s) => s.id));
}

function view(e: EndpointState, c: EndpointClassification) {
  const { sketch: _sketch, ...rest } = e;
  return { ...rest, ...c };
}

const SEVERITY_ORDER = { high: 0, medium: 1, low: 2 } as const;

export async function inventoryPlugin(parent: FastifyInstance, opts: InventoryPluginOptions): Promise<void> {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { store, specs } = opts;
  const now = opts.now ?? (() => new Date());
  const guard = (access: InventoryAccess) => ({
    // `access` is the main app's declaration (api/app.ts augments FastifyContextConfig with it)
    config: { access } as unknown as FastifyContextConfig,
    ...(opts.authorize ? { preHandler: opts.authorize(access) } : {}),
  });
  const classifier = async () => new Classifier(await specs.list(), opts.classifier);

  app.get(
    '/inventory/endpoints',
    {
      ...guard('read'),
      schema: {
        tags: ['inventory'],
        summary: 'Discovered endpoints',
        description:
          'Endpoints seen in traffic per (host, method, route template), with classification against the imported specs.',
        querystring: EndpointsQuery,
        response: {
          200: Type.Object({ items: Type.Array(EndpointViewSchema), next_cursor: NextCursor }),
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const limit = q.limit ?? 100;
      const c = await classifier();
      const items: ReturnType<typeof view>[] = [];
      let cursor = q.cursor;
      let next: string | undefined;
      try {
        for (;;) {
          const page = await store.list({
            ...(q.host ? { host: q.host } : {}),
            ...(q.method ? { method: q.method } : {}),
            ...(q.route_prefix ? { routePrefix: q.route_prefix } : {}),
            ...(q.sort ? { sort: q.sort } : {}),
            ...(q.order ? { order: q.order } : {}),
            limit: q.classification ? Math.max(limit, 200) : limit,
            ...(cursor ? { cursor } : {}),
          });
          for (const { endpoint, cursor: at } of page.items) {
            const cls = c.classify(endpoint);
            if (q.classification && cls.classification !== q.classification) continue;
            items.push(view(endpoint, cls));
            if (items.length === limit) {
              next = at;
              break;
            }
          }
          if (items.length === limit) {
            if (!page.next_cursor && page.items[page.items.length - 1]?.cursor === next) next = undefined;
            break;
          }
          if (!page.next_cursor) break;
          cursor = page.next_cursor;
        }
      } catch (err) {
        if (err instanceof InvalidCursorError)
          return problem(
            reply,
            request,
            400,
            'invalid-cursor',
            'Bad Request',
            'the cursor is not one this API returned',
          );
        throw err;
      }
      return { items, next_cursor: next ?? null };
    },
  );

  app.get(
    '/inventory/endpoints/:id',
    {
      ...guard('read'),
      schema: {
        tags: ['inventory'],
        summary: 'One discovered endpoint',
        params: IdParams,
        response: { 200: EndpointViewSchema },
      },
    },
    async (request, reply) => {
      const e = await store.get(request.params.id);
      if (!e)
        return problem(reply, request, 404, 'not-found', 'Not Found', `no endpoint ${request.params.id}`);
      return view(e, (await classifier()).classify(e));
    },
  );

  app.get(
    '/inventory/specs',
    {
      ...guard('read'),
      schema: {
        tags: ['inventory'],
        summary: 'Imported API specifications (every version)',
        querystring: Type.Object({ key: Type.Optional(Str), current: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ items: Type.Array(SpecSummarySchema) }) },
      },
    },
    async (request) => {
      const all = await specs.list();
      const cur = currentIds(all);
      const items = all
        .filter((s) => request.query.key === undefined || s.key === request.query.key.toLowerCase())
        .filter((s) => request.query.current === undefined || cur.has(s.id) === request.query.current)
        .sort((a, b) => a.key.localeCompare(b.key) || b.version - a.version)
        .map((s) => specSummary(s, cur.has(s.id)));
      return { items };
    },
  );

  app.get(
    '/inventory/specs/:id',
    {
      ...guard('read'),
      schema: {
        tags: ['inventory'],
        summary: 'One imported specification with its operations',
        params: IdParams,
        response: {
          200: Type.Intersect([
            SpecSummarySchema,
            Type.Object({ operation_list: Type.Array(SpecOperationSchema) }),
          ]),
        },
      },
    },
    async (request, reply) => {
      const all = await specs.list();
      const s = all.find((x) => x.id === request.params.id);
      if (!s) return problem(reply, request, 404, 'not-found', 'Not Found', `no spec ${request.params.id}`);
      return {
        ...specSummary(s, currentIds(all).has(s.id)),
        operation_list: s.operations.map((o) => ({
          method: o.method,
          path: o.path,
          full_paths: o.fullPaths,
          ...(o.operationId ? { operation_id: o.operationId } : {}),
          deprecated: o.deprecated,
          query_params: o.queryParams,
          statuses: o.statuses,
          ...(o.requiresAuth !== undefined ? { requires_auth: o.requiresAuth } : {}),
        })),
      };
    },
  );

  // Spec uploads are read as text (JSON or YAML) so that problems carry line numbers. In a
  // child context of its own, so that the parsers of the other routes stay as they are even
  // if this plugin is registered without encapsulation.
  await app.register(async (child) => {
    const upload = child.withTypeProvider<TypeBoxTypeProvider>();
    upload.removeContentTypeParser(['application/json', 'text/plain']);
    upload.addContentTypeParser(SPEC_CONTENT_TYPES, { parseAs: 'string' }, (_req, body, done) =>
      done(null, body),
    );
    upload.post(
      '/inventory/specs',
      {
        ...guard('admin'),
        schema: {
          tags: ['inventory'],
          summary: 'Import an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML)',
          description:
            'Each changed upload under the same key adds a version; operations missing from the newest version count as removed (zombie when still called).',
          querystring: UploadQuery,
          consumes: SPEC_CONTENT_TYPES,
          body: Type.String({ description: 'The document, JSON or YAML.' }),
          response: {
            200: Type.Object(
              { created: Type.Boolean(), spec: SpecSummarySchema },
              { description: 'Identical to the current version: nothing stored.' },
            ),
            201: Type.Object({ created: Type.Boolean(), spec: SpecSummarySchema }),
          },
        },
      },
      async (request, reply) => {
        const q = request.query;
        try {
          const r = await importSpec(specs, request.body, {
            ...(q.key ? { key: q.key } : {}),
            ...(q.host ? { hosts: q.host } : {}),
            ...(q.service ? { service: q.service } : {}),
            ...(q.source ? { source: q.source } : {}),
            now: now(),
          });
          return reply
            .code(r.created ? 201 : 200)
            .send({ created: r.created, spec: specSummary(r.spec, true) });
        } catch (err) {
          if (err instanceof SpecInvalidError) {
            return problem(
              reply,
              request,
              400,
              'invalid-spec',
              'Invalid API specification',
              err.message,
              err.problems,
            );
          }
          throw err;
        }
      },
    );
  });

  app.delete(
    '/inventory/specs/:id',
    {
      ...guard('admin'),
      schema: {
        tags: ['inventory'],
        summary: 'Delete one spec version',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }) },
      },
    },
    async (request, reply) => {
      if (!(await specs.delete(request.params.id))) {
        return problem(reply, request, 404, 'not-found', 'Not Found', `no spec ${request.params.id}`);
      }
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/inventory/findings',
    {
      ...guard('read'),
      schema: {
        tags: ['inventory'],
        summary: 'Inventory findings',
        description:
          'Shadow, zombie and orphan APIs, undocumented parameters and status codes, anonymous success on authenticated endpoints. Ids are deterministic, so re-reading yields the same findings.',
        querystring: FindingsQuery,
        response: {
          200: Type.Object({ items: Type.Array(FindingSchema), next_cursor: NextCursor }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const findings = await computeFindings(store, await classifier(), now());
      const sorted = findings
        .filter(
          (f) =>
            (!q.kind || f.kind === q.kind) &&
            (!q.host || f.host === q.host.toLowerCase()) &&
            (!q.severity || f.severity === q.severity),
        )
        .sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.id.localeCompare(b.id));
      const key = (f: Finding) => `${SEVERITY_ORDER[f.severity]}:${f.id}`;
      const rest = q.cursor ? sorted.filter((f) => key(f) > q.cursor!) : sorted;
      const limit = q.limit ?? 200;
      const items = rest.slice(0, limit);
      return { items, next_cursor: rest.length > limit ? key(items[items.length - 1]!) : null };
    },
  );

  app.get(
    '/inventory/openapi',
    {
      ...guard('read'),
      schema: {
        tags: ['inventory'],
        summary: 'The discovered inventory as an OpenAPI 3.1 document',
        querystring: Type.Object({ host: Type.Optional(Str) }),
        response: { 200: Type.Record(Type.String(), Type.Unknown()) },
      },
    },
    async (request) => {
      const endpoints: EndpointState[] = [];
      for await (const e of store.all())
        if (!request.query.host || e.host === request.query.host.toLowerCase()) endpoints.push(e);
      return exportOpenApi(endpoints, await classifier(), {
        title: request.query.host ? `Discovered API: ${request.query.host}` : 'Discovered API inventory',
        version: now().toISOString().slice(0, 10),
      });
    },
  );
}

/** All findings for the current inventory. */
export async function computeFindings(
  store: InventoryStore,
  classifier: Classifier,
  now: Date,
): Promise<Finding[]> {
  const endpoints: EndpointState[] = [];
  for await (const e of store.all()) endpoints.push(e);
  return classifier.findings(endpoints, now);
}
