/**
 * Bad input never crashes a worker: binary garbage, truncated JSON, a 10 MB line and invalid
 * UTF-8 each end up indexed or dead-lettered, with a reason.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { type IngestRuntime, startIngest } from '../runtime.ts';
import { FileSource } from '../sources/file.ts';

const ctx = integrationContext('bad-input');
const names = indexNames(ctx.prefix);

describe('bad input', () => {
  let runtime: IngestRuntime;
  beforeAll(async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
      },
    });
    runtime = await startIngest(config, { workers: 1, refresh: true });
  });
  afterAll(async () => {
    await runtime?.close();
    await ctx.cleanup();
  });

  it('indexes or dead-letters every line and keeps the worker alive', async () => {
    const good = (n: number) =>
      `192.0.2.${n} - - [23/Nov/2026:10:00:0${n} +0000] "GET /api/ok/${n} HTTP/1.1" 200 10 "-" "ok/1.0"`;
    const parts: Buffer[] = [
      Buffer.from(`${good(1)}\n`),
      Buffer.concat([randomBytes(200).map((b) => (b === 0x0a ? 0x20 : b)), Buffer.from('\n')]), // binary garbage
      Buffer.from('{"httpRequest": {"clientIp": "203.0.113.1", "uri": "/x"\n'), // truncated JSON
      Buffer.from(`{"message": "${'A'.repeat(10 * 1024 * 1024)}"}\n`), // a 10 MB line
      Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x0a]), // invalid UTF-8
      Buffer.concat([
        Buffer.from('198.51.100.7 - - [23/Nov/2026:10:00:09 +0000] "GET /caf'),
        Buffer.from([0xe9]),
        Buffer.from('/x HTTP/1.1" 200 5 "-" "latin1"\n'),
      ]),
      Buffer.from(`${good(2)}\n`),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'gw-bad-'));
    writeFileSync(join(dir, 'bad.log'), Buffer.concat(parts));
    const source = new FileSource({
      source: { name: 'bad', type: 'file', tokens: [], paths: [join(dir, '*.log')] },
      producer: runtime.producer,
      redis: runtime.redis,
      offsetsKey: `${ctx.prefix}:offsets:bad`,
    });
    expect(await source.pollOnce()).toBe(parts.length);

    const read = async () => {
      await ctx.es.indices.refresh({
        index: `${ctx.prefix}-*`,
        ignore_unavailable: true,
        allow_no_indices: true,
      });
      const events = (
        await ctx.es.count({ index: names.eventsAlias, ignore_unavailable: true, allow_no_indices: true })
      ).count;
      const dead = (
        await ctx.es.count({ index: names.deadLetters, ignore_unavailable: true, allow_no_indices: true })
      ).count;
      return { events, dead, depth: await runtime.producer.currentDepth() };
    };
    const seen = await eventually(read, (s) => s.events + s.dead >= parts.length && s.depth === 0, {
      timeoutMs: 60_000,
    });
    expect(seen.events + seen.dead).toBe(parts.length);
    expect(seen.events).toBeGreaterThanOrEqual(2);
    const letters = await ctx.es.search<{ reason: string; raw_truncated: boolean; raw_bytes: number }>({
      index: names.deadLetters,
      size: 20,
    });
    for (const hit of letters.hits.hits) expect(hit._source!.reason).not.toBe('');
    const huge = letters.hits.hits.find((h) => h._source!.raw_bytes > 10 * 1024 * 1024);
    expect(huge?._source?.raw_truncated).toBe(true);
    // The worker is still alive and processing.
    expect(runtime.workers[0]!.isRunning()).toBe(true);
  });
  it('dead-letters a record that cannot be stored and stores the rest of its batch', async () => {
    // An nginx JSON line carrying an extra field nested 6,000 levels deep: it parses, but no
    // JSON serialiser can write it back out. Before, it failed its whole batch forever.
    const depth = 6_000;
    const deep = `{"time":"2026-11-23T10:00:00+00:00","remote_addr":"198.51.100.99","method":"GET","uri":"/deep","status":200,"nested":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const valid = Array.from(
      { length: 200 },
      (_, i) =>
        `192.0.2.${i % 250} - - [23/Nov/2026:11:00:00 +0000] "GET /api/poison/${i} HTTP/1.1" 200 10 "-" "ok/1.0"`,
    );
    await runtime.producer.enqueue(
      { source: 'poison', receivedAt: Date.now() },
      [...valid.slice(0, 100), deep, ...valid.slice(100)],
      'poison-batch',
    );
    const read = async () => {
      await ctx.es.indices.refresh({
        index: `${ctx.prefix}-*`,
        ignore_unavailable: true,
        allow_no_indices: true,
      });
      const events = await ctx.countEvents({ prefix: { 'url.path': '/api/poison/' } });
      const letters = await ctx.es.search<{ reason: string; stage: string; raw: string }>({
        index: names.deadLetters,
        query: { term: { source: 'poison' } },
        ignore_unavailable: true,
      });
      return {
        events,
        letters: letters.hits.hits.map((h) => h._source!),
        depth: await runtime.producer.currentDepth(),
      };
    };
    const seen = await eventually(read, (s) => s.events === 200 && s.letters.length === 1 && s.depth === 0, {
      timeoutMs: 60_000,
    });
    expect(seen.events).toBe(200);
    expect(seen.letters).toHaveLength(1);
    expect(seen.letters[0]!.stage).toBe('index');
    expect(seen.letters[0]!.reason).toMatch(/nested too deeply/);
    expect(seen.letters[0]!.raw).toContain('"remote_addr":"198.51.100.99"');
    expect(seen.depth).toBe(0);
  });
});
