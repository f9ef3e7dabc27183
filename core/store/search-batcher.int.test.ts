import { errors } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationContext } from '../../test/harness/context.ts';
import { SearchBatcher } from './search-batcher.ts';

const ctx = integrationContext('search-batcher');
const index = `${ctx.prefix}-docs`;

const byN = (n: number) => ({ index, size: 5, query: { term: { n } }, sort: [{ n: 'asc' as const }] });
const ns = (r: { hits: { hits: { _source?: unknown }[] } }) =>
  r.hits.hits.map((h) => (h._source as { n: number }).n);

describe('SearchBatcher (real node)', () => {
  beforeAll(async () => {
    await ctx.es.indices.create({
      index,
      mappings: { properties: { n: { type: 'integer' }, text: { type: 'text' } } },
    });
    await ctx.es.bulk({
      refresh: true,
      operations: Array.from({ length: 30 }, (_, n) => [
        { index: { _index: index, _id: String(n) } },
        { n, text: 'x' },
      ]).flat(),
    });
  });
  afterAll(() => ctx.cleanup());

  it('sends searches issued together as one _msearch, each caller getting its own answer', async () => {
    const batcher = new SearchBatcher(ctx.es, { maxInFlight: 1 });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, n) => batcher.search(byN(n))));
    expect(answers.map(ns)).toEqual(Array.from({ length: 10 }, (_, n) => [n]));
    expect(batcher.counts).toEqual({ asked: 10, sent: 10, requests: 1 });
  });

  it('sends identical waiting searches once and gives every caller the answer', async () => {
    const batcher = new SearchBatcher(ctx.es, { maxInFlight: 1 });
    const answers = await Promise.all([
      ...Array.from({ length: 5 }, () => batcher.search(byN(7))),
      batcher.search(byN(8)),
    ]);
    expect(answers.map(ns)).toEqual([[7], [7], [7], [7], [7], [8]]);
    expect(batcher.counts).toEqual({ asked: 6, sent: 2, requests: 1 });
  });

  it('batches searches that wait for a free slot, and never joins a search already sent', async () => {
    const batcher = new SearchBatcher(ctx.es, { maxInFlight: 1 });
    const first = batcher.search(byN(40));
    // Let the first search leave, then make a document it may not see, visible to searches after.
    await new Promise((r) => setImmediate(r));
    await ctx.es.index({ index, id: '40', document: { n: 40, text: 'x' }, refresh: true });
    const later = [batcher.search(byN(40)), batcher.search(byN(40)), batcher.search(byN(3))];
    const answers = await Promise.all(later);
    expect(answers.map(ns)).toEqual([[40], [40], [3]]);
    await first;
    // One request for the first search, one _msearch for the three that waited (two identical).
    expect(batcher.counts).toEqual({ asked: 4, sent: 3, requests: 2 });
  });

  it('gives a failing search in a batch the same error a direct search gets; the others succeed', async () => {
    const batcher = new SearchBatcher(ctx.es, { maxInFlight: 1 });
    // Sorting on a text field without fielddata is a 400 from Elasticsearch.
    const bad = { index, size: 1, sort: [{ text: 'asc' as const }] };
    const direct = await ctx.es.search(bad).catch((err: unknown) => err);
    const [good, failed] = await Promise.allSettled([batcher.search(byN(2)), batcher.search(bad)]);
    expect(good.status === 'fulfilled' && ns(good.value)).toEqual([2]);
    expect(direct).toBeInstanceOf(errors.ResponseError);
    expect(failed.status).toBe('rejected');
    const err = (failed as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(errors.ResponseError);
    expect(err.statusCode).toBe((direct as errors.ResponseError).statusCode);
    expect(err.body.error.type).toBe((direct as errors.ResponseError).body.error.type);
  });

  it('sends a search with URL-only parameters on its own', async () => {
    const batcher = new SearchBatcher(ctx.es, { maxInFlight: 1 });
    const answers = await Promise.all([
      batcher.search({ ...byN(4), request_cache: true }),
      batcher.search(byN(5)),
      batcher.search(byN(6)),
    ]);
    expect(answers.map(ns)).toEqual([[4], [5], [6]]);
    expect(batcher.counts).toEqual({ asked: 3, sent: 3, requests: 2 });
  });
});
