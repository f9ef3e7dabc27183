/**
 * S3 sources against a real S3/SQS/SNS implementation (moto in server mode): bucket listing
 * and event notifications (direct to SQS, and through SNS), into a real Redis queue and a
 * real Elasticsearch, counted by event id. The `gatewatch ingest sources` process is killed
 * with SIGKILL in the middle of a large object (held there by the queue's back-pressure) and
 * started again: nothing lost, nothing doubled.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../../api/metrics.ts';
import { loadConfig } from '../../../core/config/load.ts';
import type { SourceConfig } from '../../../core/config/schema.ts';
import { integrationContext } from '../../../test/harness/context.ts';
import { eventually } from '../../../test/harness/eventually.ts';
import { type MotoServer, startMoto } from '../../../test/harness/moto.ts';
import { IngestAdmin } from '../../admin.ts';
import { type IngestRuntime, startIngest } from '../../runtime.ts';
import type { ObjectPosition } from '../objects.ts';
import { createPullSource } from '../pull.ts';
import {
  albLine,
  deadLetters,
  eventCounts,
  kill,
  replayJson,
  startSourcesProcess,
  waitForEvents,
} from '../testing/pull-fixtures.ts';

const ctx = integrationContext('s3');
const bucket = `${ctx.prefix}-logs`;
/** Objects are delivered today: date partitions and key times are today's (UTC). */
const today = new Date().toISOString().slice(0, 10);
const DAY = today.replaceAll('-', '/');
const ALB_DIR = `AWSLogs/123456789012/elasticloadbalancing/us-east-1/${DAY}/`;
/** An ALB object named, as ALB names them, after the 5-minute interval it was delivered for (now). */
const albKey = (n: number) => {
  const t = new Date().toISOString();
  const stamp = `${t.slice(0, 4)}${t.slice(5, 7)}${t.slice(8, 10)}T${t.slice(11, 13)}${t.slice(14, 16)}Z`;
  return `${ALB_DIR}123456789012_elasticloadbalancing_us-east-1_app.api-alb.50dc6c495c0c9188_${stamp}_10.0.1.5_${n}.log.gz`;
};
const lines = (tag: string, from: number, n: number) =>
  `${Array.from({ length: n }, (_, i) => albLine(tag, from + i)).join('\n')}\n`;

