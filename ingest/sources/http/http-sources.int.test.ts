import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../core/config/load.ts';
import type { GatewatchConfig } from '../../../core/config/schema.ts';
import { indexNames } from '../../../core/store/elasticsearch.ts';
import { integrationContext } from '../../../test/harness/context.ts';
import { eventually } from '../../../test/harness/eventually.ts';
import { IngestAdmin } from '../../admin.ts';
import { type IngestRuntime, startIngest } from '../../runtime.ts';

const ctx = integrationContext('http-sources');
const TOKEN = 'tok-http-sources-0123456789';
const OTHER = 'tok-other-source-0123456789';

const nginx = (n: number, ip = '203.0.113.9') =>
  `${ip} - - [23/Nov/2026:10:00:${String(n % 60).padStart(2, '0')} +0000] "GET /api/v1/users/${1000 + n}?page=2 HTTP/1.1" 200 ${512 + n} "-" "curl/8.5.0"`;

describe('HTTP push sources deliver into Elasticsearch through Redis', () => {
  let runtime: IngestRuntime;
  let base: string;
  let config: GatewatchConfig;
  const names = indexNames(ctx.prefix);

  const count = (query?: object) => ctx.countEvents(query);
  /** Wait until the queue is drained and the expected documents are visible. */
  const settle = async (expected: number, query?: object) => {
    for (let i = 0; i < 200; i++) {
      const depth = await runtime.producer.currentDepth();
      const n = await count(query);
      if (depth === 0 && n >= expected) return n;
      await new Promise((r) => setTimeout(r, 100));
    }
    return count(query);
  };

  beforeAll(async () => {
    config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
        ingest: {
          httpPort: 0,
          sources: [
            { name: 'edge', type: 'http', tokens: [TOKEN] },
            { name: 'other', type: 'http', tokens: [OTHER] },
          ],
        },
      },
    });
    runtime = await startIngest(config, { workers: 1, http: true, refresh: true });
    const address = runtime.http!.server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await runtime?.close();
    await ctx.cleanup();
  });

  it('accepts NDJSON with a source token and indexes every line once, even when sent twice', async () => {
    const body = Array.from({ length: 25 }, (_, i) => nginx(i)).join('\n');
    const send = () =>
      fetch(`${base}/ingest/edge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' },
        body,
      });
    const first = await send();
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ accepted: 25, batches: 1 });
    expect(await settle(25)).toBe(25);
    expect((await send()).status).toBe(202);
    await settle(25);
    // Wait for the second job to be consumed, then the count must not have moved.
    for (let i = 0; i < 100 && (await runtime.producer.currentDepth()) > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await count()).toBe(25);
    const hit = await ctx.es.search({
      index: names.eventsAlias,
      query: { term: { 'url.path': '/api/v1/users/1003' } },
    });
    const doc = hit.hits.hits[0]!._source as Record<string, any>;
    expect(doc.source.ip).toBe('203.0.113.9');
    expect(doc.gatewatch.source.name).toBe('edge');
    expect(doc.http.response.status_code).toBe(200);
  });

  it('rejects missing, wrong and foreign tokens', async () => {
    const url = `${base}/ingest/edge`;
    expect((await fetch(url, { method: 'POST', body: nginx(1) })).status).toBe(401);
    expect(
      (
        await fetch(url, {
          method: 'POST',
          headers: { authorization: 'Bearer nope-nope-nope-nope' },
          body: nginx(1),
        })
      ).status,
    ).toBe(401);
    expect(
      (await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${OTHER}` }, body: nginx(1) }))
        .status,
    ).toBe(403);
  });

  it('refuses an unauthenticated push on its headers, before reading its body, and closes the connection', async () => {
    const port = (runtime.http!.server.address() as { port: number }).port;
    // A sender announcing 30 MB and sending only the first 64 KB: the answer must not wait for the rest.
    const refusal = (path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; connection?: string }>((resolve) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path,
            method: 'POST',
            headers: { ...headers, 'content-length': String(30 * 1024 * 1024) },
          },
          (res) => {
            res.resume();
            clearTimeout(giveUp);
            resolve({
              status: res.statusCode!,
              ...(res.headers.connection ? { connection: res.headers.connection } : {}),
            });
            req.destroy();
          },
        );
        req.on('error', () => undefined);
        req.write(Buffer.alloc(64 * 1024, 0x61));
        const giveUp = setTimeout(() => {
          req.destroy();
          resolve({ status: 0 });
        }, 20_000);
      });
    const wrong = 'wrong-token-000000000000';
    expect(await refusal('/ingest/edge', { authorization: `Bearer ${wrong}` })).toEqual({
      status: 401,
      connection: 'close',
    });
    expect(await refusal('/ingest/edge', { authorization: `Bearer ${OTHER}` })).toEqual({
      status: 403,
      connection: 'close',
    });
    expect(await refusal('/_bulk', {})).toEqual({ status: 401, connection: 'close' });
    expect(await refusal('/services/collector/event', { authorization: `Splunk ${wrong}` })).toEqual({
      status: 403,
      connection: 'close',
    });
    expect(await refusal('/services/collector/raw', {})).toEqual({ status: 401, connection: 'close' });
    expect(await refusal('/firehose', { 'x-amz-firehose-access-key': wrong })).toEqual({
      status: 401,
      connection: 'close',
    });
    expect(await refusal('/logpush/edge', {})).toEqual({ status: 401, connection: 'close' });
  });

  it('speaks Elasticsearch _bulk, including the probes shippers make first', async () => {
    const auth = `Basic ${Buffer.from(`filebeat:${TOKEN}`).toString('base64')}`;
    const root = await fetch(`${base}/`, { headers: { authorization: auth } });
    expect(root.status).toBe(200);
    expect(root.headers.get('x-elastic-product')).toBe('Elasticsearch');
    expect(((await root.json()) as { version: { number: string } }).version.number).toMatch(/^8\./);
    expect((await fetch(`${base}/_license`, { headers: { authorization: auth } })).status).toBe(200);
    const tpl = await fetch(`${base}/_index_template/filebeat`, {
      method: 'PUT',
      headers: { authorization: auth },
      body: '{}',
    });
    expect(await tpl.json()).toEqual({ acknowledged: true });

    const lines = [
      JSON.stringify({ index: { _index: 'filebeat-9', _type: '_doc' } }),
      JSON.stringify({ '@timestamp': '2026-11-23T10:00:00Z', message: nginx(40, '198.51.100.40') }),
      '',
      JSON.stringify({ create: { _index: 'filebeat-9' } }),
      JSON.stringify({ log: nginx(41, '198.51.100.40') }),
      JSON.stringify({ index: {} }),
      '{"message": truncated',
    ];
    const response = await fetch(`${base}/_bulk`, {
      method: 'POST',
      headers: {
        authorization: auth,
        'content-type': 'application/x-ndjson; charset=UTF-8',
        'content-encoding': 'gzip',
      },
      body: gzipSync(`${lines.join('\n')}\n`),
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as {
      errors: boolean;
      items: Record<string, { status: number }>[];
    };
    expect(result.errors).toBe(true);
    expect(result.items.map((i) => Object.entries(i)[0]![0])).toEqual(['index', 'create', 'index']);
    expect(result.items.map((i) => Object.values(i)[0]!.status)).toEqual([201, 201, 400]);
    expect(await settle(2, { term: { 'source.ip': '198.51.100.40' } })).toBe(2);
  });

  it('speaks Splunk HEC with its codes', async () => {
    const url = `${base}/services/collector/event`;
    expect(await (await fetch(`${base}/services/collector/health`)).json()).toEqual({
      text: 'HEC is healthy',
      code: 17,
    });
    const noToken = await fetch(url, { method: 'POST', body: '{"event":"x"}' });
    expect([noToken.status, await noToken.json()]).toEqual([401, { text: 'Token is required', code: 2 }]);
    const bad = await fetch(url, {
      method: 'POST',
      headers: { authorization: 'Splunk wrong-token-0000000000' },
      body: '{"event":"x"}',
    });
    expect([bad.status, await bad.json()]).toEqual([403, { text: 'Invalid token', code: 4 }]);
    const malformed = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Splunk ${TOKEN}` },
      body: '{"event":"a"}{"event":',
    });
    expect([malformed.status, await malformed.json()]).toEqual([
      400,
      { text: 'Invalid data format', code: 6, 'invalid-event-number': 1 },
    ]);
    const ok = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Splunk ${TOKEN}` },
      body: `{"event":${JSON.stringify(nginx(50, '192.0.2.50'))},"time":1795400000}{"event":${JSON.stringify(nginx(51, '192.0.2.50'))}}`,
    });
    expect([ok.status, await ok.json()]).toEqual([200, { text: 'Success', code: 0 }]);
    const raw = await fetch(`${base}/services/collector/raw`, {
      method: 'POST',
      headers: { authorization: `Splunk ${TOKEN}` },
      body: `${nginx(52, '192.0.2.50')}\n`,
    });
    expect(raw.status).toBe(200);
    expect(await settle(3, { term: { 'source.ip': '192.0.2.50' } })).toBe(3);
  });

  it('HEC: data it cannot take is "Invalid data format", not a resend invitation', async () => {
    const depth = 6_000;
    const deep = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const r = await fetch(`${base}/services/collector/event`, {
      method: 'POST',
      headers: { authorization: `Splunk ${TOKEN}` },
      body: `{"event":"fine"}{"event":${deep}}`,
    });
    expect(r.headers.get('retry-after')).toBeNull();
    expect([r.status, await r.json()]).toEqual([
      400,
      { text: 'Invalid data format', code: 6, 'invalid-event-number': 1 },
    ]);
  });

  it('HEC: indexer acknowledgement per channel, true once stored; dead letters counted per source', async () => {
    const channel = '0aa6e6b5-36f0-4c0d-9a4c-4c2c9d9b7f11';
    const hec = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Splunk ${OTHER}`, 'x-splunk-request-channel': channel, ...headers },
        body,
      });
    const sent = await hec(
      '/services/collector/event',
      `{"event":${JSON.stringify(nginx(60, '192.0.2.66'))}}{"event":"not a gateway log line"}`,
    );
    expect([sent.status, await sent.json()]).toEqual([200, { text: 'Success', code: 0, ackId: 0 }]);
    const second = await hec('/services/collector/raw', `${nginx(61, '192.0.2.66')}\n`);
    expect(await second.json()).toEqual({ text: 'Success', code: 0, ackId: 1 });
    const acks = await eventually(
      async () =>
        (await (await hec('/services/collector/ack', '{"acks":[0,1,7]}')).json()) as { acks: object },
      (a) => JSON.stringify(a.acks) === JSON.stringify({ 0: true, 1: true, 7: false }),
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    expect(acks).toEqual({ acks: { 0: true, 1: true, 7: false } });
    // Stored means stored: the event is searchable, the bad record is a dead letter.
    expect(await count({ term: { 'source.ip': '192.0.2.66' } })).toBe(2);
    // An id reported true is forgotten, as in Splunk.
    expect(await (await hec('/services/collector/ack', '{"acks":[0]}')).json()).toEqual({
      acks: { 0: false },
    });
    const noChannel = await fetch(`${base}/services/collector/ack`, {
      method: 'POST',
      headers: { authorization: `Splunk ${OTHER}` },
      body: '{"acks":[0]}',
    });
    expect([noChannel.status, await noChannel.json()]).toEqual([
      400,
      { text: 'Data channel is missing', code: 10 },
    ]);
    const badChannel = await hec('/services/collector/event', '{"event":"x"}', {
      'x-splunk-request-channel': 'not-a-guid',
    });
    expect([badChannel.status, await badChannel.json()]).toEqual([
      400,
      { text: 'Invalid data channel', code: 11 },
    ]);

    const admin = new IngestAdmin({
      es: runtime.es,
      redis: runtime.redis,
      prefix: ctx.prefix,
      queuePrefix: ctx.prefix,
      sources: config.ingest.sources,
      producer: runtime.producer,
    });
    const other = (await admin.sources()).find((s) => s.name === 'other');
    expect(other).toMatchObject({ events_total: 2, dead_letters_total: 1, dropped_total: 0 });
  });

  it('speaks the Firehose HTTP endpoint protocol, unwrapping CloudWatch Logs and dropping retried request ids', async () => {
    const cwl = gzipSync(
      JSON.stringify({
        messageType: 'DATA_MESSAGE',
        logEvents: [
          { id: '1', timestamp: 1795400000000, message: nginx(60, '192.0.2.60') },
          { id: '2', timestamp: 1795400000000, message: nginx(61, '192.0.2.60') },
        ],
      }),
    ).toString('base64');
    const body = JSON.stringify({
      requestId: 'req-0001',
      timestamp: 1795400000000,
      records: [{ data: Buffer.from(nginx(62, '192.0.2.60')).toString('base64') }, { data: cwl }],
    });
    const send = () =>
      fetch(`${base}/firehose`, {
        method: 'POST',
        headers: {
          'x-amz-firehose-access-key': TOKEN,
          'x-amz-firehose-request-id': 'req-0001',
          'content-encoding': 'gzip',
        },
        body: gzipSync(body),
      });
    const first = await send();
    expect(first.status).toBe(200);
    expect(((await first.json()) as { requestId: string }).requestId).toBe('req-0001');
    const retry = await send();
    expect(retry.status).toBe(200);
    expect(await settle(3, { term: { 'source.ip': '192.0.2.60' } })).toBe(3);
    const denied = await fetch(`${base}/firehose`, {
      method: 'POST',
      headers: { 'x-amz-firehose-access-key': 'wrong' },
      body,
    });
    expect(denied.status).toBe(401);
  });

  it('answers the Cloudflare Logpush validation upload and accepts gzip NDJSON', async () => {
    const url = `${base}/logpush/edge`;
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip' };
    const validation = await fetch(url, { method: 'POST', headers, body: gzipSync('{"content":"tests"}') });
    expect(validation.status).toBe(200);
    const ok = await fetch(url, {
      method: 'POST',
      headers,
      body: gzipSync(`${nginx(70, '192.0.2.70')}\n${nginx(71, '192.0.2.70')}\n`),
    });
    expect(ok.status).toBe(200);
    expect(await settle(2, { term: { 'source.ip': '192.0.2.70' } })).toBe(2);
  });

  it('dead-letters unparseable records with the reason instead of dropping them', async () => {
    const garbage = ['\u0000\u0001\u0002 binary', '{"truncated": ', 'not a log line at all'];
    const response = await fetch(`${base}/ingest/edge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: garbage.join('\n'),
    });
    expect(response.status).toBe(202);
    for (let i = 0; i < 100 && (await runtime.producer.currentDepth()) > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    await ctx.es.indices.refresh({ index: names.deadLetters });
    const letters = await ctx.es.search<{ raw: string; reason: string; source: string }>({
      index: names.deadLetters,
      size: 10,
      query: { term: { source: 'edge' } },
    });
    expect(letters.hits.hits.map((h) => h._source!.raw).sort()).toEqual([...garbage].sort());
    for (const h of letters.hits.hits) expect(h._source!.reason.length).toBeGreaterThan(5);
  });
});
