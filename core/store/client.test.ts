/**
 * The Elasticsearch client from the configuration: several nodes, a CA file. (That a request goes
 * to another node when one is gone is tested on a real cluster: operations/cluster.int.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../config/load.ts';
import { createEsClient, nodeUrls } from './elasticsearch.ts';

describe('createEsClient', () => {
  it('takes several nodes from elasticsearch.url (ELASTICSEARCH_URL)', async () => {
    const config = loadConfig({
      env: { ELASTICSEARCH_URL: 'http://es-1:9200, http://es-2:9200,http://es-3:9200' },
    });
    expect(nodeUrls(config.elasticsearch.url)).toEqual([
      'http://es-1:9200',
      'http://es-2:9200',
      'http://es-3:9200',
    ]);
    const client = createEsClient(config.elasticsearch);
    expect(client.connectionPool.connections.map((c) => c.url.host)).toEqual([
      'es-1:9200',
      'es-2:9200',
      'es-3:9200',
    ]);
    await client.close();
  });

  it('a CA file that cannot be read is one line naming the key', () => {
    const config = loadConfig({ env: { GATEWATCH_ELASTICSEARCH__CA_FILE: '/nonexistent/ca.pem' } });
    expect(() => createEsClient(config.elasticsearch)).toThrow(ConfigError);
    expect(() => createEsClient(config.elasticsearch)).toThrow(
      /^config: elasticsearch\.caFile: cannot read \/nonexistent\/ca\.pem: ENOENT/,
    );
  });
});
