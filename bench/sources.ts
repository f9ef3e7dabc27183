/**
 * bench:sources — events per second from gzip S3 objects into the ingest queue (the S3 bucket
 * listing source: list, download, gunzip, split lines, enqueue batches to Redis, checkpoint),
 * next to the ceiling measured in the same run on the same objects: downloading, gunzipping and
 * splitting them into lines with the same S3 client and the same concurrency, nothing queued.
 *
 *   npm run bench:sources [-- --objects 6 --lines 40000 --concurrency 2]
 *
 * S3 is moto in server mode (MOTO_URL, or moto_server started like the test harness does);
 * Redis is REDIS_URL or a redis-server started like the test harness does. All traffic stays on
 * loopback; the run is bounded by the object count.
 */

import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGunzip, gzipSync } from 'node:zlib';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../core/config/load.ts';
import { connectRedis } from '../core/queue/bullmq.ts';
import { IngestProducer } from '../ingest/pipeline/producer.ts';
import { createPullSource } from '../ingest/sources/pull.ts';
import { albLine } from '../ingest/sources/testing/pull-fixtures.ts';
import { createScrubber } from '../ingest/transforms/scrub.ts';
import { startMoto } from '../test/harness/moto.ts';
import { startRedisServer } from '../test/harness/redis.ts';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '6' },
    lines: { type: 'string', default: '40000' },
    concurrency: { type: 'string', default: '2' },
  },
});
const objects = Number(values.objects);
const perObject = Number(values.lines);
const concurrency = Number(values.concurrency);

const stops: (() => Promise<void>)[] = [];
const moto = await startMoto();
stops.push(() => moto.stop());
let redisUrl = process.env.REDIS_URL;
if (!redisUrl) {
  const redis = await startRedisServer();
  stops.push(() => redis.dispose());
  redisUrl = redis.url;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void Promise.allSettled(stops.map((stop) => stop())).finally(() => process.exit(130));
  });

const run = `bench${Date.now().toString(36)}`;
const bucket = `${run}-alb`;
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
const s3 = new S3Client({ ...moto.aws, forcePathStyle: true });
const redis = await connectRedis(redisUrl, 'producer');
const producer = new IngestProducer({
  producer: redis,
  queuePrefix: run,
  highWaterMark: 1_000_000,
  batchSize: 500,
  // as a receiver does: records are scrubbed before they are queued (part of what is measured)
  scrub: createScrubber({ fingerprintSecret: 'bench-fingerprint-secret-0123456789' }),
});

try {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const keys: string[] = [];
  let gzBytes = 0;
  let textBytes = 0;
  for (let o = 0; o < objects; o++) {
    const text = `${Array.from({ length: perObject }, (_, i) => albLine(`o${o}`, i)).join('\n')}\n`;
    const body = gzipSync(text);
    gzBytes += body.length;
    textBytes += Buffer.byteLength(text);
    const key = `AWSLogs/123456789012/elasticloadbalancing/us-east-1/${day}/bench_${o}.log.gz`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    keys.push(key);
  }
  const total = objects * perObject;
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `bench:sources — ${objects} gzip objects × ${perObject} ALB lines (${mb(gzBytes)} MB gzip, ${mb(textBytes)} MB text) in S3 (moto, ${moto.how}); concurrency ${concurrency}; node ${process.version}`,
  );

  // Ceiling: download + gunzip + split into lines, same client, same concurrency.
  let t = performance.now();
  let counted = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const key = keys[next++]!;
        const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        let rest = '';
        await pipeline(
          response.Body as NodeJS.ReadableStream,
          createGunzip(),
          async (chunks: AsyncIterable<Buffer>) => {
            for await (const chunk of chunks) {
              const parts = (rest + chunk.toString('utf8')).split('\n');
              rest = parts.pop()!;
              counted += parts.length;
            }
          },
        );
        if (rest) counted++;
      }
    }),
  );
  const ceilingSecs = (performance.now() - t) / 1000;
  if (counted !== total) throw new Error(`ceiling counted ${counted} lines, expected ${total}`);

  // The source: list → download → gunzip → lines → batches in Redis, checkpointed.
  const config = loadConfig({
    env: {},
    overrides: {
      redis: { url: redisUrl, prefix: run },
      ingest: {
        sources: [
          {
            name: 'bench-s3',
            type: 's3',
            s3: {
              bucket,
              endpoint: moto.url,
              region: 'us-east-1',
              forcePathStyle: true,
              pollInterval: '1h',
              concurrency,
            },
          },
        ],
      },
    },
  });
  const source = await createPullSource({
    source: config.ingest.sources[0]!,
    producer,
    redis,
    prefix: run,
    onError: (line) => console.error(line),
  });
  t = performance.now();
  await source.start();
  while (source.status().records < total) {
    if (performance.now() - t > 600_000) throw new Error('source did not finish within 10 minutes');
    await new Promise((r) => setTimeout(r, 20));
  }
  const sourceSecs = (performance.now() - t) / 1000;
  await source.stop();
  const jobs = await producer.currentDepth();

  const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US');
  // For context, the queue side's own limit: the same lines, already in memory, enqueued alone.
  await producer.queue.obliterate({ force: true });
  const inMemory = Array.from({ length: objects }, (_, o) =>
    Array.from({ length: perObject }, (_, i) => albLine(`o${o}`, i)),
  );
  t = performance.now();
  next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < inMemory.length) {
        const o = next++;
        const lines = inMemory[o]!;
        for (let i = 0; i < lines.length; i += 4_000)
          await producer.enqueue(
            { source: 'bench-s3', receivedAt: Date.now() },
            lines.slice(i, i + 4_000),
            `mem${o}:${i}`,
          );
      }
    }),
  );
  const enqueueSecs = (performance.now() - t) / 1000;

  const rows = [
    [
      'ceiling: download + gunzip + split lines',
      rate(total, ceilingSecs),
      `${(textBytes / 1024 / 1024 / ceilingSecs).toFixed(1)} MB/s text`,
      ceilingSecs.toFixed(2),
    ],
    [
      'S3 listing source → Redis queue',
      rate(total, sourceSecs),
      `${(textBytes / 1024 / 1024 / sourceSecs).toFixed(1)} MB/s text`,
      sourceSecs.toFixed(2),
    ],
    [
      '(context) the same lines, in memory, enqueued alone',
      rate(total, enqueueSecs),
      `${(textBytes / 1024 / 1024 / enqueueSecs).toFixed(1)} MB/s text`,
      enqueueSecs.toFixed(2),
    ],
  ];
  console.log('\n| measured | events/s | throughput | seconds |\n| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(
    `\nsource / ceiling: ${((ceilingSecs / sourceSecs) * 100).toFixed(0)} % — ${total.toLocaleString('en-US')} events in ${jobs} queue jobs`,
  );
} finally {
  await producer.queue.obliterate({ force: true }).catch(() => undefined);
  const keys = await redis.keys(`${run}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await producer.close();
  redis.disconnect();
  await Promise.allSettled(stops.map((stop) => stop()));
}
