/**
 * `gatewatch ingest worker|sources|dead-letters` — the distributed ingest processes.
 */

import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { GatewatchConfig } from '../../core/config/schema.ts';
import { EmbeddedIngestAdmin } from '../../embedded/api-ports.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { enrichmentWarnings } from '../../ingest/pipeline/normalize.ts';
import { sourceStatsKey, startIngest } from '../../ingest/runtime.ts';
import { listDeadLetters, markReplayed } from '../../ingest/sinks/dead-letters.ts';
import { FileSource } from '../../ingest/sources/file.ts';
import { startPullSources } from '../../ingest/sources/pull.ts';
import { RelpSource } from '../../ingest/sources/relp.ts';
import { Spool } from '../../ingest/sources/spool.ts';
import { SyslogSource } from '../../ingest/sources/syslog.ts';
import { configOf } from '../config.ts';
import { UserError } from '../errors.ts';

/**
 * The certificate and key shared by syslog TLS and RELP TLS, read once; undefined when neither
 * is on. loadConfig has already required both paths then (a ConfigError naming the key).
 */
function syslogTlsKeyPair(ingest: GatewatchConfig['ingest']): { cert: Buffer; key: Buffer } | undefined {
  if (ingest.syslogTlsPort === undefined && !ingest.relpTls) return undefined;
  if (ingest.syslogTlsCert === undefined || ingest.syslogTlsKey === undefined)
    throw new Error('ingest.syslogTlsCert and ingest.syslogTlsKey are required for syslog or RELP over TLS');
  return { cert: readFileSync(ingest.syslogTlsCert), key: readFileSync(ingest.syslogTlsKey) };
}

/** What `ingest sources` says when it has nothing to receive. */
export const NO_SOURCES = [
  'no ingest sources configured: nothing will be received. Add at least one under ingest.sources in the',
  'configuration file (--config or GATEWATCH_CONFIG), or as JSON in GATEWATCH_INGEST__SOURCES, e.g.',
  `  GATEWATCH_INGEST__SOURCES='[{"name":"gateway","type":"http","tokens":["<a random token of 16+ characters>"]},{"name":"syslog","type":"syslog"}]'`,
  '(type http: push endpoints on ingest.httpPort; syslog: UDP/TCP on ingest.syslogPort; file: tail paths).',
  "README.md, 'Running without Docker', has a complete configuration.",
].join('\n');

