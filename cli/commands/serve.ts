/**
 * `gatewatch serve` — the REST API, with its ports wired to the real engine: the in-process
 * evaluator for rule tests, the Elasticsearch executor for previews and runs, the rule
 * language's compiler for event search, and the ingest runtime's dead letters and counters.
 *
 * `gatewatch serve --embedded [--db <file>]` — the same API over the embedded SQLite file a
 * replay fills (no Redis, no Elasticsearch): embedded/app.ts.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { buildApp, installApiIndices } from '../../api/app.ts';
import { type KeyStore, ROLES, type Role } from '../../api/auth/keys.ts';
import type { ApiPorts } from '../../api/ports.ts';
import { durationMs } from '../../core/config/load.ts';
import type { GatewatchConfig } from '../../core/config/schema.ts';
import { createEsClient } from '../../core/store/elasticsearch.ts';
import { ElasticsearchEventSearchPort, EngineDetectionPort } from '../../detections/api-adapters.ts';
import {
  ElasticsearchIncidentRepository,
  installIncidentIndex,
} from '../../detections/incidents/repository.ts';
import { loadRuleSet } from '../../detections/rule-set.ts';
import { elasticsearchExecutor } from '../../detections/runtime.ts';
import { DetectionScheduler } from '../../detections/scheduler/scheduler.ts';
import { buildEmbeddedApp } from '../../embedded/app.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { IngestAdmin } from '../../ingest/admin.ts';
import { deploymentFingerprintSecret } from '../../ingest/fingerprint-secret.ts';
import { IngestProducer } from '../../ingest/pipeline/producer.ts';
import { createScrubber } from '../../ingest/transforms/scrub.ts';
import { startOperations } from '../../operations/process.ts';
import { exposeLifecycleMetrics, lastLifecycleRun } from '../../operations/runner.ts';
import type { StatusRule } from '../../operations/status.ts';
import { diskReaders } from '../../parser/index.ts';
import { configOf } from '../config.ts';
import { EXIT, UserError } from '../errors.ts';

export type PortFactory = (config: GatewatchConfig, es: Client, redis: Redis) => Promise<ApiPorts>;

export const defaultPorts: PortFactory = async (config, es, redis) => {
  const prefix = config.elasticsearch.indexPrefix;
  await installIncidentIndex(es, prefix);
  const { rules } = await loadRuleSet(config, es);
  // A scheduler without a worker: "run now" executes here, under the same per-rule lease the
  // detection workers take, so it never overlaps a scheduled run.
  const scheduler = new DetectionScheduler({
    es,
    redis,
    redisUrl: config.redis.url,
    prefix,
    queuePrefix: config.redis.prefix,
    rules,
    execute: elasticsearchExecutor(es, prefix, config.detections.maxGroups),
    maxCatchUpMs: durationMs(config.detections.maxCatchUp),
    leaseMs: durationMs(config.detections.leaseTime),
  });
  await scheduler.init();
  // Dead letters replayed through the API are queued like received records: scrubbed first.
  const fingerprintSecret = await deploymentFingerprintSecret(es, config);
  const producer = new IngestProducer({
    producer: redis,
    queuePrefix: config.redis.prefix,
    highWaterMark: config.ingest.highWaterMark,
    batchSize: config.ingest.batchSize,
    scrub: createScrubber({ fingerprintSecret }),
    maxQueuedBytes: config.ingest.maxQueuedBytes,
    maxRedisMemory: config.ingest.maxRedisMemory,
  });
  return {
    incidents: new ElasticsearchIncidentRepository(es, prefix),
    detection: new EngineDetectionPort({
      es,
      prefix,
      scheduler,
      maxGroups: config.detections.maxGroups,
      foldWindowMs: durationMs(config.detections.foldWindow),
      reloadRules: async () => scheduler.setRules((await loadRuleSet(config, es)).rules),
    }),
    events: new ElasticsearchEventSearchPort(es, prefix),
    ingest: new IngestAdmin({
      es,
      redis,
      prefix,
      queuePrefix: config.redis.prefix,
      sources: config.ingest.sources,
      producer,
    }),
    ruleReaders: diskReaders(),
  };
};

/** Replace to wire the real detection engine / ingest runtime ports. */
export const serveOptions: { portFactory: PortFactory } = { portFactory: defaultPorts };

export interface StartedServer {
  url: string;
  /** The API's key store (for --console-key). */
  keys: KeyStore;
  close(): Promise<void>;
}

