/**
 * The fingerprint secret: the HMAC key of API-key fingerprints, of the surrogates secrets are
 * scrubbed into and of event ids. It has no default. When `ingest.fingerprintSecret` is not
 * configured:
 *
 * - a distributed deployment creates one on first start and keeps it in Elasticsearch
 *   (`<prefix>-settings`, document `fingerprint-secret`), where every Gatewatch process of the
 *   deployment (receivers, workers, the API) finds it. Elasticsearch rather than Redis: the key
 *   must live exactly as long as the fingerprints it made, which are stored there (Redis is a
 *   queue that operators flush or replace), and it stays off Redis's disk, where queued
 *   surrogates carry fingerprints made with it;
 * - the embedded mode keeps one per database, in the SQLite file.
 *
 * Configured values must not be the public example values earlier versions shipped as defaults.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { ConfigError } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { ensureIndex, esErrors, indexNames } from '../core/store/elasticsearch.ts';

/** Values published as defaults and examples (config schema, docker-compose): never a deployment's key. */
export const PUBLIC_EXAMPLE_SECRETS: readonly string[] = [
  'gatewatch-dev-fingerprint-secret-change-me',
  'change-me-to-a-long-random-secret',
];

const DOC_ID = 'fingerprint-secret';

function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The configured secret, refused when it is a public example value. */
function configured(config: GatewatchConfig): string | undefined {
  const secret = config.ingest.fingerprintSecret;
  if (secret !== undefined && PUBLIC_EXAMPLE_SECRETS.includes(secret)) {
    throw new ConfigError(
      'config: ingest.fingerprintSecret: this is a public example value, so anyone can reverse fingerprints of short keys; ' +
        'set a long random secret (e.g. `openssl rand -hex 32`) or remove the key to have one created and kept in Elasticsearch',
    );
  }
  return secret;
}

/**
 * The deployment's fingerprint secret: the configured one, else the one kept in Elasticsearch,
 * created there on first start (concurrent first starts agree: the document is created once).
 * `say` is told where the secret comes from (never the secret): standard error by default, as
 * standard output may be a command's JSON.
 */
export async function deploymentFingerprintSecret(
  es: Client,
  config: GatewatchConfig,
  say: (line: string) => void = (line) => console.error(line),
): Promise<string> {
  const own = configured(config);
  if (own !== undefined) return own;
  const index = indexNames(config.elasticsearch.indexPrefix).settings;
  const where = `Elasticsearch index ${index}, document ${DOC_ID}`;
  const stored = await readStored(es, index);
  if (stored !== undefined) {
    say(
      `fingerprint secret: the deployment's own, kept in ${where} (set ingest.fingerprintSecret to use yours)`,
    );
    return stored;
  }
  await ensureIndex(es, index, {
    settings: { number_of_shards: 1, number_of_replicas: 0 },
    mappings: { dynamic: false, properties: { created_at: { type: 'date' } } },
  });
  try {
    await es.create({
      index,
      id: DOC_ID,
      document: { secret: newSecret(), created_at: new Date().toISOString() },
      refresh: 'wait_for',
    });
    say(
      `fingerprint secret: ingest.fingerprintSecret is not set, so one was created and is kept in ${where}, where every process of this deployment finds it (set ingest.fingerprintSecret to use yours)`,
    );
  } catch (err) {
    // another process created it first: use theirs
    if (!(err instanceof esErrors.ResponseError && err.statusCode === 409)) throw err;
  }
  const created = await readStored(es, index);
  if (created === undefined) throw new Error(`fingerprint secret: ${where} could not be read back`);
  return created;
}

async function readStored(es: Client, index: string): Promise<string | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      const doc = await es.get<{ secret?: unknown }>({ index, id: DOC_ID });
      const secret = doc._source?.secret;
      return typeof secret === 'string' && secret.length >= 16 ? secret : undefined;
    } catch (err) {
      if (err instanceof esErrors.ResponseError && err.statusCode === 404) return undefined;
      // Another process has just created the index and its shard is not started yet (concurrent
      // first starts): wait until it is, then read again.
      const unavailable = err instanceof esErrors.ResponseError && err.statusCode === 503;
      if (!unavailable || attempt >= 3) throw err;
      await es.cluster.health({ index, wait_for_status: 'yellow', timeout: '30s' });
    }
  }
}

/** Where the embedded mode keeps key/value settings (EmbeddedStore's kv table). */
export interface SettingsStore {
  getJson<T>(key: string): T | undefined;
  setJson(key: string, value: unknown): void;
}

/**
 * The embedded database's fingerprint secret: the configured one, else the one kept in the
 * SQLite file, created with the file. `created` is called when a new one was made.
 */
export function embeddedFingerprintSecret(
  store: SettingsStore,
  config: GatewatchConfig,
  created?: () => void,
): string {
  const own = config.ingest.fingerprintSecret;
  if (own !== undefined) return own;
  const kept = store.getJson<{ secret?: string }>(DOC_ID)?.secret;
  if (typeof kept === 'string' && kept.length >= 16) return kept;
  const secret = newSecret();
  store.setJson(DOC_ID, { secret, created_at: new Date().toISOString() });
  created?.();
  return secret;
}

/** The configuration with its fingerprint secret set (a copy). */
export function withFingerprintSecret(config: GatewatchConfig, secret: string): GatewatchConfig {
  return { ...config, ingest: { ...config.ingest, fingerprintSecret: secret } };
}
