/**
 * Vitest global setup for the integration project: hands every test file a real Redis and a
 * real Elasticsearch.
 *
 *   1. REDIS_URL / ELASTICSEARCH_URL when set (each independently);
 *   2. else Testcontainers when a Docker engine answers;
 *   3. else local servers: Debian's redis-server, and Elasticsearch from the Maven Central
 *      integ-test-zip on the machine's JDK.
 *
 * A missing prerequisite ends the run at once with one line saying what to install.
 */
import type { TestProject } from 'vitest/node';
import { dockerEngineAnswers, startContainers } from './containers.ts';
import { ELASTICSEARCH_VERSION, type ElasticsearchNode, startElasticsearch } from './elasticsearch.ts';
import { MissingPrerequisiteError } from './processes.ts';
import { type RedisServer, startRedisServer } from './redis.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    elasticsearchUrl: string;
  }
}

async function describeServers(redisUrl: string, esUrl: string): Promise<string> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const info = await redis.info('server');
  const policy = ((await redis.config('GET', 'maxmemory-policy')) as string[])[1];
  redis.disconnect();
  const redisVersion = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
  const nodes = (await (await fetch(`${esUrl}/_nodes/_local`)).json()) as {
    nodes: Record<string, { version: string; jvm?: { version: string } }>;
  };
  const node = Object.values(nodes.nodes)[0];
  return `Elasticsearch ${node?.version} (JVM ${node?.jvm?.version}) at ${esUrl}; Redis ${redisVersion} (maxmemory-policy ${policy}) at ${redisUrl}`;
}

export default async function setup(project: TestProject) {
  const started: { stop(): Promise<void> }[] = [];
  let redisUrl = process.env.REDIS_URL;
  let esUrl = process.env.ELASTICSEARCH_URL;
  let how = 'from REDIS_URL / ELASTICSEARCH_URL';
  const startedAt = Date.now();

  try {
    if ((!redisUrl || !esUrl) && (await dockerEngineAnswers())) {
      const containers = await startContainers();
      started.push(containers);
      redisUrl ??= containers.redisUrl;
      esUrl ??= containers.elasticsearchUrl;
      how = 'Testcontainers';
    }
    if (!redisUrl) {
      const redis: RedisServer = await startRedisServer();
      started.push({ stop: () => redis.dispose() });
      redisUrl = redis.url;
      how = 'started locally';
    }
    if (!esUrl) {
      const es: ElasticsearchNode = await startElasticsearch();
      started.push({ stop: () => es.dispose() });
      esUrl = es.url;
      how = `started locally (integ-test-zip ${ELASTICSEARCH_VERSION} from Maven Central)`;
    }
  } catch (err) {
    await Promise.all(started.map((s) => s.stop().catch(() => undefined)));
    if (err instanceof MissingPrerequisiteError) {
      // One line, then stop the whole run: never a hang, never a silent skip.
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }

  // A run interrupted with Ctrl-C or killed by a CI timeout skips teardown: stop the servers
  // this run started anyway, so no Elasticsearch is left behind.
  const stopAll = () => Promise.all(started.map((s) => s.stop().catch(() => undefined)));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void stopAll().finally(() => process.exit(130));
    });
  }

  project.provide('redisUrl', redisUrl);
  project.provide('elasticsearchUrl', esUrl);
  console.log(
    `[gatewatch test harness] ${how} in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${await describeServers(redisUrl, esUrl)}`,
  );

  return async () => {
    await Promise.all(started.map((s) => s.stop()));
  };
}
