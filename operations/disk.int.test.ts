/**
 * A disk that fills up, on a real node whose data path is a 64 MiB tmpfs (or, where no tmpfs can
 * be mounted, the disk) and whose watermarks are a few steps below the free space: before
 * Elasticsearch makes the indices read-only, Gatewatch says
 * so (health, metrics, log) and pushes back — HTTP 429 with Retry-After, ingest workers paused —
 * so batches wait in Redis instead of failing; past the flood stage nothing is refused or
 * dead-lettered either; once space returns everything resumes by itself, and every event is
 * stored once.
 */
import { closeSync, fsyncSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registry } from '../api/metrics.ts';
import { loadConfig } from '../core/config/load.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { type IngestRuntime, startIngest } from '../ingest/runtime.ts';
import { integrationContext } from '../test/harness/context.ts';
import { type ElasticsearchNode, startElasticsearch } from '../test/harness/elasticsearch.ts';
import { eventually } from '../test/harness/eventually.ts';

const ctx = integrationContext('disk');
const TOKEN = 'tok-disk-watermarks-0123456789';
const MIB = 1024 * 1024;

let node: ElasticsearchNode;
let es: Client;
let runtime: IngestRuntime | undefined;
const fillers: string[] = [];

/** Free bytes on the node's data path. */
function free(): number {
  const s = statfsSync(node.dataPath);
  return s.bavail * s.bsize;
}

/**
 * The watermarks, as free space, a few steps below what is free now: on the 64 MiB tmpfs a step
 * is a few MiB; on a machine's disk (no tmpfs without CAP_SYS_ADMIN) 128 MiB, wide enough that
 * whatever else writes to that disk meanwhile does not matter.
 */
let step = 0;
let start = 0;

beforeAll(async () => {
  node = await startElasticsearch({
    heapMb: 256,
    dataLimitMb: 64,
    settings: {
      // Elasticsearch's own disk check, as often as it allows.
      'cluster.info.update.interval': '10s',
      'cluster.routing.allocation.disk.reroute_interval': '1s',
    },
  });
  es = new Client({ node: node.url });
  start = free();
  step = node.dataLimited ? Math.floor(start / 8) : 128 * MIB;
  const mb = (b: number) => `${Math.floor(b / MIB)}mb`;
  await es.cluster.putSettings({
    persistent: {
      'cluster.routing.allocation.disk.watermark.low': mb(start - 2 * step),
      'cluster.routing.allocation.disk.watermark.high': mb(start - 3 * step),
      'cluster.routing.allocation.disk.watermark.flood_stage': mb(start - 5 * step),
    },
  });
});

afterAll(async () => {
  await runtime?.close();
  for (const f of fillers) rmSync(f, { force: true });
  await es?.close();
  await node?.dispose();
  await ctx.cleanup();
});

/** Fill the data path until `left` bytes are free, in chunks. */
function fillUntil(left: number): void {
  const file = join(node.dataPath, `filler-${fillers.length}`);
  fillers.push(file);
  const fd = openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(16 * MIB, 1);
    for (let todo = free() - left; todo > 0; todo = free() - left)
      writeSync(fd, chunk, 0, Math.min(chunk.length, todo));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const line = (i: number) =>
  `192.0.2.${i % 250} - - [07/Dec/2026:10:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} +0000] "GET /disk/${i} HTTP/1.1" 200 1 "-" "disk-test"`;

describe('a filling disk (real node on a 64 MiB data path)', () => {
  it('pushes back before the flood stage, holds batches while indices are read-only, and resumes by itself', async () => {
    const warnings: string[] = [];
    const warn = vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
      warnings.push(args.join(' '));
    });
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: node.url, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
        ingest: { httpPort: 0, batchSize: 50, sources: [{ name: 'edge', type: 'http', tokens: [TOKEN] }] },
        lifecycle: { enabled: false, diskCheckInterval: '1s' },
      },
    });
    runtime = await startIngest(config, { workers: 1, http: true });
    const port = (runtime.http!.server.address() as { port: number }).port;
    const post = (from: number, n: number) =>
      fetch(`http://127.0.0.1:${port}/ingest/edge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: Array.from({ length: n }, (_, i) => line(from + i)).join('\n'),
      });
    const stored = async () => {
      await es.indices.refresh({
        index: `${ctx.prefix}-events-*`,
        ignore_unavailable: true,
        allow_no_indices: true,
      });
      return (
        await es.count({
          index: indexNames(ctx.prefix).eventsAlias,
          ignore_unavailable: true,
          allow_no_indices: true,
        })
      ).count;
    };
    const deadLetters = async () =>
      (await es.count({ index: indexNames(ctx.prefix).deadLetters, ignore_unavailable: true })).count;

    try {
      expect((await post(0, 100)).status).toBe(202);
      expect(await eventually(stored, (n) => n === 100, { timeoutMs: 60_000 })).toBe(100);

      // Past the high watermark (four steps used; high at three, flood stage at five): Gatewatch
      // sees it on its next check, before Elasticsearch does anything.
      fillUntil(start - 4 * step);
      const pushBack = await eventually(
        async () => runtime!.operations.watch.pushBack(),
        (p) => p !== undefined,
        { timeoutMs: 30_000 },
      );
      expect(pushBack).toMatch(
        /^Elasticsearch disk past the high watermark \(\d+mb\): node .* is [\d.]+ % full/,
      );
      const refused = await post(100, 100);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await refused.text()).toContain('past the high watermark');
      expect(await registry.metrics()).toMatch(/gatewatch_elasticsearch_push_back 1/);
      expect(warnings.join('\n')).toMatch(
        /warning: Elasticsearch disk on .* past the high watermark \(\d+mb\): Gatewatch pushes back/,
      );

      // Batches that reached the queue before the push-back wait there (the worker is paused).
      await runtime.producer.enqueue(
        { source: 'edge', receivedAt: Date.now() },
        Array.from({ length: 100 }, (_, i) => line(200 + i)),
        'queued-before-push-back',
      );

      // Past the flood stage: Elasticsearch makes the index read-only (within its info interval).
      fillUntil(start - 6 * step);
      const blocked = await eventually(
        async () => runtime!.operations.watch.refresh(),
        (h) => h.blocked.length > 0,
        { timeoutMs: 90_000 },
      );
      expect(blocked.blocked.some((i) => i.startsWith(`${ctx.prefix}-events-`))).toBe(true);
      expect(blocked.writes_blocked).toMatch(/read-only/);
      // Nothing failed: the batch waits in the queue, no dead letter, the sender is told to wait.
      expect(await runtime.producer.currentDepth(true)).toBe(1);
      expect(await runtime.workers[0]!.isPaused()).toBe(true);
      expect(await deadLetters()).toBe(0);
      expect((await post(300, 100)).status).toBe(429);

      // Space returns: Elasticsearch lifts the block, Gatewatch stops pushing back, the worker
      // takes the waiting batch, senders are accepted again.
      for (const f of fillers.splice(0)) rmSync(f, { force: true });
      await eventually(
        async () => runtime!.operations.watch.refresh(),
        (h) => h.push_back === undefined && h.blocked.length === 0,
        { timeoutMs: 90_000 },
      );
      expect((await post(300, 100)).status).toBe(202);
      expect(await eventually(stored, (n) => n === 300, { timeoutMs: 60_000 })).toBe(300);
      expect(await deadLetters()).toBe(0);
      expect(warnings.join('\n')).toMatch(/ingest resumes/);
      expect(await registry.metrics()).toMatch(/gatewatch_elasticsearch_push_back 0/);
    } finally {
      warn.mockRestore();
    }
  });
});
