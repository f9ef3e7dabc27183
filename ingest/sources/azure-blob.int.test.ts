/**
 * Azure Blob Storage source against Azurite, into a real Redis queue and a real
 * Elasticsearch, counted by event id: Azure Monitor's hourly append blobs (PT1H.json) read
 * incrementally from the last complete line, containers found by the `insights-logs-` prefix,
 * checkpoints across a restart, a SIGKILL in the middle of a large blob, and blobs that are not
 * text dead-lettered.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import type { SourceConfig } from '../../core/config/schema.ts';
import { type AzuriteServer, startAzurite } from '../../test/harness/azurite.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { type IngestRuntime, startIngest } from '../runtime.ts';
import type { ObjectPosition } from './objects.ts';
import { createPullSource } from './pull.ts';
import {
  deadLetters,
  eventCounts,
  frontDoorLine,
  kill,
  replayJson,
  startSourcesProcess,
  waitForEvents,
} from './testing/pull-fixtures.ts';

const ctx = integrationContext('azure');
const now = new Date().toISOString();
/** Azure Monitor's layout for this hour's records of one Front Door profile. */
const PT1H = `resourceId=/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-EDGE/PROVIDERS/MICROSOFT.CDN/PROFILES/AFD-API/y=${now.slice(0, 4)}/m=${now.slice(5, 7)}/d=${now.slice(8, 10)}/h=${now.slice(11, 13)}/m=00/PT1H.json`;
const lines = (tag: string, from: number, n: number) =>
  `${Array.from({ length: n }, (_, i) => frontDoorLine(tag, from + i)).join('\n')}\n`;