describe('S3 sources (moto: S3, SQS, SNS)', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let sqs: SQSClient;
  let runtime: IngestRuntime;
  const work = mkdtempSync(join(tmpdir(), 'gw-s3-'));
  const queues: Record<string, string> = {};

  const settings = (sources: SourceConfig[], highWaterMark = 4) => ({
    elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
    redis: { url: ctx.redisUrl, prefix: ctx.prefix },
    ingest: { httpPort: 0, highWaterMark, sources },
  });
  /** A source as the configuration loader makes it (defaults filled in, validated). */
  const s3Source = (name: string, s3: Record<string, unknown>): SourceConfig =>
    loadConfig({
      env: {},
      overrides: settings([
        {
          name,
          type: 's3',
          s3: { endpoint: moto.url, region: 'us-east-1', forcePathStyle: true, pollInterval: '1s', ...s3 },
        } as unknown as SourceConfig,
      ]),
    }).ingest.sources[0]!;
  const pullSource = (source: SourceConfig) =>
    createPullSource({
      source,
      producer: runtime.producer,
      redis: runtime.redis,
      prefix: ctx.prefix,
      onError: (line) => console.error(line),
    });
  const put = (key: string, body: string | Buffer) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  const position = async (source: string, url: string): Promise<ObjectPosition | undefined> => {
    const hashed = await runtime.redis.hget(`${ctx.prefix}:pull:${source}:objects`, url);
    const keyed = hashed ?? (await runtime.redis.get(`${ctx.prefix}:pull:${source}:object:${url}`));
    return keyed ? (JSON.parse(keyed) as ObjectPosition) : undefined;
  };
  const queueDepth = async (url: string) => {
    const a = (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes!;
    return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
  };
  /** A child `ingest sources` process with these sources (the credentials the usual way: environment). */
  const sourcesProcess = (sources: SourceConfig[]) => {
    const file = join(work, `${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify(settings(sources)));
    return () =>
      startSourcesProcess(file, {
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
      });
  };

  beforeAll(async () => {
    moto = await startMoto();
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    s3 = new S3Client({ ...moto.aws, forcePathStyle: true });
    sqs = new SQSClient(moto.aws);
    const sns = new SNSClient(moto.aws);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (const name of ['direct', 'sns']) {
      queues[name] = (await sqs.send(new CreateQueueCommand({ QueueName: `${ctx.prefix}-${name}` })))
        .QueueUrl!;
    }
    const arn = async (url: string) =>
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
        .Attributes!.QueueArn!;
    const topic = (await sns.send(new CreateTopicCommand({ Name: `${ctx.prefix}-objects` }))).TopicArn!;
    await sns.send(
      new SubscribeCommand({ TopicArn: topic, Protocol: 'sqs', Endpoint: await arn(queues.sns!) }),
    );
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              QueueArn: await arn(queues.direct!),
              Events: ['s3:ObjectCreated:*'],
              Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'direct/' }] } },
            },
          ],
          TopicConfigurations: [
            {
              TopicArn: topic,
              Events: ['s3:ObjectCreated:*'],
              Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'sns/' }] } },
            },
          ],
        },
      }),
    );
    runtime = await startIngest(loadConfig({ env: {}, overrides: settings([], 4) }), {
      workers: 1,
      refresh: true,
    });
  });
  afterAll(async () => {
    await runtime?.close();
    await moto?.stop();
    await ctx.cleanup();
  });

  it('bucket listing reads each object once, its checkpoints survive a restart, and new objects are picked up', async () => {
    const source = s3Source('s3-list', { bucket, prefix: 'AWSLogs/' });
    await put(albKey(0), gzipSync(lines('list', 0, 300)));
    const second5 = albKey(5);
    await put(second5, gzipSync(lines('list', 300, 300)));
    // a plain (not gzip) object beside them, with a CRLF ending and no final newline
    await put(`${ALB_DIR}manual-export.log`, `${albLine('list', 600)}\r\n${albLine('list', 601)}`);
    const first = await pullSource(source);
    await first.start();
    expect(await waitForEvents(ctx.es, ctx.prefix, 'list', 602)).toEqual({ events: 602, maxPerPath: 1 });
    await eventually(
      () => position('s3-list', `s3://${bucket}/${second5}`),
      (p) => p?.done === true,
    );
    await first.stop();
    expect(first.status().records).toBe(602);

    // The sources status and /metrics show the pull source's progress.
    const admin = new IngestAdmin({
      es: ctx.es,
      redis: runtime.redis,
      prefix: ctx.prefix,
      queuePrefix: ctx.prefix,
      sources: [source],
      producer: runtime.producer,
    });
    const [status] = await admin.sources();
    expect(status).toMatchObject({
      name: 's3-list',
      type: 's3',
      backlog: { objects_pending: 0, bytes_behind: 0 },
    });
    const metrics = await registry.metrics();
    expect(metrics).toContain('gatewatch_source_objects_pending{source="s3-list",type="s3"} 0');
    expect(metrics).toMatch(/gatewatch_source_records_queued_total\{source="s3-list",type="s3"\} 602/);

    // A new process (same Redis) reads only what is new.
    const fresh = albKey(10);
    await put(fresh, gzipSync(lines('list', 700, 50)));
    const second = await pullSource(source);
    await second.start();
    expect(await waitForEvents(ctx.es, ctx.prefix, 'list', 652)).toEqual({ events: 652, maxPerPath: 1 });
    await new Promise((r) => setTimeout(r, 1_500)); // another poll or two: nothing more
    await second.stop();
    expect(second.status().records).toBe(50);
  });

  it('bucket listing: a SIGKILL in the middle of a large gzip object loses and doubles nothing', async () => {
    const total = 16_000;
    const key = `crash/${DAY}/big.log.gz`;
    await put(key, gzipSync(lines('listcrash', 0, total)));
    const start = sourcesProcess([s3Source('s3-crash', { bucket, prefix: 'crash/' })]);
    const first = await start();
    const url = `s3://${bucket}/${key}`;
    // Back-pressure (high-water mark 4 jobs) holds the source mid-object.
    const mid = await eventually(
      () => position('s3-crash', url),
      (p) => (p?.lines ?? 0) > 4_000,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    // The backlog shows in the sources status while it reads.
    const admin = new IngestAdmin({
      es: ctx.es,
      redis: runtime.redis,
      prefix: ctx.prefix,
      queuePrefix: ctx.prefix,
      sources: [s3Source('s3-crash', { bucket })],
      producer: runtime.producer,
    });
    const [status] = await eventually(
      () => admin.sources(),
      ([s]) => s?.backlog !== undefined,
    );
    expect(status!.backlog?.objects_pending).toBe(1);
    expect(status!.backlog?.bytes_behind).toBeGreaterThan(0);
    await kill(first.child);
    expect(mid?.done).toBeFalsy();
    // killed mid-object: the checkpoint it left is part-way
    expect((await position('s3-crash', url))?.done).toBeFalsy();
    const atKill = await eventCounts(ctx.es, ctx.prefix, 'listcrash');
    expect(atKill.events).toBeLessThan(total);

    const second = await start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'listcrash', total, 150_000)).toEqual({
        events: total,
        maxPerPath: 1,
      });
      const end = await eventually(
        () => position('s3-crash', url),
        (p) => p?.done === true,
      );
      expect(end, second.output()).toMatchObject({ done: true, lines: total });
    } finally {
      await kill(second.child, 'SIGTERM');
    }
  });

  it('bucket listing: a corrupt gzip and a binary object go to dead letters with their reason; the source reads on', async () => {
    const good = gzipSync(lines('bad', 0, 100));
    const corrupt = Buffer.from(good);
    corrupt.fill(0x55, 200, 260); // damage the deflate stream part-way
    await put(`bad/${DAY}/a-corrupt.log.gz`, corrupt);
    await put(
      `bad/${DAY}/b-image.log`,
      Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(4096)]),
    );
    await put(
      `bad/${DAY}/c-zstd.log.zst`,
      Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(64)]),
    );
    await put(`bad/${DAY}/d-good.log.gz`, gzipSync(lines('bad', 1000, 50)));
    const source = await pullSource(s3Source('s3-bad', { bucket, prefix: 'bad/' }));
    await source.start();
    try {
      const letters = await eventually(
        () => deadLetters(ctx.es, ctx.prefix, 's3-bad'),
        (d) => d.length >= 3,
      );
      const byObject = Object.fromEntries(letters.map((d) => [d.raw.split(' ')[0], d]));
      expect(byObject[`s3://${bucket}/bad/${DAY}/a-corrupt.log.gz`]).toMatchObject({
        stage: 'read',
        reason: expect.stringMatching(/^gzip data corrupt after line \d+/),
      });
      expect(byObject[`s3://${bucket}/bad/${DAY}/b-image.log`]?.reason).toMatch(/binary content/);
      expect(byObject[`s3://${bucket}/bad/${DAY}/c-zstd.log.zst`]?.reason).toBe(
        'zstd-compressed object: only gzip and plain text are read',
      );
      // the good object after them is read in full
      const good = await eventually(
        () => ctx.countEvents({ wildcard: { 'url.path': '/v1/bad/items/10??' } }),
        (n) => n >= 50,
      );
      expect(good).toBe(50);
      expect((await eventCounts(ctx.es, ctx.prefix, 'bad')).maxPerPath).toBe(1);
    } finally {
      await source.stop();
    }
  });

  it('SQS notifications: test events skipped, each object read once, the message deleted after; a SIGKILL mid-object loses and doubles nothing', async () => {
    const total = 12_000;
    // the notification configuration sent an s3:TestEvent already; add a non-object event too
    const start = sourcesProcess([s3Source('s3-sqs', { queueUrl: queues.direct, visibilityTimeout: '4s' })]);
    await put(`direct/${DAY}/small.log`, lines('sqs', 0, 20));
    await put(`direct/${DAY}/big.log.gz`, gzipSync(lines('sqs', 100, total)));
    await put('outside/not-notified.log', lines('sqs', 90_000, 5));
    const first = await start();
    const url = `s3://${bucket}/direct/${DAY}/big.log.gz`;
    await eventually(
      () => position('s3-sqs', url),
      (p) => (p?.lines ?? 0) > 3_000,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await kill(first.child);
    expect((await position('s3-sqs', url))?.done).toBeFalsy();
    expect((await eventCounts(ctx.es, ctx.prefix, 'sqs')).events).toBeLessThan(total + 20);

    // The message comes back after its visibility timeout; the position resumes it.
    const second = await start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'sqs', total + 20, 150_000)).toEqual({
        events: total + 20,
        maxPerPath: 1,
      });
      expect(
        await eventually(
          () => queueDepth(queues.direct!),
          (n) => n === 0,
        ),
      ).toBe(0);
    } finally {
      await kill(second.child, 'SIGTERM');
    }
  });

  it('SNS-wrapped notifications: objects read, a binary object dead-lettered, every message deleted', async () => {
    await put(`sns/${DAY}/a.log.gz`, gzipSync(lines('sns', 0, 200)));
    await put(`sns/${DAY}/b.bin`, randomBytes(2048));
    await put(`sns/${DAY}/c.log`, lines('sns', 500, 30));
    const source = await pullSource(s3Source('s3-sns', { queueUrl: queues.sns }));
    await source.start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'sns', 230)).toEqual({ events: 230, maxPerPath: 1 });
      const letters = await eventually(
        () => deadLetters(ctx.es, ctx.prefix, 's3-sns'),
        (d) => d.length >= 1,
      );
      expect(letters).toEqual([
        expect.objectContaining({
          stage: 'read',
          raw: expect.stringContaining(`s3://${bucket}/sns/${DAY}/b.bin`),
        }),
      ]);
      expect(
        await eventually(
          () => queueDepth(queues.sns!),
          (n) => n === 0,
        ),
      ).toBe(0);
    } finally {
      await source.stop();
    }
  });

  it('replay s3://bucket/prefix reads only the date partitions --since/--until can need, into the embedded store', async () => {
    const dir = (d: string) => `replay/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/${d}/`;
    await put(`${dir('20')}a_20261120T1000Z_x.log.gz`, gzipSync(lines('rpl', 0, 10)));
    await put(`${dir('23')}b_20261123T1000Z_x.log.gz`, gzipSync(lines('rpl', 100, 10))); // events on the 23rd, 10:01:40…
    await put(`${dir('23')}c_20261123T1100Z_x.log`, randomBytes(512)); // not text: a dead letter
    await put(`${dir('26')}d_20261126T1000Z_x.log.gz`, gzipSync(lines('rpl', 200, 10)));
    const summary = await replayJson(
      [`s3://${bucket}/replay/?endpoint=${encodeURIComponent(moto.url)}&pathStyle=1&region=us-east-1`],
      ['--since', '2026-11-23T00:00:00Z', '--until', '2026-11-24T00:00:00Z'],
      { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
    );
    // the 20th and the 26th are not even read; the binary object is a dead letter
    expect([summary.records, summary.events, summary.deadLetters]).toEqual([11, 10, 1]);
  });
});
