/**
 * `gatewatch replay` from the pull sources' stores (URLs in ./remote-url.ts): a URL expands to
 * the inputs it names — the objects or blobs under a prefix (only the date partitions that
 * can hold events between --since and --until, ./layouts.ts), the log groups of a name or
 * prefix, a topic — and each input is read as batches of lines with the same readers the pull
 * sources use. Nothing is checkpointed or committed: a replay is a read-only copy.
 */
import type { FilterLogEventsCommandOutput } from '@aws-sdk/client-cloudwatch-logs';
import { listObjects, type TimeRange } from './layouts.ts';
import { objectLineBatches } from './objects.ts';
import { parseRemoteInput, type RemoteInput, remoteInputUrl } from './remote-url.ts';

const LINES = 2_000;

function awsSettings(input: RemoteInput) {
  const o = input.options;
  return {
    region: o.region,
    endpoint: o.endpoint,
    profile: o.profile,
    forcePathStyle: o.pathStyle === '1' || o.pathStyle === 'true',
  };
}

async function azureContainer(input: RemoteInput) {
  const { blobServiceClient } = await import('./azure-blob.ts');
  const service = await blobServiceClient({ accountUrl: input.options.accountUrl });
  return service.getContainerClient(input.target);
}

/** The inputs one URL names, in listing order. */
export async function expandRemoteInput(url: string, range: TimeRange = {}): Promise<string[]> {
  const input = parseRemoteInput(url);
  switch (input.scheme) {
    case 's3': {
      const { s3Client, s3Lister } = await import('./aws/clients.ts');
      const lister = s3Lister(s3Client(awsSettings(input)), input.target);
      const out: string[] = [];
      for await (const o of listObjects(lister, input.path, range)) out.push(remoteInputUrl(input, o.key));
      return out;
    }
    case 'azblob': {
      const { blobLister } = await import('./azure-blob.ts');
      const lister = blobLister(await azureContainer(input));
      const out: string[] = [];
      for await (const o of listObjects(lister, input.path, range)) out.push(remoteInputUrl(input, o.key));
      return out;
    }
    case 'cloudwatch': {
      if (!input.target.endsWith('*')) return [url];
      const { CloudWatchLogsClient, DescribeLogGroupsCommand } = await import(
        '@aws-sdk/client-cloudwatch-logs'
      );
      const { awsClientOptions } = await import('./aws/clients.ts');
      const client = new CloudWatchLogsClient(awsClientOptions(awsSettings(input)));
      const names: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new DescribeLogGroupsCommand({
            logGroupNamePrefix: input.target.slice(0, -1),
            ...(token ? { nextToken: token } : {}),
          }),
        );
        for (const g of page.logGroups ?? []) if (g.logGroupName) names.push(g.logGroupName);
        token = page.nextToken;
      } while (token);
      const query = new URLSearchParams(input.options).toString();
      return names.map((n) => `cloudwatch://${encodeURIComponent(n)}${query ? `?${query}` : ''}`);
    }
    case 'kafka':
      return [url];
  }
}

/** Lines of one input, in batches. Throws UnreadableInputError for objects that are not text. */
export async function* remoteLineBatches(url: string, range: TimeRange = {}): AsyncGenerator<string[]> {
  const input = parseRemoteInput(url);
  switch (input.scheme) {
    case 's3': {
      const { s3Client, s3Object } = await import('./aws/clients.ts');
      const object = s3Object(s3Client(awsSettings(input)), input.target, input.path, { etag: '' });
      for await (const batch of objectLineBatches(object, undefined, { linesPerBatch: LINES }))
        if (batch.lines.length > 0) yield batch.lines;
      return;
    }
    case 'azblob': {
      const { blobObject } = await import('./azure-blob.ts');
      const object = blobObject(await azureContainer(input), {
        key: input.path,
        etag: '',
        size: 0,
        modified: 0,
      });
      for await (const batch of objectLineBatches({ ...object, size: undefined } as never, undefined, {
        linesPerBatch: LINES,
      }))
        if (batch.lines.length > 0) yield batch.lines;
      return;
    }
    case 'cloudwatch':
      yield* cloudWatchLines(input, range);
      return;
    case 'kafka':
      yield* kafkaLines(input);
      return;
  }
}

