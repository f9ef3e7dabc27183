/**
 * The Gatewatch REST API: `buildApp({ config, es, redis, ports })` returns a Fastify instance
 * to `inject` into (tests) or `listen` with (cli/commands/serve.ts).
 *
 * Secure by default: every route declares who may call it (`config.access`); a route without
 * a declaration fails start-up. Only liveness is public. Keys are `Authorization: Bearer
 * gw_<id>_<secret>`; roles viewer < analyst < admin, and ingest (push endpoints only).
 */
import type { Client } from '@elastic/elasticsearch';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { Redis } from 'ioredis';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { ElasticsearchExceptionStore, type ExceptionStore } from '../detections/exceptions.ts';
import { inventoryPlugin } from '../inventory/api-plugin.ts';
import { ElasticsearchSpecStore, type SpecStore } from '../inventory/specs/registry.ts';
import { ElasticsearchInventoryStore, type InventoryStore } from '../inventory/store.ts';
import { AuditLog, type AuditStore } from './audit.ts';
import { ApiKeyStore, type KeyStore, type Principal, type Role } from './auth/keys.ts';
import { bodyTimeout } from './body-timeout.ts';
import { consolePlugin } from './console.ts';
import { metrics } from './metrics.ts';
import type { ApiPorts } from './ports.ts';
import { errorHandler, HttpProblem, sendProblem } from './problem.ts';
import { sharedRateLimitStore } from './rate-limit-store.ts';
import { adminRoutes } from './routes/admin.ts';
import { coverageRoutes } from './routes/coverage.ts';
import { entityRoutes } from './routes/entities.ts';
import { eventFieldRoutes } from './routes/event-fields.ts';
import { eventRoutes } from './routes/events.ts';
import { exceptionRoutes } from './routes/exceptions.ts';
import { healthRoutes, type ReadinessCheck, serverReadiness } from './routes/health.ts';
import { incidentTimelineRoutes } from './routes/incident-timeline.ts';
import { incidentRoutes } from './routes/incidents.ts';
import { ingestQueueRoutes } from './routes/ingest-queue.ts';
import { type OperationsContext, operationsRoutes } from './routes/operations.ts';
import { ruleInsightRoutes } from './routes/rule-insights.ts';
import { ruleRoutes } from './routes/rules.ts';
import { sessionRoutes } from './routes/session.ts';
import { RuleSandbox } from './rules/sandbox.ts';
import { ElasticsearchRuleStore, type RuleStore } from './rules/store.ts';
import { COMMON_ERRORS, PUBLIC_ERRORS, problemResponse, simplifySchema } from './schemas.ts';
import { validatorCompiler } from './validation.ts';

export type Access = 'public' | 'read' | 'triage' | 'admin' | 'ingest';

/** Which roles each access level admits. */
export const ACCESS_ROLES: Record<Access, readonly Role[]> = {
  public: ['viewer', 'analyst', 'admin', 'ingest'],
  read: ['viewer', 'analyst', 'admin'],
  triage: ['analyst', 'admin'],
  admin: ['admin'],
  ingest: ['ingest'],
};

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface RouteEntry {
  method: string;
  url: string;
  access: Access;
}

export interface BuildAppOptions {
  config: GatewatchConfig;
  /**
   * The distributed mode's stores. Without them (the embedded mode) keys, rules, audit,
   * inventory and readiness must be given, and rate limiting is in memory.
   */
  es?: Client;
  redis?: Redis;
  ports: ApiPorts;
  /** Fastify logger option (default: off). */
  logger?: FastifyServerOptions['logger'];
  /** Serve /docs and /openapi.json without a key (default false: viewer key needed). */
  publicDocs?: boolean;
  /** Override stores (tests, the embedded mode). Default: Elasticsearch. */
  keys?: KeyStore;
  rules?: RuleStore;
  audit?: AuditStore;
  /** Rule exceptions (default: Elasticsearch). */
  exceptions?: ExceptionStore;
  /** API inventory stores (default: Elasticsearch). */
  inventory?: { store: InventoryStore; specs: SpecStore };
  /** Readiness checks by name (default: redis and elasticsearch). */
  readiness?: Record<string, ReadinessCheck>;
  /** What the status and retention routes read besides the stores. */
  operations?: OperationsContext;
}

