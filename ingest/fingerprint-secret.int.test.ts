/**
 * Issue 18.6: the fingerprint secret has no public default. A distributed deployment without
 * one creates it on first start and keeps it in Elasticsearch, where every process finds it,
 * saying where; public example values are refused.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../core/config/load.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { integrationContext } from '../test/harness/context.ts';
import { deploymentFingerprintSecret, PUBLIC_EXAMPLE_SECRETS } from './fingerprint-secret.ts';
import { startIngest } from './runtime.ts';

const ctx = integrationContext('fingerprint-secret');
afterAll(() => ctx.cleanup());

const configFor = (indexPrefix: string, ingest: Record<string, unknown> = {}) =>
  loadConfig({
    env: {},
    overrides: {
      elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix },
      redis: { url: ctx.redisUrl, prefix: indexPrefix },
      ingest,
    },
  });

describe('the deployment fingerprint secret', () => {
  it('is created once, kept in Elasticsearch and found by every process (concurrent first starts agree)', async () => {
    const prefix = `${ctx.prefix}-a`;
    const config = configFor(prefix);
    expect(config.ingest.fingerprintSecret).toBeUndefined();
    const said: string[] = [];
    const secrets = await Promise.all(
      Array.from({ length: 5 }, () => deploymentFingerprintSecret(ctx.es, config, (l) => said.push(l))),
    );
    expect(new Set(secrets).size).toBe(1);
    const secret = secrets[0]!;
    expect(secret.length).toBeGreaterThanOrEqual(32);
    const settings = indexNames(prefix).settings;
    const doc = await ctx.es.get<{ secret: string }>({ index: settings, id: 'fingerprint-secret' });
    expect(doc._source?.secret).toBe(secret);
    // one process says it created it, the others where it is; none says the secret
    expect(said.filter((l) => /was created and is kept in Elasticsearch index/.test(l))).toHaveLength(1);
    for (const line of said) {
      expect(line).toContain(`Elasticsearch index ${settings}, document fingerprint-secret`);
      expect(line).not.toContain(secret);
    }
    // a later start, and a whole ingest runtime, use the same one
    expect(await deploymentFingerprintSecret(ctx.es, config, () => undefined)).toBe(secret);
    const runtime = await startIngest(config);
    try {
      expect(runtime.config.ingest.fingerprintSecret).toBe(secret);
    } finally {
      await runtime.close();
    }
  });

  it('waits for a settings index another process has just created, whose shard is not started yet', async () => {
    const prefix = `${ctx.prefix}-c`;
    const settings = indexNames(prefix).settings;
    // a shard that cannot start until the allocation filter is lifted: reads answer 503
    // no_shard_available_action_exception, as they do for the instant after another process
    // created the index
    await ctx.es.indices.create({
      index: settings,
      settings: {
        number_of_shards: 1,
        number_of_replicas: 0,
        'index.routing.allocation.require._name': 'no-such-node',
      },
      wait_for_active_shards: 0,
    });
    const pending = deploymentFingerprintSecret(ctx.es, configFor(prefix), () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await ctx.es.indices.putSettings({
      index: settings,
      settings: { 'index.routing.allocation.require._name': null },
    });
    const secret = await pending;
    expect(secret.length).toBeGreaterThanOrEqual(32);
    const doc = await ctx.es.get<{ secret: string }>({ index: settings, id: 'fingerprint-secret' });
    expect(doc._source?.secret).toBe(secret);
  });

  it('uses a configured secret without storing one', async () => {
    const prefix = `${ctx.prefix}-b`;
    const own = 'an-operator-secret-0123456789abcdef';
    expect(
      await deploymentFingerprintSecret(
        ctx.es,
        configFor(prefix, { fingerprintSecret: own }),
        () => undefined,
      ),
    ).toBe(own);
    expect(await ctx.es.indices.exists({ index: indexNames(prefix).settings })).toBe(false);
  });

  it('refuses the public example values with one line saying what to do', async () => {
    for (const example of PUBLIC_EXAMPLE_SECRETS) {
      const attempt = deploymentFingerprintSecret(
        ctx.es,
        configFor(`${ctx.prefix}-c`, { fingerprintSecret: example }),
      );
      await expect(attempt).rejects.toThrow(ConfigError);
      await expect(attempt).rejects.toThrow(
        /^config: ingest\.fingerprintSecret: this is a public example value.*openssl rand -hex 32.*$/,
      );
    }
    expect(PUBLIC_EXAMPLE_SECRETS).toContain('gatewatch-dev-fingerprint-secret-change-me');
  });
});
