/**
 * `gatewatch ingest dead-letters list|replay` against the real store: letters written the way
 * ingest workers write them, listed and replayed by the CLI process.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../core/queue/bullmq.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { IngestProducer } from '../../ingest/pipeline/producer.ts';
import { writeDeadLetters } from '../../ingest/sinks/dead-letters.ts';
import { createScrubber } from '../../ingest/transforms/scrub.ts';
import { integrationContext } from '../../test/harness/context.ts';

const ctx = integrationContext('cli-dead-letters');
const run = promisify(execFile);

const gatewatch = (...args: string[]) =>
  run(process.execPath, ['cli/gatewatch.ts', ...args], {
    env: {
      ...process.env,
      ELASTICSEARCH_URL: ctx.elasticsearchUrl,
      REDIS_URL: ctx.redisUrl,
      GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: ctx.prefix,
      GATEWATCH_REDIS__PREFIX: ctx.prefix,
    },
    timeout: 120_000,
  });

describe('ingest dead-letters (CLI)', () => {
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    const at = Date.parse('2026-03-01T08:00:00Z');
    // One batch's letters share its time: the listing must still order and page them.
    await writeDeadLetters(ctx.es, ctx.prefix, [
      { source: 'edge', reason: 'no format matched', stage: 'parse', raw: 'garbage a', at },
      { source: 'edge', reason: 'no format matched', stage: 'parse', raw: 'garbage b', at },
      { source: 'other', reason: 'no format matched', stage: 'parse', raw: 'garbage c', at: at + 1000 },
    ]);
    await ctx.es.indices.refresh({ index: `${ctx.prefix}-dead-letters` });
  });
  afterAll(() => ctx.cleanup());

  it('lists dead letters newest first, by source, as JSON', async () => {
    const all = JSON.parse((await gatewatch('ingest', 'dead-letters', 'list', '--json')).stdout);
    expect(all.map((d: { raw: string }) => d.raw)).toEqual([
      'garbage c',
      ...['garbage a', 'garbage b'].sort(),
    ]);
    expect(all[0]).toMatchObject({ source: 'other', stage: 'parse', reason: 'no format matched' });
    const edge = JSON.parse(
      (await gatewatch('ingest', 'dead-letters', 'list', '--source', 'edge', '--json')).stdout,
    );
    expect(edge.map((d: { source: string }) => d.source)).toEqual(['edge', 'edge']);
    const text = (await gatewatch('ingest', 'dead-letters', 'list')).stdout;
    expect(text).toContain('garbage c');
  });

  it('replays pending dead letters into the ingest queue once', async () => {
    const replayed = await gatewatch('ingest', 'dead-letters', 'replay', '--source', 'edge');
    expect(replayed.stdout).toContain('replayed 2 dead letter(s)');
    const redis = await connectRedis(ctx.redisUrl, 'producer');
    const producer = new IngestProducer({
      producer: redis,
      queuePrefix: ctx.prefix,
      highWaterMark: 10,
      batchSize: 10,
      scrub: createScrubber(),
    });
    try {
      const jobs = await producer.queue.getJobs(['waiting']);
      expect(jobs.flatMap((j) => j.data.records).sort()).toEqual(['garbage a', 'garbage b']);
      expect((await gatewatch('ingest', 'dead-letters', 'replay', '--source', 'edge')).stdout).toContain(
        'replayed 0 dead letter(s)',
      );
    } finally {
      await producer.queue.obliterate({ force: true });
      await producer.close();
      redis.disconnect();
    }
  });
});