export async function startServer(
  config: GatewatchConfig,
  options: { publicDocs?: boolean; logger?: boolean } = {},
): Promise<StartedServer> {
  const es = createEsClient(config.elasticsearch);
  const redis = new Redis(config.redis.url, {
    maxRetriesPerRequest: 2,
    enableOfflineQueue: false,
    lazyConnect: true,
  });
  let connectError: Error | undefined;
  const onError = (err: Error) => {
    connectError ??= err;
  };
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new UserError(
      `cannot reach Redis at ${config.redis.url} (${(connectError ?? (err as Error)).message}): start it, or point redis.url / REDIS_URL at it; for the embedded store, use serve --embedded`,
      EXIT.unavailable,
    );
  }
  redis.off('error', onError);
  const ports = await serveOptions.portFactory(config, es, redis);
  const operations = await startOperations({ es, redis, config });
  exposeLifecycleMetrics(redis, config.redis.prefix);
  let rulesRead: { at: number; rules: Promise<StatusRule[]> } | undefined;
  const app = await buildApp({
    config,
    es,
    redis,
    ports,
    publicDocs: options.publicDocs ?? false,
    logger: options.logger === false ? false : { level: config.logLevel },
    operations: {
      watch: operations.watch,
      // The enabled rules (files and API), re-read at most once a minute.
      rules: () => {
        if (!rulesRead || Date.now() - rulesRead.at > 60_000) {
          const rules = loadRuleSet(config, es).then((set) =>
            set.rules
              .filter((r) => r.enabled)
              .map((r) => ({
                id: r.id,
                intervalMs: r.schedule.intervalMs,
                latenessMs: r.schedule.latenessMs,
              })),
          );
          rules.catch(() => {
            rulesRead = undefined;
          });
          rulesRead = { at: Date.now(), rules };
        }
        return rulesRead.rules;
      },
      lastRun: async () => {
        const r = await lastLifecycleRun(redis, config.redis.prefix);
        return r
          ? {
              started_at: r.started_at,
              finished_at: r.finished_at,
              outcome: r.outcome,
              deleted_indices: r.deleted_indices,
              deleted_documents: r.deleted_documents as Record<string, number>,
              errors: r.errors,
            }
          : null;
      },
    },
  });
  await installApiIndices(app);
  const url = await app.listen({ host: config.api.host, port: config.api.port });
  return {
    url,
    keys: app.gatewatch.keys,
    async close() {
      await app.close();
      await operations.close();
      redis.disconnect();
      await es.close();
    },
  };
}

/** The API over the embedded SQLite file (default: `embedded.path`). */
export async function startEmbeddedServer(
  config: GatewatchConfig,
  options: { db?: string; publicDocs?: boolean; logger?: boolean } = {},
): Promise<StartedServer & { path: string }> {
  const path = options.db ?? config.embedded.path;
  const store = new EmbeddedStore(path);
  try {
    const app = await buildEmbeddedApp({
      config,
      store,
      path,
      publicDocs: options.publicDocs ?? false,
      logger: options.logger === false ? false : { level: config.logLevel },
    });
    const url = await app.listen({ host: config.api.host, port: config.api.port });
    return {
      url,
      keys: app.gatewatch.keys,
      path,
      async close() {
        await app.close();
        store.close();
      },
    };
  } catch (err) {
    store.close();
    throw err;
  }
}

/**
 * What `serve` prints once listening: where, how requests authenticate, and a docs link that
 * works — /docs needs an API key unless --public-docs, and a browser cannot send one.
 */
export function listeningMessage(
  server: StartedServer & { path?: string },
  opts: { publicDocs?: boolean; embedded?: boolean; db?: string },
): string {
  const where = server.path !== undefined ? ` over ${server.path}` : '';
  const store = opts.embedded ? ` --embedded${opts.db ? ` --db ${opts.db}` : ''}` : '';
  const lines = [
    `gatewatch API listening on ${server.url}${where}`,
    `  requests need an API key (Authorization: Bearer <key>); create one with: npx gatewatch keys create${store} --role analyst`,
  ];
  lines.push(
    `  console: ${server.url.replace('://0.0.0.0:', '://127.0.0.1:')}/ (sign in with a key; --console-key analyst opens it signed in)`,
  );
  if (opts.publicDocs) lines.push(`  API docs: ${server.url}/docs (OpenAPI: ${server.url}/openapi.json)`);
  else
    lines.push(
      `  API docs: ${server.url}/docs needs a key too, which a browser does not send: restart with --public-docs to browse them, or read the OpenAPI document with: curl -H "Authorization: Bearer <key>" ${server.url}/openapi.json`,
    );
  return lines.join('\n');
}

/** `serve`: the REST API over Elasticsearch and Redis, or `--embedded` over the SQLite file. */
export async function serve(
  opts: {
    host?: string;
    port?: string;
    publicDocs?: boolean;
    embedded?: boolean;
    db?: string;
    consoleKey?: string;
  },
  cmd: Command,
): Promise<void> {
  const consoleRoles = ROLES.filter((r) => r !== 'ingest');
  if (opts.consoleKey !== undefined && !(consoleRoles as string[]).includes(opts.consoleKey))
    throw new UserError(
      `serve: --console-key must be one of ${consoleRoles.join(', ')}, not "${opts.consoleKey}"`,
    );
  const config = configOf(cmd);
  if (opts.host) config.api.host = opts.host;
  if (opts.port !== undefined) {
    const port = Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UserError(`serve: --port must be a port number (0-65535), not "${opts.port}"`);
    config.api.port = port;
  }
  if (opts.db && !opts.embedded)
    throw new UserError('serve: --db needs --embedded (the API over that SQLite file)');
  const server = opts.embedded
    ? await startEmbeddedServer(config, {
        ...(opts.db ? { db: opts.db } : {}),
        publicDocs: opts.publicDocs ?? false,
      })
    : await startServer(config, { publicDocs: opts.publicDocs ?? false });
  console.error(listeningMessage(server, opts));
  if (opts.consoleKey) {
    // The key travels in the URL fragment, which browsers never send to the server; the
    // console keeps it in the tab's session storage and removes it from the address bar.
    const { token, key } = await server.keys.create(opts.consoleKey as Role, 'console', 'gatewatch serve');
    const revoke = `gatewatch keys revoke ${key.id}${'path' in server ? ` --embedded --db ${server.path}` : ''}`;
    console.log(`Open the console (${key.role} key ${key.id}; revoke it with: ${revoke}):`);
    console.log(`  ${server.url.replace('://0.0.0.0:', '://127.0.0.1:')}/#key=${token}`);
  }
  let closing = false;
  const stop = async () => {
    if (closing) return;
    closing = true;
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
