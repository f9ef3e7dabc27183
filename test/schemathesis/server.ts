/**
 * Starts the API for the schemathesis run: on ELASTICSEARCH_URL / REDIS_URL when set, else on
 * an Elasticsearch and Redis of its own (the test harness's local servers). Creates an admin
 * key and prints one JSON line: {"url": ..., "token": ..., "prefix": ...}. Stops (and cleans
 * up its indices) on SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@elastic/elasticsearch';
import { ApiKeyStore } from '../../api/auth/keys.ts';
import { startServer } from '../../cli/commands/serve.ts';
import { loadConfig } from '../../core/config/load.ts';
import { startElasticsearch } from '../harness/elasticsearch.ts';
import { startRedisServer } from '../harness/redis.ts';

const stops: (() => Promise<void>)[] = [];
let esUrl = process.env.ELASTICSEARCH_URL;
let redisUrl = process.env.REDIS_URL;
if (!esUrl) {
  const es = await startElasticsearch();
  stops.push(() => es.dispose());
  esUrl = es.url;
}
if (!redisUrl) {
  const redis = await startRedisServer();
  stops.push(() => redis.dispose());
  redisUrl = redis.url;
}
const prefix = `gwt-schemathesis-${randomBytes(3).toString('hex')}`;
const config = loadConfig({
  env: {},
  overrides: {
    logLevel: 'warn',
    elasticsearch: { url: esUrl, indexPrefix: prefix },
    redis: { url: redisUrl, prefix, requireNoEviction: false },
    api: { host: '127.0.0.1', port: 0, rateLimitPerMinute: 1_000_000, unauthenticatedPerMinute: 1_000_000 },
  },
});
const server = await startServer(config, { logger: false });
const es = new Client({ node: esUrl });
const { token } = await new ApiKeyStore(es, prefix).create('admin', 'schemathesis', 'run.sh');
console.log(JSON.stringify({ url: server.url, token, prefix }));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.close();
  await es.indices
    .delete({ index: `${prefix}*`, ignore_unavailable: true, allow_no_indices: true })
    .catch(() => undefined);
  const templates = await es.indices
    .getIndexTemplate({ name: `${prefix}*` })
    .catch(() => ({ index_templates: [] }));
  for (const t of templates.index_templates)
    await es.indices.deleteIndexTemplate({ name: t.name }).catch(() => undefined);
  await es.close();
  for (const s of stops) await s().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
