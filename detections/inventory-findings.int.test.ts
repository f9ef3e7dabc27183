/** Inventory findings become incidents exactly once, in the incidents index on real Elasticsearch. */
import { afterAll, describe, expect, it } from 'vitest';
import type { Incident } from '../core/schema/incident.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { InventoryAccumulator } from '../inventory/accumulator.ts';
import { ElasticsearchSpecStore, importSpec } from '../inventory/specs/registry.ts';
import { ElasticsearchInventoryStore } from '../inventory/store.ts';
import { event, PETSTORE_V1 } from '../inventory/testing/fixtures.ts';
import { integrationContext } from '../test/harness/context.ts';
import { elasticsearchIncidentStore, ensureIncidentIndex } from './incidents/es-store.ts';
import { raiseInventoryFindings } from './inventory-findings.ts';

const ctx = integrationContext('inventory-findings');

describe('inventory findings as incidents', () => {
  afterAll(() => ctx.cleanup());

  it('raises a shadow endpoint as an incident once, however often it is re-raised', async () => {
    const inventory = new ElasticsearchInventoryStore(ctx.es, ctx.prefix, { refresh: true });
    const specs = new ElasticsearchSpecStore(ctx.es, ctx.prefix);
    await inventory.install();
    await specs.install();
    await ensureIncidentIndex(ctx.es, ctx.prefix);
    await importSpec(specs, PETSTORE_V1, { key: 'petstore', hosts: ['api.example.com'] });
    const acc = new InventoryAccumulator(inventory);
    acc.add([
      ...Array.from({ length: 5 }, () => event({ host: 'api.example.com', route: '/api/v1/pets' })),
      ...Array.from({ length: 5 }, () => event({ host: 'api.example.com', route: '/api/v1/internal/debug' })),
    ] as never);
    await acc.flush();

    const incidents = elasticsearchIncidentStore(ctx.es, ctx.prefix);
    const now = new Date('2026-01-11T00:00:00Z');
    const first = await raiseInventoryFindings(inventory, specs, incidents, now);
    expect(first.findings).toBeGreaterThanOrEqual(1);
    expect(first.created.length).toBe(first.findings);
    const again = await raiseInventoryFindings(inventory, specs, incidents, now);
    expect(again.created).toEqual([]);

    await ctx.es.indices.refresh({ index: indexNames(ctx.prefix).incidents });
    const stored = await ctx.es.search<Incident>({ index: indexNames(ctx.prefix).incidents, size: 100 });
    const shadow = stored.hits.hits.map((h) => h._source!).filter((i) => i.rule.id === 'inventory-shadow');
    expect(shadow.map((i) => i.group['gatewatch.route'])).toEqual(['/api/v1/internal/debug']);
    expect(shadow[0]!.tags).toContain('API9:2023');
    expect(stored.hits.hits.length).toBe(first.findings);
  });
});
