/**
 * `gatewatch serve` — the REST API.
 *
 * The detection, event-search and ingest-admin ports come from `portFactory`; until the
 * detection engine and ingest runtime provide theirs, the in-process implementations of
 * api/testing/ports.ts are used (filter rules only for test/preview; events searched in
 * Elasticsearch; ingest sources and dead letters empty).
 */
import type { Client } from '@elastic/elasticsearch';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { buildApp, installApiIndices } from '../../api/app.ts';
import type { ApiPorts } from '../../api/ports.ts';
import {
  ElasticsearchEventSearch,
  InMemoryIngestAdmin,
  InProcessDetection,
} from '../../api/testing/ports.ts';
import { loadConfig } from '../../core/config/load.ts';
import type { GatewatchConfig } from '../../core/config/schema.ts';
import { createEsClient } from '../../core/store/elasticsearch.ts';
import {
  ElasticsearchIncidentRepository,
  installIncidentIndex,
} from '../../detections/incidents/repository.ts';

export type PortFactory = (config: GatewatchConfig, es: Client, redis: Redis) => Promise<ApiPorts>;

export const defaultPorts: PortFactory = async (config, es) => {
  const prefix = config.elasticsearch.indexPrefix;
  await installIncidentIndex(es, prefix);
  return {
    incidents: new ElasticsearchIncidentRepository(es, prefix),
    detection: new InProcessDetection(es, prefix),
    events: new ElasticsearchEventSearch(es, prefix),
    ingest: new InMemoryIngestAdmin(),
  };
};

/** Replace to wire the real detection engine / ingest runtime ports. */
export const serveOptions: { portFactory: PortFactory } = { portFactory: defaultPorts };

export interface StartedServer {
  url: string;
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
  await redis.connect();
  const ports = await serveOptions.portFactory(config, es, redis);
  const app = await buildApp({
    config,
    es,
    redis,
    ports,
    publicDocs: options.publicDocs ?? false,
    logger: options.logger === false ? false : { level: config.logLevel },
  });
  await installApiIndices(app);
  const url = await app.listen({ host: config.api.host, port: config.api.port });
  return {
    url,
    async close() {
      await app.close();
      redis.disconnect();
      await es.close();
    },
  };
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('Run the REST API (incidents, rules, events, ingest administration, health, metrics).')
    .option('--host <host>', 'listen address (api.host)')
    .option('--port <port>', 'listen port (api.port)')
    .option('--public-docs', 'serve /docs and /openapi.json without an API key')
    .action(async (opts: { host?: string; port?: string; publicDocs?: boolean }) => {
      const config = loadConfig({ file: program.opts().config });
      if (opts.host) config.api.host = opts.host;
      if (opts.port) config.api.port = Number(opts.port);
      const server = await startServer(config, { publicDocs: opts.publicDocs ?? false });
      console.error(`gatewatch API listening on ${server.url} (docs at ${server.url}/docs)`);
      let closing = false;
      const stop = async () => {
        if (closing) return;
        closing = true;
        await server.close();
        process.exit(0);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
