/**
 * CloudWatch Logs source against moto in server mode, through a small HTTP proxy that plays
 * what moto never does but AWS does: ThrottlingException answers, and pages that come back
 * empty with a nextToken. Into a real Redis queue and Elasticsearch, counted by event id;
 * checkpoints per group and stream across a restart and a SIGKILL mid-window. Subscription
 * filter payloads reaching the Firehose endpoint are unwrapped, and a broken record is
 * dead-lettered without failing the delivery.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../core/config/load.ts';
import type { SourceConfig } from '../../../core/config/schema.ts';
import { integrationContext } from '../../../test/harness/context.ts';
import { eventually } from '../../../test/harness/eventually.ts';
import { type MotoServer, startMoto } from '../../../test/harness/moto.ts';
import { type IngestRuntime, startIngest } from '../../runtime.ts';
import { buildHttpSourceServer } from '../http/server.ts';
import { sourceProgressKey } from '../progress.ts';
import { createPullSource } from '../pull.ts';
import {
  apiGatewayLine,
  deadLetters,
  eventCounts,
  kill,
  replayJson,
  startSourcesProcess,
  waitForEvents,
} from '../testing/pull-fixtures.ts';
import type { GroupCheckpoint } from './cloudwatch.ts';

const ctx = integrationContext('cloudwatch');

/**
 * Forwards to moto; every third FilterLogEvents call is throttled, and the first page of each
 * window is an empty page with a token that stands for "the same request again".
 */
function faultyProxy(target: string): Promise<{ url: string; server: Server; throttled: () => number }> {
  let calls = 0;
  let throttled = 0;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks).toString('utf8');
    if (req.headers['x-amz-target'] === 'Logs_20140328.FilterLogEvents') {
      if (++calls % 3 === 0) {
        throttled++;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
        return;
      }
      const request = JSON.parse(body) as { nextToken?: string };
      if (request.nextToken === undefined) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ events: [], searchedLogStreams: [], nextToken: 'gw-empty-page' }));
        return;
      }
      if (request.nextToken === 'gw-empty-page') {
        delete request.nextToken;
        body = JSON.stringify(request);
      }
    }
    const headers = { ...req.headers } as Record<string, string>;
    delete headers['content-length'];
    const answer = await fetch(`${target}${req.url}`, {
      method: req.method!,
      headers,
      body: body || undefined,
    });
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        server,
        throttled: () => throttled,
      }),
    ),
  );
}

