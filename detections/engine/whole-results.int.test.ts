/**
 * A rule run takes Elasticsearch's whole answer or fails. A shard that cannot answer (here: an
 * index in the events alias that maps `user.name` as a number, so a regexp on it fails there)
 * used to leave its events out of a 200 answer, and the run returned fewer detections in
 * silence — the bench saw a threshold rule lose windows on a loaded node that way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { indexEvents } from '../../ingest/sinks/elasticsearch.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { runRuleOnElasticsearch } from './elasticsearch.ts';
import { ev, filterRule } from './testing.ts';

const T = Date.UTC(2026, 2, 1, 10);

describe('a run never takes a partial answer for the whole one', () => {
  const ctx = integrationContext('whole-results');
  const rule = filterRule('wr-regex', { op: 'regex', field: 'user.name', pattern: 'al.*' });
  const range = { start: T - 3600_000, end: T + 3600_000 };
  const run = () => runRuleOnElasticsearch(ctx.es, indexNames(ctx.prefix).eventsAlias, rule, range);
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await indexEvents(
      ctx.es,
      [ev(T, { 'user.name': 'alice' }, 'wr-1'), ev(T + 1000, { 'user.name': 'alan' }, 'wr-2')],
      {
        prefix: ctx.prefix,
        refresh: true,
      },
    );
  });
  afterAll(() => ctx.cleanup());

  it('finds every matching event while every shard answers', async () => {
    const res = await run();
    expect(res.detections.map((d) => d.sampleEventIds[0])).toEqual(['wr-1', 'wr-2']);
  });

  it('fails with a clear error when a shard of the events cannot answer', async () => {
    const odd = `${ctx.prefix}-events-odd`;
    await ctx.es.indices.create({
      index: odd,
      mappings: {
        properties: { '@timestamp': { type: 'date' }, user: { properties: { name: { type: 'long' } } } },
      },
    });
    await ctx.es.index({
      index: odd,
      document: { '@timestamp': new Date(T).toISOString(), user: { name: 7 } },
    });
    await ctx.es.indices.refresh({ index: odd });
    await ctx.es.indices.updateAliases({
      actions: [{ add: { index: odd, alias: indexNames(ctx.prefix).eventsAlias } }],
    });
    // Elasticsearch itself, asked with allow_partial_search_results=false, refuses the search
    await expect(run()).rejects.toThrow(/shard|regexp|failed/i);
  });
});