async function* cloudWatchLines(input: RemoteInput, range: TimeRange): AsyncGenerator<string[]> {
  const { CloudWatchLogsClient, FilterLogEventsCommand } = await import('@aws-sdk/client-cloudwatch-logs');
  const { awsClientOptions } = await import('./aws/clients.ts');
  const { isThrottle } = await import('./aws/cloudwatch.ts');
  const { backoffMs } = await import('./pull-source.ts');
  const client = new CloudWatchLogsClient({ ...awsClientOptions(awsSettings(input)), maxAttempts: 1 });
  let token: string | undefined;
  let attempt = 0;
  do {
    let page: FilterLogEventsCommandOutput;
    try {
      page = await client.send(
        new FilterLogEventsCommand({
          logGroupName: input.target,
          ...(range.since !== undefined ? { startTime: range.since } : {}),
          ...(range.until !== undefined ? { endTime: range.until - 1 } : {}),
          ...(input.options.stream ? { logStreamNamePrefix: input.options.stream } : {}),
          ...(token ? { nextToken: token } : {}),
          limit: 10_000,
        }),
      );
      attempt = 0;
    } catch (err) {
      if (!isThrottle(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.max(200, backoffMs(attempt++, 30_000))));
      continue;
    }
    const lines = (page.events ?? []).flatMap((e) => (e.message ? [e.message.replace(/\r?\n$/, '')] : []));
    if (lines.length > 0) yield lines;
    token = page.nextToken;
  } while (token);
}

/** A topic from its beginning to the end it had when the replay started (no offsets committed). */
async function* kafkaLines(input: RemoteInput): AsyncGenerator<string[]> {
  const { Consumer } = await import('@platformatic/kafka');
  const { kafkaConnection, recordLines } = await import('./kafka.ts');
  const o = input.options;
  const sasl = o.sasl as 'plain' | 'scram-sha-256' | 'scram-sha-512' | undefined;
  const connection = kafkaConnection({
    brokers: input.target.split(','),
    topics: [input.path],
    groupId: 'gatewatch-replay',
    clientId: 'gatewatch-replay',
    start: 'earliest',
    tls: o.tls === '1' || o.tls === 'true',
    ...(o.ca ? { tlsCaFile: o.ca } : {}),
    ...(sasl
      ? {
          sasl: {
            mechanism: sasl,
            username: o.username ?? '',
            password: process.env.KAFKA_SASL_PASSWORD ?? '',
          },
        }
      : {}),
  });
  const consumer = new Consumer({
    ...connection,
    groupId: `gatewatch-replay-${process.pid}-${Date.now()}`,
    autocommit: false,
    maxWaitTime: 500,
  });
  try {
    const ends = (await consumer.listOffsets({ topics: [input.path] })).get(input.path) ?? [];
    const left = new Set(ends.flatMap((end, p) => (end > 0n ? [p] : [])));
    if (left.size === 0) return;
    const stream = await consumer.consume({ topics: [input.path], mode: 'earliest', autocommit: false });
    let batch: string[] = [];
    try {
      for await (const m of stream) {
        const read = recordLines(m.value);
        if ('lines' in read) batch.push(...read.lines);
        if (m.offset + 1n >= (ends[m.partition] ?? 0n)) left.delete(m.partition);
        if (batch.length >= LINES || left.size === 0) {
          if (batch.length > 0) yield batch;
          batch = [];
        }
        if (left.size === 0) break;
      }
    } finally {
      await stream.close();
    }
  } finally {
    await consumer.close();
  }
}