export interface AppContext {
  config: GatewatchConfig;
  es: Client | undefined;
  redis: Redis | undefined;
  ports: ApiPorts;
  keys: KeyStore;
  rules: RuleStore;
  inventory: { store: InventoryStore; specs: SpecStore };
  audit: AuditStore;
  exceptions: ExceptionStore;
  readiness: Record<string, ReadinessCheck>;
  /**
   * Worker threads for rule work (rules/sandbox.ts): `check` parses rule text and filters and
   * tests rules over supplied events; `preview` runs previews over Elasticsearch (the
   * distributed mode; the embedded mode previews through its port).
   */
  sandbox: { check: RuleSandbox; preview: RuleSandbox | undefined };
}

declare module 'fastify' {
  interface FastifyInstance {
    gatewatch: AppContext;
    /** Every route with its access level (for the authorisation matrix and docs). */
    routeTable: RouteEntry[];
  }
}

export const API_VERSION = '1.0.0';

/** Create the API's own indices (keys, audit, rules, incidents template). Idempotent. */
export async function installApiIndices(app: FastifyInstance): Promise<void> {
  const { keys, audit, rules, inventory, exceptions } = app.gatewatch;
  await Promise.all([
    keys.install(),
    audit.install(),
    rules.install(),
    exceptions.install(),
    inventory.store.install(),
    inventory.specs.install(),
  ]);
}

/**
 * Counts requests that failed authentication per client address in one-minute windows; an
 * address past `perMinute` is blocked until its window ends. Memory is bounded: old windows
 * are dropped, and at most 100,000 addresses are tracked (then the table starts over).
 */
