/**
 * Issue 18.4: nothing that reaches Redis's disk holds a secret in clear. A dedicated
 * redis-server (AOF on, snapshots uncompressed so that their bytes can be searched) takes
 * batches from the producer; its keys, values, append-only file and snapshot are searched for
 * every secret. The workers still derive what they need from the scrubbed records: the same key
 * fingerprints, JWT claims and event ids as the normaliser gives the raw lines, and a resent
 * batch adds nothing.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { type RedisServer, startRedisServer } from '../../test/harness/redis.ts';
import { type IngestRuntime, startIngest } from '../runtime.ts';
import { createIdentityResolver } from '../transforms/identity.ts';
import { createNormalizer } from './normalize.ts';

const ctx = integrationContext('queue-secrets');
const KEY = 'queue-secrets-fingerprint-key';

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const JWT = `${b64url({ alg: 'HS256' })}.${b64url({ sub: 'user-314', iss: 'https://idp.example' })}.cXVldWVkLWp3dC1zaWduYXR1cmUtc2VjcmV0`;
const API_KEY = 'k3y-queued-0123456789';
const SECRETS = [
  JWT.slice(JWT.lastIndexOf('.') + 1),
  API_KEY,
  'sk_live_51QueuedStripeKeyAbCd',
  'queuedSessionCookie42',
  'queuedSetCookie77',
  'Qu3ued-form-Pa55',
];

function kong(i: number): string {
  return JSON.stringify({
    request: {
      id: `req-${i}`,
      uri: `/v1/orders/${i}`,
      url: `https://api.example.com/v1/orders/${i}`,
      method: 'GET',
      headers: {
        host: 'api.example.com',
        'x-api-key': API_KEY,
        authorization: `Bearer ${JWT}`,
        cookie: `session=${SECRETS[3]}`,
      },
      size: 300,
    },
    response: { status: 200, headers: { 'set-cookie': `refresh=${SECRETS[4]}; Path=/` }, size: 100 },
    latencies: { kong: 1, proxy: 10, request: 12 },
    client_ip: `203.0.113.${i}`,
    started_at: 1_704_448_800_000 + i * 1000,
  });
}

const LINES = [
  ...Array.from({ length: 20 }, (_, i) => kong(i + 1)),
  `198.51.100.7 - - [05/Jan/2024:10:00:00 +0000] "GET /export?api_key=${SECRETS[2]}&page=1 HTTP/1.1" 200 512 "-" "curl/8.5"`,
  JSON.stringify({
    transaction: {
      client_ip: '198.51.100.8',
      time_stamp: 'Fri Jan  5 10:00:01 2024',
      unique_id: 'q-1',
      request: { method: 'POST', uri: '/login', headers: {}, body: `user=ann&password=${SECRETS[5]}` },
      response: { http_code: 403 },
      messages: [
        {
          message: 'SQLi',
          details: { ruleId: '942100', data: `Matched Data: x found within ARGS:password: ${SECRETS[5]}` },
        },
      ],
    },
  }),
];

/** Every key of a Redis database with its value, as text. */
async function redisContents(client: Redis): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', '500');
    cursor = next;
    for (const key of keys) {
      out.push(key);
      const type = await client.type(key);
      if (type === 'string') out.push((await client.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await client.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await client.lrange(key, 0, -1)));
      else if (type === 'set') out.push(JSON.stringify(await client.smembers(key)));
      else if (type === 'zset') out.push(JSON.stringify(await client.zrange(key, '0', '-1', 'WITHSCORES')));
      else if (type === 'stream') out.push(JSON.stringify(await client.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

/** Every file under Redis's data directory (append-only files, snapshot), as bytes read as latin1. */
function redisFiles(dir: string): { names: string[]; text: string } {
  const names: string[] = [];
  const parts: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        names.push(path.slice(dir.length + 1));
        parts.push(readFileSync(path).toString('latin1'));
      }
    }
  };
  walk(dir);
  return { names, text: parts.join('\n') };
}

function expectNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) expect(text.includes(secret), `${where} holds ${secret}`).toBe(false);
  expect(text.includes(JWT), `${where} holds the JWT`).toBe(false);
}

describe('the ingest queue and its files hold no secret', () => {
  let redis: RedisServer;
  let client: Redis;
  const runtimes: IngestRuntime[] = [];
  const config = () =>
    loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: redis.url, prefix: ctx.prefix },
        ingest: { fingerprintSecret: KEY, batchSize: 10 },
      },
    });

  beforeAll(async () => {
    redis = await startRedisServer({ extraArgs: ['--rdbcompression', 'no'] });
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const r of runtimes) await r.close();
    client?.disconnect();
    await redis?.dispose();
    await ctx.cleanup();
  });

  it('queues surrogates only, on disk too, and workers derive the raw lines’ fingerprints and ids from them', async () => {
    // a receiver without workers: the batches stay queued
    const receiver = await startIngest(config());
    runtimes.push(receiver);
    await receiver.producer.enqueue(
      { source: 'edge', receivedAt: 1_704_448_900_000 },
      LINES,
      'queue-secrets',
    );

    const queued = await redisContents(client);
    expect(queued).toContain('[REDACTED:');
    expectNoSecret(queued, 'a Redis key or value');
    await client.call('SAVE');
    const files = redisFiles(redis.dir);
    expect(files.names.some((n) => n.endsWith('.aof'))).toBe(true);
    expect(files.names).toContain('dump.rdb');
    // the files hold the queued batches (so the search below can fail), in scrubbed form
    expect(files.text).toContain('[REDACTED:');
    expectNoSecret(files.text, 'the append-only file or the snapshot');

    // Workers index them; what they derive equals what the normaliser gives the raw lines.
    const worker = await startIngest(config(), { workers: 1, refresh: true });
    runtimes.push(worker);
    const names = indexNames(ctx.prefix);
    expect(
      await eventually(
        () => ctx.countEvents(),
        (n) => n >= LINES.length,
        { timeoutMs: 60_000 },
      ),
    ).toBe(LINES.length);
    const stored = (
      await ctx.es.search<GatewatchEvent>({ index: names.eventsAlias, size: 100 })
    ).hits.hits.map((h) => h._source!);
    const direct = createNormalizer(config())
      .many(LINES, { source: 'edge', receivedAt: 1_704_448_900_000, records: [] })
      .flatMap((r) => (r.ok ? r.events : []));
    const byId = (events: GatewatchEvent[]) =>
      Object.fromEntries(
        events.map((e) => [
          e.event!.id,
          [e.gatewatch?.api_key?.fingerprint, e.gatewatch?.jwt?.sub, e.url?.path],
        ]),
      );
    expect(byId(stored)).toEqual(byId(direct));
    const fingerprint = createIdentityResolver({ fingerprintSecret: KEY }).fingerprint(API_KEY);
    expect(stored.filter((e) => e.gatewatch?.api_key?.fingerprint === fingerprint)).toHaveLength(20);
    expect(stored.filter((e) => e.gatewatch?.jwt?.sub === 'user-314')).toHaveLength(20);
    expectNoSecret(JSON.stringify(stored), 'an event document');

    // The same lines resent: the same ids, nothing added.
    await receiver.producer.enqueue(
      { source: 'edge', receivedAt: 1_704_448_900_000 },
      LINES,
      'queue-secrets-resent',
    );
    await eventually(
      () => receiver.producer.queue.getJobCounts('wait', 'active', 'delayed'),
      (c) => (c.wait ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0,
      { timeoutMs: 60_000 },
    );
    expect(await ctx.countEvents()).toBe(LINES.length);

    // After processing (completed jobs, counters, the AOF's history): still nothing.
    expectNoSecret(await redisContents(client), 'a Redis key or value after processing');
    await client.call('SAVE');
    expectNoSecret(redisFiles(redis.dir).text, 'the append-only file or the snapshot after processing');
  });
});
