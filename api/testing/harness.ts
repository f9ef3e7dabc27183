/**
 * Builds the API for an integration test on the real Elasticsearch and Redis of the test
 * harness: unique index prefix, one key per role, real ports from ./ports.ts.
 */
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { loadConfig } from '../../core/config/load.ts';
import type { GatewatchConfig } from '../../core/config/schema.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { bulkWrite, indexNames } from '../../core/store/elasticsearch.ts';
import {
  ElasticsearchIncidentRepository,
  installIncidentIndex,
} from '../../detections/incidents/repository.ts';
import { type IntegrationContext, integrationContext } from '../../test/harness/context.ts';
import { buildApp, installApiIndices } from '../app.ts';
import type { Role } from '../auth/keys.ts';
import type { ApiPorts } from '../ports.ts';

export { makeIncident } from './fixtures.ts';

import { durationMs } from '../../core/config/load.ts';
import { connectRedis } from '../../core/queue/bullmq.ts';
import { ElasticsearchEventSearchPort, EngineDetectionPort } from '../../detections/api-adapters.ts';
import { loadRuleSet } from '../../detections/rule-set.ts';
import { elasticsearchExecutor } from '../../detections/runtime.ts';
import { DetectionScheduler } from '../../detections/scheduler/scheduler.ts';
import { IngestAdmin } from '../../ingest/admin.ts';
import { IngestProducer } from '../../ingest/pipeline/producer.ts';
import { createScrubber } from '../../ingest/transforms/scrub.ts';

/** The engine's detection port, remembering which rules the API reported as changed. */
export class RecordingDetectionPort extends EngineDetectionPort {
  readonly changes: string[] = [];
  override async rulesChanged(ruleId: string): Promise<void> {
    this.changes.push(ruleId);
    await super.rulesChanged();
  }
}

export interface TestApp {
  app: FastifyInstance;
  it: IntegrationContext;
  config: GatewatchConfig;
  redis: Redis;
  ports: ApiPorts & { detection: RecordingDetectionPort; ingest: IngestAdmin };
  /** The ingest queue the API's dead-letter replay writes to. */
  producer: IngestProducer;
  repo: ElasticsearchIncidentRepository;
  tokens: Record<Role, string>;
  auth(role: Role): { authorization: string };
  close(): Promise<void>;
}

export function testConfig(
  it: { elasticsearchUrl: string; redisUrl: string; prefix: string },
  api: Partial<GatewatchConfig['api']> = {},
) {
  return loadConfig({
    env: {},
    overrides: {
      elasticsearch: { url: it.elasticsearchUrl, indexPrefix: it.prefix },
      redis: { url: it.redisUrl, prefix: it.prefix, requireNoEviction: false },
      api: { rateLimitPerMinute: 100_000, ...api },
      ingest: { sources: [{ name: 'edge-nginx', type: 'file', paths: [] }] },
    },
  });
}

export async function startTestApp(
  name: string,
  options: { api?: Partial<GatewatchConfig['api']>; publicDocs?: boolean } = {},
): Promise<TestApp> {
  const it = integrationContext(name);
  const config = testConfig(it, options.api);
  const redis = new Redis(it.redisUrl, { maxRetriesPerRequest: 2 });
  const repo = new ElasticsearchIncidentRepository(it.es, it.prefix);
  await installIncidentIndex(it.es, it.prefix);
  const scheduler = new DetectionScheduler({
    es: it.es,
    redis,
    redisUrl: it.redisUrl,
    prefix: it.prefix,
    queuePrefix: it.prefix,
    rules: (await loadRuleSet(config, it.es)).rules,
    execute: elasticsearchExecutor(it.es, it.prefix, config.detections.maxGroups),
    maxCatchUpMs: durationMs(config.detections.maxCatchUp),
  });
  await scheduler.init();
  const producerConnection = await connectRedis(it.redisUrl, 'producer');
  const producer = new IngestProducer({
    producer: producerConnection,
    queuePrefix: it.prefix,
    highWaterMark: config.ingest.highWaterMark,
    batchSize: config.ingest.batchSize,
    // records queued through the API (dead-letter replays) are scrubbed like received ones
    scrub: createScrubber(),
  });
  const ports = {
    incidents: repo,
    detection: new RecordingDetectionPort({
      es: it.es,
      prefix: it.prefix,
      scheduler,
      reloadRules: async () => scheduler.setRules((await loadRuleSet(config, it.es)).rules),
    }),
    events: new ElasticsearchEventSearchPort(it.es, it.prefix),
    ingest: new IngestAdmin({
      es: it.es,
      redis,
      prefix: it.prefix,
      queuePrefix: it.prefix,
      sources: config.ingest.sources,
      producer,
    }),
  };
  const app = await buildApp({ config, es: it.es, redis, ports, publicDocs: options.publicDocs ?? false });
  await installApiIndices(app);
  const tokens = {} as Record<Role, string>;
  for (const role of ['viewer', 'analyst', 'admin', 'ingest'] as const) {
    tokens[role] = (await app.gatewatch.keys.create(role, `test-${role}`, 'test')).token;
  }
  await app.ready();
  return {
    app,
    it,
    config,
    redis,
    ports,
    producer,
    repo,
    tokens,
    auth: (role) => ({ authorization: `Bearer ${tokens[role]}` }),
    async close() {
      await app.close();
      await scheduler.close();
      await producer.close();
      producerConnection.disconnect();
      const keys = await redis.keys(`${it.prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await it.cleanup();
    },
  };
}

export async function storeIncidents(test: { it: IntegrationContext }, incidents: Incident[]): Promise<void> {
  const index = indexNames(test.it.prefix).incidents;
  for (let i = 0; i < incidents.length; i += 5000) {
    const r = await bulkWrite(
      test.it.es,
      incidents.slice(i, i + 5000).map((doc) => ({ op: 'index' as const, index, id: doc.id, doc })),
    );
    if (r.rejected || r.retryable)
      throw new Error(`storing incidents failed: ${JSON.stringify(r.items.find((x) => !x.ok))}`);
  }
  await test.it.es.indices.refresh({ index });
}
