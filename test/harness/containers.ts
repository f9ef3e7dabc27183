/**
 * Testcontainers path: used only when a Docker engine answers. Detection is quick and
 * bounded, so machines without Docker move straight on to local servers.
 */
import { existsSync } from 'node:fs';
import { ELASTICSEARCH_VERSION } from './elasticsearch.ts';

export interface ContainerServers {
  redisUrl: string;
  elasticsearchUrl: string;
  redisVersion: string;
  stop(): Promise<void>;
}

/** True when a Docker (or compatible) engine answers within a few seconds. */
export async function dockerEngineAnswers(): Promise<boolean> {
  if (process.env.GATEWATCH_NO_DOCKER === '1') return false;
  const socket = '/var/run/docker.sock';
  if (!process.env.DOCKER_HOST && !existsSync(socket)) return false;
  const { getContainerRuntimeClient } = await import('testcontainers');
  const probe = getContainerRuntimeClient().then(
    () => true,
    () => false,
  );
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 8_000).unref());
  return Promise.race([probe, timeout]);
}

export async function startContainers(): Promise<ContainerServers> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const redis = await new GenericContainer('redis:7.4')
    .withCommand(['redis-server', '--appendonly', 'yes', '--maxmemory-policy', 'noeviction'])
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
    .start();
  const es = await new GenericContainer(
    `docker.elastic.co/elasticsearch/elasticsearch:${ELASTICSEARCH_VERSION}`,
  )
    .withEnvironment({
      'discovery.type': 'single-node',
      'xpack.security.enabled': 'false',
      'cluster.routing.allocation.disk.threshold_enabled': 'false',
      ES_JAVA_OPTS: '-Xms512m -Xmx512m',
    })
    .withExposedPorts(9200)
    .withWaitStrategy(Wait.forHttp('/_cluster/health?wait_for_status=yellow', 9200).forStatusCode(200))
    .withStartupTimeout(180_000)
    .start();
  const { stdout } = await redis.exec(['redis-server', '--version']);
  return {
    redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
    elasticsearchUrl: `http://${es.getHost()}:${es.getMappedPort(9200)}`,
    redisVersion: /v=([0-9.]+)/.exec(stdout)?.[1] ?? 'unknown',
    async stop() {
      await Promise.all([redis.stop(), es.stop()]);
    },
  };
}
