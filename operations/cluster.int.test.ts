/**
 * A three-node cluster (the same distribution, three processes on loopback, small heaps), every
 * index with a replica: the client spreads its requests over the nodes, and a data node stopped
 * and restarted while ingest and scheduled detection run loses or doubles no event, no incident,
 * and leaves no gap in the rule's runs.
 */
import type { Client } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { connectRedis } from '../core/queue/bullmq.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import type { Incident } from '../core/schema/incident.ts';
import { createEsClient, indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { wholeResultsOnly } from '../core/store/whole-results.ts';
import { elasticsearchExecutor } from '../detections/runtime.ts';
import { DetectionScheduler, type RunRecord } from '../detections/scheduler/scheduler.ts';
import { type IngestRuntime, startIngest } from '../ingest/runtime.ts';
import { indexEvents } from '../ingest/sinks/elasticsearch.ts';
import { parseRules } from '../parser/index.ts';
import { integrationContext } from '../test/harness/context.ts';
import { type ElasticsearchCluster, startElasticsearchCluster } from '../test/harness/elasticsearch.ts';
import { eventually } from '../test/harness/eventually.ts';
import { runLifecycle } from './lifecycle.ts';

const ctx = integrationContext('cluster');
const MIN = 60_000;

let cluster: ElasticsearchCluster;
let config: GatewatchConfig;
let es: Client;

beforeAll(async () => {
  cluster = await startElasticsearchCluster({ nodes: 3, heapMb: 320 });
  config = loadConfig({
    env: {},
    overrides: {
      elasticsearch: { url: cluster.urls.join(','), indexPrefix: ctx.prefix, replicas: 1 },
      redis: { url: ctx.redisUrl, prefix: ctx.prefix },
      ingest: { batchSize: 200, workerConcurrency: 2 },
      lifecycle: { enabled: false },
    },
  });
  es = createEsClient(config.elasticsearch);
});

afterAll(async () => {
  await es?.close();
  await cluster?.dispose();
  await ctx.cleanup();
});

/** Green (every replica assigned), asked of any node that answers. */
async function green(): Promise<void> {
  await eventually(
    async () => (await es.cluster.health({ wait_for_status: 'green', timeout: '10s' })).status,
    (s) => s === 'green',
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

/** A node that is not the elected master (stopping it moves shards, not the cluster's brain). */
async function dataNodeNotMaster() {
  const master = (await es.cat.master({ format: 'json' }))[0]!.node;
  return cluster.nodes.find((n) => n.name !== master)!;
}

const line = (i: number) =>
  `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} - - [23/Nov/2026:12:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} +0000] "GET /api/items/${i} HTTP/1.1" 200 ${i % 5000} "-" "cluster-test/1.0"`;

const RULE = `
rule burst-401 {
  title "401 burst"
  severity high
  schedule every 5m lookback 15m lateness 1m
  where http.response.status_code == 401
  threshold {
    group by source.ip
    window 5m
    metric failures = count()
    having failures >= 5
  }
  incident {
    title "401 burst from {source.ip}"
    entities ip: source.ip
  }
}
`;

describe('a three-node cluster', () => {
  it('the client spreads requests over every node', async () => {
    const opened = async () => {
      const r = (await (await fetch(`${cluster.nodes[0]!.url}/_nodes/stats/http`)).json()) as {
        nodes: Record<string, { name: string; http: { total_opened: number } }>;
      };
      return new Map(Object.values(r.nodes).map((n) => [n.name, n.http.total_opened]));
    };
    const before = await opened();
    const client = createEsClient(config.elasticsearch);
    for (let i = 0; i < 30; i++) await client.cluster.health();
    await client.close();
    const after = await opened();
    for (const node of cluster.nodes)
      expect(after.get(node.name)! - before.get(node.name)!).toBeGreaterThan(0);
  });

  it('a data node stopped and restarted during ingest and scheduled detection: no event or incident lost or doubled, no gap in the rule’s runs', async () => {
    await installCoreTemplates(es, { prefix: ctx.prefix, replicas: 1 });
    const runtime: IngestRuntime = await startIngest(config, { workers: 2 });
    const redis = await connectRedis(ctx.redisUrl, 'producer');
    let scheduler: DetectionScheduler | undefined;
    try {
      // Detection: ten 401 bursts from ten addresses in ten 5-minute windows, read by a rule
      // whose runs BullMQ fires every second of real time while its clock runs 300× faster.
      const T0 = Date.parse('2026-11-20T10:00:00.000Z');
      const bursts: GatewatchEvent[] = [];
      for (let k = 0; k < 10; k++)
        for (let i = 0; i < 6; i++)
          bursts.push({
            '@timestamp': new Date(T0 + k * 5 * MIN + 10_000 + i * 20_000).toISOString(),
            event: { id: `burst-${k}-${i}`, outcome: 'failure' },
            source: { ip: `203.0.113.${k + 1}` },
            http: { request: { method: 'POST' }, response: { status_code: 401 } },
            url: { path: '/login' },
          } as GatewatchEvent);
      expect((await indexEvents(es, bursts, { prefix: ctx.prefix, refresh: true })).written).toBe(60);
      const [rule] = parseRules(RULE, { file: 'cluster-test.gwr' }).rules;
      rule!.schedule.intervalMs = 1_000;
      // The rule's clock starts when its schedule does (a new rule looks back only its look-back).
      let realStart: number | undefined;
      const clock = () => T0 - 5 * MIN + (realStart === undefined ? 0 : (Date.now() - realStart) * 300);
      const runs: { at: number; record: RunRecord }[] = [];
      scheduler = new DetectionScheduler({
        es,
        redis,
        redisUrl: ctx.redisUrl,
        prefix: ctx.prefix,
        queuePrefix: ctx.prefix,
        rules: [rule!],
        execute: elasticsearchExecutor(es, ctx.prefix, 100_000, () => undefined),
        maxCatchUpMs: 30 * MIN,
        leaseMs: 30_000,
        clock,
        onRun: (record) => runs.push({ at: Date.now(), record }),
      });
      await scheduler.init();
      // Every index gets its replica (the lifecycle sets what was made with none), then all green.
      expect((await runLifecycle({ es, config })).errors).toEqual([]);
      await green();
      realStart = Date.now();
      await scheduler.syncSchedules();
      scheduler.startWorker(1);

      // Ingest: 30 batches of 200 distinct lines, a third before the stop, a third while the node
      // is down, a third after it is back.
      const enqueue = async (from: number, to: number) => {
        for (let b = from; b < to; b++)
          await runtime.producer.enqueue(
            { source: 'cluster', receivedAt: Date.now() },
            Array.from({ length: 200 }, (_, i) => line(b * 200 + i)),
            `batch-${b}`,
          );
      };
      await enqueue(0, 10);
      await eventually(
        async () => runs.filter((r) => r.record.outcome === 'ok').length,
        (n) => n >= 2,
        { timeoutMs: 60_000 },
      );
      // An index without replicas, one shard on each node: what a search sees with a node gone.
      const unreplicated = `${ctx.prefix}-unreplicated`;
      await es.indices.create({
        index: unreplicated,
        settings: {
          number_of_shards: 3,
          number_of_replicas: 0,
          'index.routing.allocation.total_shards_per_node': 1,
        },
      });
      await green();
      const victim = await dataNodeNotMaster();
      await victim.stop();
      const stoppedAt = Date.now();
      // Elasticsearch answers from the shards it still has; detection's client refuses that.
      // (asked of the nodes left, so that the client's retries cannot end on the stopped one)
      const left = createEsClient({
        ...config.elasticsearch,
        url: cluster.nodes
          .filter((n) => n !== victim)
          .map((n) => n.url)
          .join(','),
      });
      try {
        const partial = await left.search({ index: unreplicated, size: 0 });
        expect(partial._shards.failed).toBeGreaterThan(0);
        // Refused either by Elasticsearch itself (the wrapper asks with allow_partial_search_results
        // false: search_phase_execution_exception) or by the wrapper's check of _shards.failed.
        await expect(wholeResultsOnly(left).search({ index: unreplicated, size: 0 })).rejects.toThrow(
          /shards did not answer|search_phase_execution_exception/,
        );
      } finally {
        await left.close();
      }
      await es.indices.delete({ index: unreplicated });
      await enqueue(10, 20);
      // Work goes on while it is down: batches stored, rule runs done.
      await eventually(
        () => runtime.producer.currentDepth(true),
        (d) => d <= 5,
        { timeoutMs: 120_000 },
      );
      await eventually(
        async () => runs.filter((r) => r.at > stoppedAt && r.record.outcome !== 'skipped').length,
        (n) => n >= 3,
        { timeoutMs: 60_000 },
      );
      await victim.restart();
      const restartedAt = Date.now();
      await enqueue(20, 30);
      await green();
      await eventually(
        () => runtime.producer.currentDepth(true),
        (d) => d === 0,
        { timeoutMs: 120_000 },
      );
      // The rule's clock is long past the last burst: wait until its checkpoint is too.
      await eventually(
        async () => (await scheduler!.getCheckpoint('burst-401')) ?? 0,
        (cp) => cp > T0 + 55 * MIN,
        { timeoutMs: 60_000 },
      );
      await scheduler.close();
      scheduler = undefined;

      // Every event once.
      await es.indices.refresh({ index: `${ctx.prefix}-*` });
      const events = await es.count({ index: indexNames(ctx.prefix).eventsAlias });
      expect(events.count).toBe(30 * 200 + 60);
      expect((await es.count({ index: indexNames(ctx.prefix).deadLetters })).count).toBe(0);
      // Every incident once.
      const incidents = await es.search<Incident>({ index: indexNames(ctx.prefix).incidents, size: 100 });
      expect(incidents.hits.hits.map((h) => h._source!.group['source.ip']).sort()).toEqual(
        Array.from({ length: 10 }, (_, k) => `203.0.113.${k + 1}`).sort(),
      );
      expect(incidents.hits.hits.every((h) => h._source!.occurrences === 1)).toBe(true);
      // No gap: the ranges of the runs that completed cover the whole time without a hole.
      const done = runs
        .map((r) => r.record)
        .filter((r) => r.outcome === 'ok')
        .sort((a, b) => Date.parse(a.range_end) - Date.parse(b.range_end));
      expect(Date.parse(done[0]!.range_start)).toBeLessThanOrEqual(T0);
      expect(Date.parse(done.at(-1)!.range_end)).toBeGreaterThan(T0 + 55 * MIN);
      for (let i = 1; i < done.length; i++)
        expect(Date.parse(done[i]!.range_start)).toBeLessThanOrEqual(Date.parse(done[i - 1]!.range_end));
      // Runs went on while the node was down.
      expect(runs.some((r) => r.at > stoppedAt && r.at < restartedAt && r.record.outcome === 'ok')).toBe(
        true,
      );
    } finally {
      await scheduler?.close();
      await runtime.close();
      redis.disconnect();
    }
  });
});
