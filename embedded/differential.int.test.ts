import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import type { Incident } from '../core/schema/incident.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import {
  elasticsearchEntityNames,
  elasticsearchIncidentStore,
  ensureIncidentIndex,
} from '../detections/incidents/es-store.ts';
import { writeIncidents } from '../detections/incidents/writer.ts';
import { elasticsearchExecutor } from '../detections/runtime.ts';
import { startIngest } from '../ingest/runtime.ts';
import { loadRuleFiles } from '../parser/index.ts';
import { integrationContext } from '../test/harness/context.ts';
import { eventually } from '../test/harness/eventually.ts';
import { readLines, replay, replayFiles, replayRange } from './replay.ts';
import { EmbeddedStore } from './store.ts';

const ctx = integrationContext('differential');
const SCENARIO = 'samples/scenarios/demo';

/** What must agree between the modes (timestamps of writing aside). */
function comparable(incidents: Incident[]) {
  return incidents
    .map((i) => ({
      id: i.id,
      rule: i.rule.id,
      group: i.group,
      window: i.window,
      first_seen: i.first_seen,
      last_seen: i.last_seen,
      event_count: i.event_count,
      metrics: i.metrics,
      occurrences: i.occurrences,
      entities: i.entities,
      title: i.title,
      summary: i.summary,
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

describe('embedded and distributed modes agree', () => {
  afterAll(() => ctx.cleanup());

  it('yields identical incidents for the demo scenario', async () => {
    // One key for both modes (the scenario's own is a public example value, which a distributed
    // deployment refuses): incidents name keys by fingerprint.
    const fingerprintSecret = 'differential-test-fingerprint-key';
    const base = loadConfig({
      env: {},
      file: `${SCENARIO}/gatewatch.yaml`,
      overrides: { ingest: { fingerprintSecret } },
    });
    const { rules, diagnostics } = await loadRuleFiles(['detections/rules']);
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const files = replayFiles([SCENARIO]);

    // Embedded.
    const store = new EmbeddedStore(':memory:');
    const embedded = await replay(files, { config: base, store, rules, now: () => 0 });
    const bounds = store.timeBounds()!;
    store.close();
    expect(embedded.deadLetters).toBe(0);
    expect(embedded.incidents.length).toBeGreaterThanOrEqual(19);

    // Distributed: the same lines, same source name, through Redis and the ingest workers.
    const config = loadConfig({
      env: {},
      file: `${SCENARIO}/gatewatch.yaml`,
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
        ingest: { batchSize: 1000, highWaterMark: 100_000, fingerprintSecret },
      },
    });
    const runtime = await startIngest(config, { workers: 1 });
    try {
      const lines: string[] = [];
      for (const file of files) for await (const line of readLines(file)) lines.push(line);
      // The embedded replay stamps records with the replay's receive time; use the same.
      await runtime.producer.enqueue({ source: 'replay', receivedAt: 0 }, lines, 'differential');
      const names = indexNames(ctx.prefix);
      const count = async () => {
        await ctx.es.indices.refresh({
          index: `${ctx.prefix}-events-*`,
          ignore_unavailable: true,
          allow_no_indices: true,
        });
        return (
          await ctx.es.count({ index: names.eventsAlias, ignore_unavailable: true, allow_no_indices: true })
        ).count;
      };
      expect(
        await eventually(count, (n) => n >= embedded.newEvents, { timeoutMs: 120_000, intervalMs: 250 }),
      ).toBe(embedded.newEvents);

      await ensureIncidentIndex(ctx.es, ctx.prefix);
      const execute = elasticsearchExecutor(ctx.es, ctx.prefix, 100_000);
      const incidentStore = elasticsearchIncidentStore(ctx.es, ctx.prefix);
      for (const rule of rules) {
        if (!rule.enabled) continue;
        const result = await execute(rule, replayRange(rule, bounds), Date.now());
        expect(result.degraded, rule.id).toBeUndefined();
        await writeIncidents(incidentStore, result.incidents, {
          ...(rule.output.suppress ? { suppression: { periodMs: rule.output.suppress.periodMs } } : {}),
          names: elasticsearchEntityNames(ctx.es, ctx.prefix),
        });
      }
      await ctx.es.indices.refresh({ index: names.incidents });
      const distributed = await ctx.es.search<Incident>({ index: names.incidents, size: 10_000 });
      expect(comparable(distributed.hits.hits.map((h) => h._source!))).toEqual(
        comparable(embedded.incidents),
      );
    } finally {
      await runtime.close();
    }
  });
});
