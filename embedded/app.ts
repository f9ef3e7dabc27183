/**
 * The REST API over the embedded SQLite file (zero-server mode): the same routes as the
 * distributed mode, with keys, audit, rules, inventory, incidents, events, detection and
 * ingest administration in the file, rate limiting in memory and readiness checking the file.
 */
import { existsSync } from 'node:fs';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildApp } from '../api/app.ts';
import type { ApiPorts } from '../api/ports.ts';
import type { ReadinessCheck } from '../api/routes/health.ts';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { diskReaders } from '../parser/index.ts';
import {
  EmbeddedDetectionPort,
  EmbeddedEventSearchPort,
  EmbeddedIngestAdmin,
  loadEmbeddedRuleSet,
} from './api-ports.ts';
import {
  installApiSchema,
  KvInventoryStore,
  KvSpecStore,
  SqliteAuditLog,
  SqliteKeyStore,
  SqliteRuleStore,
} from './api-stores.ts';
import { SqliteExceptionStore } from './exceptions.ts';
import { SqliteIncidentRepository } from './incidents.ts';
import { lastEmbeddedRetention } from './retention.ts';
import type { EmbeddedStore } from './store.ts';

export interface EmbeddedAppOptions {
  config: GatewatchConfig;
  store: EmbeddedStore;
  /** The file's path, for the readiness detail and check (absent: in memory). */
  path?: string;
  logger?: FastifyServerOptions['logger'];
  publicDocs?: boolean;
  now?: () => number;
}

/** Readiness: the file answers a query (and still exists on disk). */
export function sqliteReadiness(store: EmbeddedStore, path?: string): Record<string, ReadinessCheck> {
  return {
    sqlite: async () => {
      if (path && path !== ':memory:' && !existsSync(path)) throw new Error(`${path} no longer exists`);
      const row = store.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number };
      return `${Number(row.n)} events${path ? ` in ${path}` : ''}`;
    },
  };
}

export function embeddedPorts(config: GatewatchConfig, store: EmbeddedStore, now?: () => number): ApiPorts {
  const rules = new SqliteRuleStore(store);
  return {
    incidents: new SqliteIncidentRepository(store),
    detection: new EmbeddedDetectionPort({
      store,
      loadRules: async () => (await loadEmbeddedRuleSet(config, rules)).rules,
      maxGroups: config.detections.maxGroups,
      foldWindowMs: durationMs(config.detections.foldWindow),
      ...(now ? { now } : {}),
    }),
    events: new EmbeddedEventSearchPort(store),
    ingest: new EmbeddedIngestAdmin({ store, config, ...(now ? { now } : {}) }),
    ruleReaders: diskReaders(),
  };
}

export async function buildEmbeddedApp(options: EmbeddedAppOptions): Promise<FastifyInstance> {
  const { config, store } = options;
  // A replay may write to the same file meanwhile: wait for its transaction instead of failing.
  store.db.exec('PRAGMA busy_timeout = 5000');
  installApiSchema(store);
  return buildApp({
    config,
    ports: embeddedPorts(config, store, options.now),
    keys: new SqliteKeyStore(store),
    rules: new SqliteRuleStore(store),
    audit: new SqliteAuditLog(store),
    exceptions: new SqliteExceptionStore(store),
    inventory: { store: new KvInventoryStore(store), specs: new KvSpecStore(store) },
    readiness: sqliteReadiness(store, options.path),
    operations: {
      lastRun: async () => {
        const r = lastEmbeddedRetention(store);
        return r
          ? {
              started_at: r.started_at,
              finished_at: r.finished_at,
              outcome: r.outcome,
              deleted_indices: r.deleted_indices,
              deleted_documents: r.deleted_documents,
              errors: r.errors,
            }
          : null;
      },
    },
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
    publicDocs: options.publicDocs ?? false,
  });
}
