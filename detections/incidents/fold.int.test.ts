/**
 * Folding on Elasticsearch: the same scenario as the embedded store's test, through the
 * Elasticsearch incident store (its fold and suppression look-ups) and the events index's
 * API key names, written twice.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Incident } from '../../core/schema/incident.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { elasticsearchEntityNames, elasticsearchIncidentStore, ensureIncidentIndex } from './es-store.ts';
import { checkFolded } from './fold-checks.ts';
import { FOLD_RULES, FOLD_T0, foldScenario, KEY } from './testing.ts';
import { writeIncidents } from './writer.ts';

const ctx = integrationContext('incident-fold');
beforeAll(async () => {
  await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
  await ensureIncidentIndex(ctx.es, ctx.prefix);
  // One event naming the key, as the gateway logged it.
  await ctx.es.index({
    index: indexNames(ctx.prefix).eventsIndexFor(new Date(FOLD_T0).toISOString()),
    id: 'named-event',
    document: {
      '@timestamp': new Date(FOLD_T0 + 6 * 60_000).toISOString(),
      gatewatch: { api_key: { fingerprint: KEY, name: 'acme-mobile' } },
    },
    refresh: true,
  });
});
afterAll(() => ctx.cleanup());

it('one incident per attack, idempotent, with the key by its gateway name', async () => {
  const store = elasticsearchIncidentStore(ctx.es, ctx.prefix);
  const write = async () => {
    for (const { rule, incidents } of foldScenario()) {
      const ir = FOLD_RULES.find((r) => r.id === rule)!;
      await writeIncidents(store, incidents, {
        ...(ir.output.suppress ? { suppression: { periodMs: ir.output.suppress.periodMs } } : {}),
        names: elasticsearchEntityNames(ctx.es, ctx.prefix),
      });
    }
  };
  const read = async () => {
    const index = indexNames(ctx.prefix).incidents;
    await ctx.es.indices.refresh({ index });
    return (await ctx.es.search<Incident>({ index, size: 100, sort: [{ id: 'asc' }] })).hits.hits.map(
      (h) => h._source!,
    );
  };
  await write();
  const first = await read();
  checkFolded(first);
  await write();
  const again = await read();
  expect(again.map((i) => ({ ...i, updated_at: '' }))).toEqual(first.map((i) => ({ ...i, updated_at: '' })));
});
