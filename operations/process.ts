/**
 * What every long-running Gatewatch process adds for operations: a watch on Elasticsearch's
 * health and disks (push-back, pausing), and in worker processes the lifecycle runner. The
 * runtimes (ingest/runtime.ts, detections/runtime.ts, the API) call this once.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import { durationMs } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { LifecycleRunner } from './runner.ts';
import { type StoreHealth, StoreHealthWatch } from './store-health.ts';

export interface ProcessOperations {
  watch: StoreHealthWatch;
  lifecycle?: LifecycleRunner;
  close(): Promise<void>;
}

export interface StartOperationsOptions {
  es: Client;
  redis: Redis;
  config: GatewatchConfig;
  /** Run the lifecycle from this process (workers). */
  lifecycle?: boolean;
  /** Called when push-back or the write block starts or ends. */
  onChange?: (health: StoreHealth) => void;
  log?: (line: string) => void;
}

export async function startOperations(options: StartOperationsOptions): Promise<ProcessOperations> {
  const { es, redis, config } = options;
  const watch = new StoreHealthWatch({
    es,
    prefix: config.elasticsearch.indexPrefix,
    intervalMs: durationMs(config.lifecycle.diskCheckInterval),
    ...(options.log ? { log: options.log } : {}),
  });
  if (options.onChange) watch.onChange(options.onChange);
  await watch.start();
  if (options.onChange && (watch.pushBack() || watch.writesBlocked())) options.onChange(watch.current()!);
  let lifecycle: LifecycleRunner | undefined;
  if (options.lifecycle && config.lifecycle.enabled) {
    lifecycle = new LifecycleRunner({ es, redis, config, ...(options.log ? { log: options.log } : {}) });
    lifecycle.start();
  }
  return {
    watch,
    ...(lifecycle ? { lifecycle } : {}),
    async close() {
      watch.stop();
      await lifecycle?.stop();
    },
  };
}