function onSignals(close: () => Promise<void>) {
  let closing = false;
  const handler = async () => {
    if (closing) return;
    closing = true;
    await close();
    process.exit(0);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** `ingest worker`: consume raw batches — parse, normalise, enrich, index into Elasticsearch. */
export async function worker(opts: { workers: string }, cmd: Command): Promise<void> {
  const config = configOf(cmd);
  const runtime = await startIngest(config, { workers: Number(opts.workers) });
  console.log(
    `ingest worker ready (pid ${process.pid}, ${opts.workers} worker(s), prefix ${config.redis.prefix})`,
  );
  for (const w of enrichmentWarnings(config)) console.warn(`warning: ${w}`);
  onSignals(() => runtime.close());
}

/** `ingest sources`: the configured push endpoints, syslog listeners, file tailers and pull sources. */
export async function sources(opts: { host?: string }, cmd: Command): Promise<void> {
  const config = configOf(cmd);
  if (opts.host) config.ingest.httpHost = opts.host;
  const runtime = await startIngest(config, { http: true });
  const stops: (() => Promise<void>)[] = [];
  for (const source of config.ingest.sources) {
    if (source.type === 'file') {
      const file = new FileSource({
        source,
        producer: runtime.producer,
        redis: runtime.redis,
        offsetsKey: `${config.redis.prefix}:${config.ingest.offsetsKey}:${source.name}`,
        onError: (err) => console.error(`file source ${source.name}: ${err.message}`),
      });
      file.start();
      stops.push(() => file.stop());
    }
  }
  const syslogSource = config.ingest.sources.find((s) => s.type === 'syslog');
  if (syslogSource) {
    const tls = syslogTlsKeyPair(config.ingest);
    const statsKey = sourceStatsKey(config.redis.prefix, syslogSource.name);
    const syslog = new SyslogSource({
      source: syslogSource,
      producer: runtime.producer,
      host: config.ingest.httpHost,
      port: config.ingest.syslogPort,
      spool: new Spool({
        dir: config.ingest.spoolDir,
        name: syslogSource.name,
        maxBytes: config.ingest.spoolMaxBytes,
        // spooled records are at rest on this disk: scrubbed as they would be in Redis
        scrub: (record) => runtime.producer.scrub(record),
      }),
      udpReceiveBuffer: config.ingest.syslogUdpReceiveBuffer,
      onError: (err) =>
        console.error(
          `syslog source ${syslogSource.name}: ${err.message} (records go to the spool in ${config.ingest.spoolDir} until the queue is back)`,
        ),
      onWarning: (message) => console.error(message),
      publish: async (c) => {
        await runtime.redis.hset(statsKey, {
          dropped_kernel: c.droppedKernel,
          dropped_high_water: c.droppedHighWater,
          spooled_bytes: c.spooledBytes,
          ...(c.lastWarning ? { last_warning: c.lastWarning } : {}),
        });
      },
      ...(config.ingest.syslogTlsPort !== undefined && tls
        ? { tls: { port: config.ingest.syslogTlsPort, options: tls } }
        : {}),
    });
    await syslog.start();
    console.log(
      `syslog listening on ${config.ingest.httpHost}: UDP/TCP ${syslog.tcpPort}${syslog.tlsPort !== undefined ? `, TLS ${syslog.tlsPort}` : ''}`,
    );
    stops.push(() => syslog.stop());
    if (config.ingest.relpPort !== undefined) {
      const relp = new RelpSource({
        source: syslogSource,
        producer: runtime.producer,
        host: config.ingest.httpHost,
        port: config.ingest.relpPort,
        ...(config.ingest.relpTls && tls ? { tls } : {}),
        onError: (err) => console.error(`relp source ${syslogSource.name}: ${err.message}`),
      });
      await relp.start();
      console.log(
        `RELP${config.ingest.relpTls ? ' over TLS' : ''} listening on ${config.ingest.httpHost}:${relp.port}`,
      );
      stops.push(() => relp.stop());
    }
  }
  const pull = await startPullSources({
    sources: config.ingest.sources,
    producer: runtime.producer,
    redis: runtime.redis,
    prefix: config.redis.prefix,
  });
  stops.push(() => pull.stop());
  if (config.ingest.sources.length === 0) console.error(NO_SOURCES);
  const address = runtime.http?.server.address();
  console.log(
    `ingest sources ready: HTTP ${JSON.stringify(address)}; ${config.ingest.sources.length} source(s)`,
  );
  onSignals(async () => {
    for (const stop of stops) await stop();
    await runtime.close();
  });
}

/** `ingest dead-letters list`: from Elasticsearch, or `--embedded` from a replay's SQLite file. */
export async function deadLettersList(
  opts: { source?: string; size: string; json?: boolean; embedded?: boolean; db?: string },
  cmd: Command,
): Promise<void> {
  const size = Number(opts.size);
  if (!Number.isInteger(size) || size < 1 || size > 10_000)
    throw new UserError(`--size: "${opts.size}" is not a whole number from 1 to 10000`);
  if (opts.db && !opts.embedded)
    throw new UserError('--db needs --embedded (the SQLite file a replay wrote)');
  if (opts.embedded) {
    const config = configOf(cmd);
    const path = opts.db ?? config.embedded.path;
    if (!existsSync(path))
      throw new UserError(
        `no embedded store at ${path}: replay logs into it first, or name another file with --db`,
      );
    const store = new EmbeddedStore(path);
    try {
      const admin = new EmbeddedIngestAdmin({ store, config });
      const page = await admin.deadLetters({ size, ...(opts.source ? { source: opts.source } : {}) });
      if (opts.json) console.log(JSON.stringify(page.items, null, 2));
      else
        for (const d of page.items)
          console.log(`${d.at}  ${d.source}  ${d.reason}\n    ${d.payload.slice(0, 160)}`);
      if (!opts.json && page.items.length === 0) console.error('no dead letters');
    } finally {
      store.close();
    }
    return;
  }
  const config = configOf(cmd);
  const runtime = await startIngest(config, { waitMs: 30_000 });
  const letters = await listDeadLetters(runtime.es, config.elasticsearch.indexPrefix, {
    ...(opts.source ? { source: opts.source } : {}),
    size: Number(opts.size),
  });
  if (opts.json) console.log(JSON.stringify(letters, null, 2));
  else
    for (const d of letters)
      console.log(`${d['@timestamp']}  ${d.source}  ${d.stage}  ${d.reason}\n    ${d.raw.slice(0, 160)}`);
  await runtime.close();
}

/** `ingest dead-letters replay`: re-enqueue pending dead letters. */
export async function deadLettersReplay(opts: { source?: string }, cmd: Command): Promise<void> {
  const config = configOf(cmd);
  const runtime = await startIngest(config, { waitMs: 30_000 });
  const letters = await listDeadLetters(runtime.es, config.elasticsearch.indexPrefix, {
    ...(opts.source ? { source: opts.source } : {}),
    pending: true,
    size: 10_000,
  });
  const bySource = Map.groupBy(letters, (d) => d.source);
  for (const [source, group] of bySource) {
    await runtime.producer.enqueue(
      { source, receivedAt: Date.now() },
      group.map((d) => d.raw),
      `replay:${Date.now()}`,
    );
    await markReplayed(
      runtime.es,
      config.elasticsearch.indexPrefix,
      group.map((d) => d.id),
    );
  }
  console.log(`replayed ${letters.length} dead letter(s)`);
  await runtime.close();
}