describe('Azure Blob Storage source (Azurite)', () => {
  let azurite: AzuriteServer;
  let service: BlobServiceClient;
  let runtime: IngestRuntime;
  const work = mkdtempSync(join(tmpdir(), 'gw-azure-'));
  const container = (name: string) => service.getContainerClient(`insights-logs-${ctx.prefix}-${name}`);

  const settings = (sources: unknown[]) => ({
    elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
    redis: { url: ctx.redisUrl, prefix: ctx.prefix },
    ingest: { httpPort: 0, highWaterMark: 4, sources },
  });
  const azureSource = (name: string, a: Record<string, unknown>): SourceConfig =>
    loadConfig({
      env: {},
      overrides: settings([{ name, type: 'azure-blob', azureBlob: { pollInterval: '1s', ...a } }]),
    }).ingest.sources[0]!;
  const pullSource = (source: SourceConfig) =>
    createPullSource({
      source,
      producer: runtime.producer,
      redis: runtime.redis,
      prefix: ctx.prefix,
      onError: (line) => console.error(line),
    });
  const position = async (source: string, c: ContainerClient, blob: string) => {
    const raw = await runtime.redis.hget(
      `${ctx.prefix}:pull:${source}:objects`,
      `azure://${c.accountName}/${c.containerName}/${blob}`,
    );
    return raw ? (JSON.parse(raw) as ObjectPosition) : undefined;
  };
  const append = async (c: ContainerClient, blob: string, text: string) => {
    const client = c.getAppendBlobClient(blob);
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; i += 4 * 1024 * 1024) {
      const part = bytes.subarray(i, i + 4 * 1024 * 1024);
      await client.appendBlock(part, part.length);
    }
  };

  beforeAll(async () => {
    azurite = await startAzurite();
    service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    for (const name of ['frontdoor', 'gateway', 'crash', 'bad']) await container(name).create();
    runtime = await startIngest(loadConfig({ env: {}, overrides: settings([]) }), {
      workers: 1,
      refresh: true,
    });
  });
  afterAll(async () => {
    await runtime?.close();
    await azurite?.stop();
    await ctx.cleanup();
  });

  it('reads append blobs incrementally from the last complete line, across containers and a restart', async () => {
    const frontdoor = container('frontdoor');
    await frontdoor.getAppendBlobClient(PT1H).create();
    await append(frontdoor, PT1H, lines('afd', 0, 100));
    // a gzip block blob in a second insights-logs container, found by the prefix
    await container('gateway')
      .getBlockBlobClient(`y=2026/m=12/d=01/export.json.gz`)
      .uploadData(gzipSync(lines('afd', 5000, 40)));
    const source = azureSource('azure-afd', {
      connectionString: azurite.connectionString,
      containerPrefix: `insights-logs-${ctx.prefix}-`,
    });
    const first = await pullSource(source);
    await first.start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'afd', 140)).toEqual({ events: 140, maxPerPath: 1 });
      // Azure Monitor appends during the hour; the last record's newline is still to come.
      const partial = frontDoorLine('afd', 150);
      await append(frontdoor, PT1H, `${lines('afd', 100, 50)}${partial.slice(0, 40)}`);
      expect(await waitForEvents(ctx.es, ctx.prefix, 'afd', 190)).toEqual({ events: 190, maxPerPath: 1 });
      const size = (await frontdoor.getAppendBlobClient(PT1H).getProperties()).contentLength!;
      const at = await eventually(
        () => position('azure-afd', frontdoor, PT1H),
        (p) => p?.tail === 40,
      );
      expect(at).toMatchObject({ bytes: size - 40, tail: 40, lines: 150 });
      await append(frontdoor, PT1H, `${partial.slice(40)}\n`);
      expect(await waitForEvents(ctx.es, ctx.prefix, 'afd', 191)).toEqual({ events: 191, maxPerPath: 1 });
    } finally {
      await first.stop();
    }
    // every line once: nothing of the append blob was read twice
    expect(first.status().records).toBe(191);

    // a new process continues from the checkpoints: only what is appended after
    const second = await pullSource(source);
    await second.start();
    try {
      await append(frontdoor, PT1H, lines('afd', 200, 10));
      expect(await waitForEvents(ctx.es, ctx.prefix, 'afd', 201)).toEqual({ events: 201, maxPerPath: 1 });
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      await second.stop();
    }
    expect(second.status().records).toBe(10);
  });

  it('a SIGKILL in the middle of a large append blob loses and doubles nothing', async () => {
    const total = 12_000;
    const crash = container('crash');
    await crash.getAppendBlobClient(PT1H).create();
    await append(crash, PT1H, lines('azcrash', 0, total));
    const file = join(work, 'crash.json');
    // credentials the usual way: the connection string in the environment
    writeFileSync(
      file,
      JSON.stringify(
        settings([
          {
            name: 'azure-crash',
            type: 'azure-blob',
            azureBlob: { containers: [crash.containerName], pollInterval: '1s' },
          },
        ]),
      ),
    );
    const env = { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };
    const first = await startSourcesProcess(file, env);
    const mid = await eventually(
      () => position('azure-crash', crash, PT1H),
      (p) => (p?.lines ?? 0) >= 3_000,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await kill(first.child);
    expect(mid!.lines).toBeLessThan(total);
    expect((await eventCounts(ctx.es, ctx.prefix, 'azcrash')).events).toBeLessThan(total);
    const second = await startSourcesProcess(file, env);
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'azcrash', total, 150_000)).toEqual({
        events: total,
        maxPerPath: 1,
      });
    } finally {
      await kill(second.child, 'SIGTERM');
    }
  });

  it('a corrupt gzip blob and a binary blob go to dead letters with their reason; the source reads on', async () => {
    const bad = container('bad');
    const corrupt = gzipSync(lines('azbad', 0, 100));
    corrupt.fill(0x41, 100, 140);
    await bad.getBlockBlobClient('a/corrupt.json.gz').uploadData(corrupt);
    await bad
      .getBlockBlobClient('b/picture.json')
      .uploadData(Buffer.concat([Buffer.from('GIF89a'), randomBytes(3000)]));
    await bad.getBlockBlobClient('c/good.json').uploadData(Buffer.from(lines('azbad', 500, 25)));
    const source = await pullSource(
      azureSource('azure-bad', {
        connectionString: azurite.connectionString,
        containers: [bad.containerName],
      }),
    );
    await source.start();
    try {
      const letters = await eventually(
        () => deadLetters(ctx.es, ctx.prefix, 'azure-bad'),
        (d) => d.length >= 2,
      );
      const reasons = Object.fromEntries(letters.map((d) => [d.raw.split(' ')[0], d.reason]));
      const url = (blob: string) => `azure://${bad.accountName}/${bad.containerName}/${blob}`;
      expect(reasons[url('a/corrupt.json.gz')]).toMatch(/^gzip data corrupt after line \d+/);
      expect(reasons[url('b/picture.json')]).toMatch(/binary content/);
      expect(
        await eventually(
          () => ctx.countEvents({ wildcard: { 'url.path': '/azbad/orders/5??' } }),
          (n) => n >= 25,
        ),
      ).toBe(25);
    } finally {
      await source.stop();
    }
  });

  it('replay azblob://container/prefix reads the blobs under the prefix', async () => {
    // the Front Door append blob: 100 + 50 + 1 + 10 lines (the gzip blob is in another container)
    const summary = await replayJson([`azblob://${container('frontdoor').containerName}/resourceId=`], [], {
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    });
    expect([summary.records, summary.events, summary.deadLetters]).toEqual([161, 161, 0]);
  });
});