function failureLimiter(perMinute: number) {
  const windows = new Map<string, { window: number; failures: number }>();
  const windowOf = (now: number) => Math.floor(now / 60_000);
  return {
    /** Seconds until the address may try again (0: not blocked). */
    blockedFor(address: string): number {
      const now = Date.now();
      const entry = windows.get(address);
      if (!entry || entry.window !== windowOf(now) || entry.failures < perMinute) return 0;
      return Math.max(1, Math.ceil(((entry.window + 1) * 60_000 - now) / 1000));
    },
    fail(address: string): void {
      const window = windowOf(Date.now());
      const entry = windows.get(address);
      if (entry && entry.window === window) entry.failures++;
      else {
        if (windows.size >= 100_000) {
          for (const [k, v] of windows) if (v.window !== window) windows.delete(k);
          if (windows.size >= 100_000) windows.clear();
        }
        windows.set(address, { window, failures: 1 });
      }
    },
  };
}

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const prefix = config.elasticsearch.indexPrefix;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: config.api.bodyLimit,
    trustProxy: false,
    return503OnClosing: true,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true },
    },
    requestIdHeader: false,
    // Long ids and query strings reach schema validation (a 400 problem) instead of being cut
    // off by the router (414) or Node's header limit (431) with an undocumented bare reply.
    routerOptions: { maxParamLength: 2048 },
    http: { maxHeaderSize: 64 * 1024 },
    // What the router refuses before any route (a path segment over maxParamLength, a malformed
    // URL) is a problem document too, not Fastify's own error body.
    frameworkErrors: (error, _request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      return sendProblem(
        reply,
        tooLong ? 414 : 400,
        tooLong ? 'uri-too-long' : 'bad-url',
        tooLong
          ? 'a path segment is longer than 2048 characters; ids are far shorter'
          : 'the URL is malformed (bad percent-encoding)',
      );
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // A slow body is cut (408) after api.requestTimeout, not left open for minutes.
  bodyTimeout(app, durationMs(config.api.requestTimeout), (seconds) => ({
    type: 'urn:gatewatch:problem:request-timeout',
    title: 'Request Timeout',
    status: 408,
    detail: `the request body did not arrive within ${seconds} s`,
  }));

  const { es, redis } = options;
  const missing = (what: string): never => {
    throw new Error(`buildApp: without Elasticsearch and Redis, pass ${what}`);
  };
  const inventory = options.inventory ?? {
    store: new ElasticsearchInventoryStore(es ?? missing('inventory'), prefix),
    specs: new ElasticsearchSpecStore(es ?? missing('inventory'), prefix),
  };
  const ctx: AppContext = {
    config,
    es,
    redis,
    ports: options.ports,
    keys: options.keys ?? new ApiKeyStore(es ?? missing('keys'), prefix),
    rules: options.rules ?? new ElasticsearchRuleStore(es ?? missing('rules'), prefix),
    inventory,
    audit: options.audit ?? new AuditLog(es ?? missing('audit'), prefix),
    exceptions: options.exceptions ?? new ElasticsearchExceptionStore(es ?? missing('exceptions'), prefix),
    readiness:
      options.readiness ??
      serverReadiness(redis ?? missing('readiness'), es ?? missing('readiness'), options.operations?.watch),
    sandbox: {
      check: new RuleSandbox({
        size: 1,
        queueLimit: 16,
        timeoutMs: durationMs(config.api.ruleCheckTimeout),
        memoryMb: config.api.ruleWorkerMemoryMb,
      }),
      preview: es
        ? new RuleSandbox({
            size: config.api.previewConcurrency,
            queueLimit: config.api.previewConcurrency,
            timeoutMs: durationMs(config.api.previewTimeout),
            memoryMb: config.api.ruleWorkerMemoryMb,
            workerData: {
              elasticsearch: config.elasticsearch,
              maxGroups: Math.min(config.detections.maxGroups, config.api.previewMaxGroups),
              foldWindowMs: durationMs(config.detections.foldWindow),
            },
          })
        : undefined,
    },
  };
  app.addHook('onClose', async () => {
    await ctx.sandbox.check.close();
    await ctx.sandbox.preview?.close();
  });
  app.decorate('gatewatch', ctx);
  app.decorate('routeTable', [] as RouteEntry[]);
  app.decorateRequest('principal', null);
  app.setValidatorCompiler(validatorCompiler);
  // 405 with Allow for a known path and an undeclared method; 404 otherwise. The most
  // specific pattern wins (/rules/validate over /rules/:id).
  let patterns: { re: RegExp; params: number; methods: Set<string> }[] | undefined;
  const routeMiss = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    patterns ??= [...Map.groupBy(app.routeTable, (r) => r.url)].map(([url, routes]) => ({
      re: new RegExp(
        `^${url
          .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
          .replace(/:[A-Za-z_]+/g, '[^/]+')
          .replace('*', '.*')}$`,
      ),
      params: (url.match(/:|\*/g) ?? []).length,
      methods: new Set(routes.flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method]))),
    }));
    const matches = patterns.filter((p) => p.re.test(path));
    const best = Math.min(...matches.map((m) => m.params));
    const allowed = new Set(matches.filter((m) => m.params === best).flatMap((m) => [...m.methods]));
    if (allowed.size > 0) {
      reply.header('allow', [...allowed].sort().join(', '));
      return sendProblem(reply, 405, 'method-not-allowed', `${request.method} is not allowed on ${path}`);
    }
    return sendProblem(reply, 404, 'not-found', `no route ${request.method} ${path}`);
  };
  app.setNotFoundHandler(routeMiss);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    // Requests that matched no route but failed before routing (e.g. QUERY without a body).
    if (!request.routeOptions.url && (error.statusCode ?? 500) < 500 && !(error instanceof HttpProblem)) {
      return routeMiss(request, reply);
    }
    return errorHandler(error, request, reply);
  });

  // Declared access for every route; documentation routes follow `publicDocs`.
  app.addHook('onRoute', (route) => {
    const isDocs = route.url === '/openapi.json' || route.url.startsWith('/docs');
    const config = (route.config ?? {}) as { access?: Access };
    if (isDocs) {
      route.config = { ...config, access: options.publicDocs ? 'public' : 'read' };
      route.schema = { ...(route.schema ?? {}), hide: true };
    } else if (!config.access) {
      throw new Error(`route ${route.method} ${route.url} declares no access level`);
    }
    const access = (route.config as { access: Access }).access;
    if (!isDocs && route.schema) {
      const codes = access === 'public' ? PUBLIC_ERRORS : COMMON_ERRORS;
      const response = Object.fromEntries(
        Object.entries((route.schema.response as Record<string, unknown>) ?? {}).map(([code, schema]) => [
          code,
          simplifySchema(schema),
        ]),
      );
      for (const code of codes) response[code] ??= problemResponse(code);
      route.schema = {
        ...route.schema,
        response,
        ...(access === 'public' ? { security: [] } : {}),
      };
    }
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') app.routeTable.push({ method, url: route.url, access });
    }
  });

  // Authentication and authorisation. A client address that keeps presenting keys that do not
  // verify is answered 429 before its next key is looked up: random keys cost a lookup each
  // (a request without any key costs nothing and is always a 401).
  const unauthenticated = failureLimiter(config.api.unauthenticatedPerMinute);
  app.addHook('onRequest', async (request, reply) => {
    const access: Access = request.routeOptions.config.access ?? 'read';
    if (access === 'public') return;
    const retryIn = request.headers.authorization ? unauthenticated.blockedFor(request.ip) : 0;
    if (retryIn > 0) {
      throw new HttpProblem(
        429,
        'rate-limited',
        `too many requests without a valid API key from this address; retry in ${retryIn} s`,
        { headers: { 'retry-after': String(retryIn) } },
      );
    }
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const principal = token ? await ctx.keys.verify(token) : undefined;
    if (!principal) {
      if (token) unauthenticated.fail(request.ip);
      reply.header('www-authenticate', 'Bearer realm="gatewatch"');
      throw new HttpProblem(
        401,
        'unauthenticated',
        token
          ? 'the API key is unknown, revoked or malformed'
          : 'send an API key: Authorization: Bearer gw_<id>_<secret>',
      );
    }
    request.principal = principal;
    if (!ACCESS_ROLES[access].includes(principal.role)) {
      throw new HttpProblem(
        403,
        'forbidden',
        `role ${principal.role} may not ${request.method} ${request.routeOptions.url}; needs one of: ${ACCESS_ROLES[access].join(', ')}`,
      );
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: config.api.rateLimitPerMinute,
    timeWindow: 60_000,
    // Shared across API processes through Redis (counts batched, see rate-limit-store.ts); in
    // memory in the embedded (one-process) mode.
    ...(redis
      ? { store: sharedRateLimitStore({ redis, nameSpace: `${config.redis.prefix}:api-rate:` }) }
      : {}),
    keyGenerator: (request) => (request.principal ? `key:${request.principal.keyId}` : `ip:${request.ip}`),
    skipOnError: false,
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gatewatch API',
        version: API_VERSION,
        description:
          'Incidents, detection rules, events, ingest administration and operations. Every endpoint except ' +
          '/health/live needs `Authorization: Bearer <api key>`; errors are RFC 9457 problem details.\n\n' +
          '**Conventions.** A list answers `{ "items": [...] }`; a paged list adds `next_cursor` (null on the ' +
          'last page), passed back as `cursor` for the next page. The page size is `limit` on every endpoint ' +
          '(the older name `size` is answered with a 400 naming `limit`). A request with an unknown ' +
          'parameter or field, or a value outside an enumeration, is answered with a 400 whose `errors` name ' +
          'each failing field once, with the allowed values.',
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'gw_<id>_<secret>' } },
      },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'incidents' },
        { name: 'rules' },
        { name: 'events' },
        { name: 'entities' },
        { name: 'ingest' },
        { name: 'admin' },
        { name: 'operations' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes(ctx));
  await app.register(incidentRoutes(ctx), { prefix: '/api/v1' });
  await app.register(coverageRoutes(ctx), { prefix: '/api/v1' });
  await app.register(ruleRoutes(ctx), { prefix: '/api/v1' });
  await app.register(eventRoutes(ctx), { prefix: '/api/v1' });
  await app.register(adminRoutes(ctx), { prefix: '/api/v1' });
  await app.register(operationsRoutes(ctx, options.operations), { prefix: '/api/v1' });
  await app.register(inventoryPlugin, { ...inventory, prefix: '/api/v1' });
  await app.register(sessionRoutes(), { prefix: '/api/v1' });
  await app.register(exceptionRoutes(ctx), { prefix: '/api/v1' });
  await app.register(entityRoutes(ctx), { prefix: '/api/v1' });
  await app.register(eventFieldRoutes(), { prefix: '/api/v1' });
  await app.register(incidentTimelineRoutes(ctx), { prefix: '/api/v1' });
  await app.register(ruleInsightRoutes(ctx), { prefix: '/api/v1' });
  await app.register(ingestQueueRoutes(ctx), { prefix: '/api/v1' });
  // The analyst console (console/): static files at /, talking to the routes above.
  await app.register(consolePlugin);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}