describe('CloudWatch Logs source (moto, with throttling and empty pages)', () => {
  let moto: MotoServer;
  let proxy: Awaited<ReturnType<typeof faultyProxy>>;
  let logs: CloudWatchLogsClient;
  let runtime: IngestRuntime;
  const work = mkdtempSync(join(tmpdir(), 'gw-cwl-'));
  const group = (name: string) => `/aws/apigateway/${ctx.prefix}-${name}`;

  const settings = (sources: unknown[]) => ({
    elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
    redis: { url: ctx.redisUrl, prefix: ctx.prefix },
    ingest: { httpPort: 0, highWaterMark: 4, sources },
  });
  const cwSource = (name: string, cw: Record<string, unknown>): SourceConfig =>
    loadConfig({
      env: {},
      overrides: settings([
        {
          name,
          type: 'cloudwatch',
          cloudwatch: { endpoint: proxy.url, region: 'us-east-1', pollInterval: '1s', latency: '0s', ...cw },
        },
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
  /** Events into a stream, 5 ms apart, the last `ageMs` before now. */
  const put = async (g: string, stream: string, tag: string, from: number, n: number, ageMs = 60_000) => {
    const base = Date.now() - ageMs;
    for (let i = 0; i < n; i += 2_000) {
      await logs.send(
        new PutLogEventsCommand({
          logGroupName: g,
          logStreamName: stream,
          logEvents: Array.from({ length: Math.min(2_000, n - i) }, (_, j) => ({
            timestamp: base - (n - i - j) * 5,
            message: apiGatewayLine(tag, from + i + j),
          })),
        }),
      );
    }
  };
  const checkpoint = async (source: string, g: string) => {
    const raw = await runtime.redis.hget(`${ctx.prefix}:pull:${source}:groups`, g);
    return raw ? (JSON.parse(raw) as GroupCheckpoint) : undefined;
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await faultyProxy(moto.url);
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    logs = new CloudWatchLogsClient(moto.aws);
    for (const name of ['gateway-a', 'gateway-b', 'crash']) {
      await logs.send(new CreateLogGroupCommand({ logGroupName: group(name) }));
      for (const stream of ['stream-1', 'stream-2'])
        await logs.send(new CreateLogStreamCommand({ logGroupName: group(name), logStreamName: stream }));
    }
    runtime = await startIngest(loadConfig({ env: {}, overrides: settings([]) }), {
      workers: 1,
      refresh: true,
    });
  });
  afterAll(async () => {
    await runtime?.close();
    proxy?.server.close();
    await moto?.stop();
    await ctx.cleanup();
  });

  it('reads log groups by prefix once, through throttling and empty pages, with checkpoints per group and stream across a restart', async () => {
    await put(group('gateway-a'), 'stream-1', 'cw', 0, 120);
    await put(group('gateway-a'), 'stream-2', 'cw', 1000, 80);
    await put(group('gateway-b'), 'stream-1', 'cw', 2000, 100);
    const source = cwSource('cw-gateways', { logGroupPrefix: `/aws/apigateway/${ctx.prefix}-gateway-` });
    const first = await pullSource(source);
    await first.start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'cw', 300)).toEqual({ events: 300, maxPerPath: 1 });
      const a = await eventually(
        () => checkpoint('cw-gateways', group('gateway-a')),
        (c) => c?.token === undefined && Object.keys(c?.streams ?? {}).length === 2,
      );
      expect(Object.keys(a!.streams).sort()).toEqual(['stream-1', 'stream-2']);
    } finally {
      await first.stop();
    }
    expect(first.status().records).toBe(300);
    expect(proxy.throttled()).toBeGreaterThan(0);
    const progress = await runtime.redis.hgetall(sourceProgressKey(ctx.prefix, 'cw-gateways'));
    expect(Number(progress.throttled)).toBeGreaterThan(0);

    // Events logged after the last poll: a restarted source reads those only.
    await put(group('gateway-b'), 'stream-2', 'cw', 3000, 40, 0);
    const second = await pullSource(source);
    await second.start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'cw', 340)).toEqual({ events: 340, maxPerPath: 1 });
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      await second.stop();
    }
    expect(second.status().records).toBe(40);
  });

  it('a SIGKILL mid-window resumes from the saved page token: nothing lost, nothing doubled', async () => {
    const total = 12_000;
    await put(group('crash'), 'stream-1', 'cwcrash', 0, total / 2);
    await put(group('crash'), 'stream-2', 'cwcrash', total / 2, total / 2);
    const file = join(work, 'crash.json');
    writeFileSync(
      file,
      JSON.stringify(
        settings([
          {
            name: 'cw-crash',
            type: 'cloudwatch',
            cloudwatch: {
              logGroups: [group('crash')],
              endpoint: proxy.url,
              region: 'us-east-1',
              latency: '0s',
              pollInterval: '1s',
            },
          },
        ]),
      ),
    );
    const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    const first = await startSourcesProcess(file, env);
    // back-pressure (4 jobs) holds it after a page of up to 5,000 events
    const mid = await eventually(
      () => checkpoint('cw-crash', group('crash')),
      (c) => (c?.page ?? 0) >= 2 && c?.token !== undefined,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await kill(first.child);
    expect(mid?.token).toBeDefined();
    expect((await eventCounts(ctx.es, ctx.prefix, 'cwcrash')).events).toBeLessThan(total);
    const second = await startSourcesProcess(file, env);
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'cwcrash', total, 150_000)).toEqual({
        events: total,
        maxPerPath: 1,
      });
    } finally {
      await kill(second.child, 'SIGTERM');
    }
  });

  it('unwraps subscription-filter payloads arriving at the Firehose endpoint; a broken record is dead-lettered, the delivery accepted', async () => {
    const token = 'tok-firehose-cwl-0123456789';
    const source = loadConfig({
      env: {},
      overrides: settings([{ name: 'cw-firehose', type: 'http', tokens: [token] }]),
    }).ingest.sources[0]!;
    const http = buildHttpSourceServer({
      sources: [source],
      producer: runtime.producer,
      maxBodyBytes: 1 << 20,
    });
    await http.listen({ host: '127.0.0.1', port: 0 });
    try {
      const envelope = (messageType: string, from: number, n: number) =>
        gzipSync(
          JSON.stringify({
            messageType,
            owner: '123456789012',
            logGroup: group('gateway-a'),
            logStream: 'stream-1',
            subscriptionFilters: ['to-gatewatch'],
            logEvents: Array.from({ length: n }, (_, i) => ({
              id: String(36_000_000 + from + i),
              timestamp: Date.now(),
              message: apiGatewayLine('cwsub', from + i),
            })),
          }),
        ).toString('base64');
      // two envelopes back to back in one record, as Firehose may concatenate them
      const twoInOne = gzipSync(
        Buffer.concat([
          Buffer.from(
            JSON.stringify({
              messageType: 'DATA_MESSAGE',
              logEvents: [{ id: '1', timestamp: 1, message: apiGatewayLine('cwsub', 100) }],
            }),
          ),
          Buffer.from(
            JSON.stringify({
              messageType: 'DATA_MESSAGE',
              logEvents: [{ id: '2', timestamp: 1, message: apiGatewayLine('cwsub', 101) }],
            }),
          ),
        ]),
      ).toString('base64');
      const broken = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(30, 7)]).toString('base64');
      const response = await fetch(`${http.listeningOrigin}/firehose`, {
        method: 'POST',
        headers: { 'x-amz-firehose-access-key': token, 'x-amz-firehose-request-id': 'cwl-req-1' },
        body: JSON.stringify({
          requestId: 'cwl-req-1',
          timestamp: Date.now(),
          records: [
            { data: envelope('CONTROL_MESSAGE', 0, 1) },
            { data: envelope('DATA_MESSAGE', 0, 25) },
            { data: twoInOne },
            { data: broken },
          ],
        }),
      });
      expect(response.status).toBe(200);
      // CONTROL_MESSAGE carries a test line that is not a log: only the DATA_MESSAGE events count
      expect(await waitForEvents(ctx.es, ctx.prefix, 'cwsub', 27)).toEqual({ events: 27, maxPerPath: 1 });
      const letters = await eventually(
        () => deadLetters(ctx.es, ctx.prefix, 'cw-firehose'),
        (d) => d.length >= 1,
      );
      expect(letters).toEqual([
        expect.objectContaining({
          stage: 'read',
          raw: 'firehose request cwl-req-1 record 3',
          reason: expect.stringMatching(/^Firehose record is gzip that does not inflate/),
        }),
      ]);
    } finally {
      await http.close();
    }
  });

  it('replay cloudwatch://<group prefix>* reads every matching group', async () => {
    const summary = await replayJson(
      [
        `cloudwatch:///aws/apigateway/${ctx.prefix}-gateway-*?endpoint=${encodeURIComponent(moto.url)}&region=us-east-1`,
      ],
      [],
      { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
    );
    // what the first test wrote to gateway-a and gateway-b
    expect([summary.records, summary.events, summary.deadLetters]).toEqual([340, 340, 0]);
  });
});
