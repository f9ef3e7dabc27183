/**
 * What real shippers see and do at the edges: resends counted once, rsyslog's
 * omelasticsearch without credentials, and `logger` cutting long lines at its default size.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { freePort, which } from '../../test/harness/processes.ts';
import { type IngestRuntime, sourceStatsKey, startIngest } from '../runtime.ts';
import { SyslogSource } from './syslog.ts';

const ctx = integrationContext('shippers');
const TOKEN = 'tok-shippers-0123456789abcdef';

const nginx = (ip: string, n: number, path = `/api/items/${n}`) =>
  `${ip} - - [23/Nov/2026:12:00:${String(n % 60).padStart(2, '0')} +0000] "GET ${path} HTTP/1.1" 200 10 "-" "shipper/1.0"`;

describe('shippers at the edges', () => {
  let runtime: IngestRuntime;
  let port: number;
  beforeAll(async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
        ingest: {
          httpPort: 0,
          sources: [
            { name: 'edge', type: 'http', tokens: [TOKEN] },
            { name: 'logger', type: 'syslog' },
          ],
        },
      },
    });
    runtime = await startIngest(config, { workers: 1, http: true, refresh: true });
    port = (runtime.http!.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await runtime?.close();
    await ctx.cleanup();
  });

  it('counts a resent batch once in the source counters (the duplicates apart)', async () => {
    const body = Array.from({ length: 40 }, (_, i) => nginx('198.51.100.40', i)).join('\n');
    const send = () =>
      fetch(`http://127.0.0.1:${port}/ingest/edge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body,
      });
    expect((await send()).status).toBe(202);
    const key = sourceStatsKey(ctx.prefix, 'edge');
    await eventually(
      () => runtime.redis.hgetall(key),
      (s) => Number(s.records) >= 40,
    );
    // The same body again, once the first job is gone (a new job id): every event is a duplicate.
    await eventually(
      () => runtime.producer.currentDepth(),
      (d) => d === 0,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect((await send()).status).toBe(202);
    const stats = await eventually(
      () => runtime.redis.hgetall(key),
      (s) => Number(s.records) >= 80,
    );
    expect(await ctx.countEvents({ term: { 'source.ip': '198.51.100.40' } })).toBe(40);
    expect({ records: stats.records, events: stats.events, duplicates: stats.duplicates }).toEqual({
      records: '80',
      events: '40',
      duplicates: '40',
    });
  });

  it('answers a shipper without credentials with the 401 Elasticsearch sends', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/_bulk`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '{"index":{}}\n{"message":"x"}\n',
    });
    expect(r.status).toBe(401);
    expect(r.headers.get('x-elastic-product')).toBe('Elasticsearch');
    expect(r.headers.get('www-authenticate')).toContain('Basic realm="security"');
    const reason = 'missing authentication credentials for REST request [/_bulk]';
    const header = { 'WWW-Authenticate': ['Basic realm="security", charset="UTF-8"', 'ApiKey'] };
    expect(await r.json()).toEqual({
      error: {
        root_cause: [{ type: 'security_exception', reason, header }],
        type: 'security_exception',
        reason,
        header,
      },
      status: 401,
    });
    const wrong = await fetch(`http://127.0.0.1:${port}/_bulk`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('rsyslog:wrong-password').toString('base64')}` },
      body: '{"index":{}}\n{"message":"x"}\n',
    });
    expect(
      ((await wrong.json()) as { error: { root_cause: { reason: string }[] } }).error.root_cause[0]!.reason,
    ).toBe('unable to authenticate with the provided credentials for REST request [/_bulk]');
  });

  it('rsyslog omelasticsearch without credentials keeps its batch in its error file with the reason', async () => {
    const rsyslogd = which('rsyslogd');
    expect(rsyslogd, 'rsyslog is required (apt-get install -y rsyslog rsyslog-elasticsearch)').toBeDefined();
    const work = mkdtempSync(join(tmpdir(), 'gw-rsyslog-noauth-'));
    chmodSync(work, 0o755);
    const input = join(work, 'gateway.log');
    const errors = join(work, 'es-errors.json');
    writeFileSync(input, `${Array.from({ length: 3 }, (_, i) => nginx('192.0.2.160', i)).join('\n')}\n`);
    const conf = join(work, 'rsyslog.conf');
    writeFileSync(
      conf,
      `global(workDirectory="${work}")
module(load="imfile")
module(load="omelasticsearch")
template(name="gw" type="list" option.json="on") {
  constant(value="{\\"message\\":\\"") property(name="msg") constant(value="\\"}")
}
input(type="imfile" File="${input}" Tag="gateway" ruleset="ship")
ruleset(name="ship") {
  action(type="omelasticsearch" server="127.0.0.1" serverport="${port}" template="gw" searchIndex="gateway"
         bulkmode="on" errorFile="${errors}")
}
`,
    );
    const child = spawn(rsyslogd!, ['-n', '-f', conf, '-i', join(work, 'rsyslog.pid')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const written = await eventually(
        async () => (existsSync(errors) ? readFileSync(errors, 'utf8') : ''),
        (text) => text.includes('192.0.2.160'),
        { timeoutMs: 45_000 },
      );
      // rsyslog before 8.2508 does not retry a 401: the batch it gives up goes to errorFile,
      // with Elasticsearch's reason, so the operator can see why and resend it.
      expect(written).toContain('missing authentication credentials for REST request');
      expect(written).toContain('192.0.2.160');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('says in the dead letter that logger cut a long line at its default 1 KiB', async () => {
    const syslog = new SyslogSource({
      source: { name: 'logger', type: 'syslog', tokens: [], paths: [] },
      producer: runtime.producer,
      host: '127.0.0.1',
      port: await freePort(),
      udp: false,
    });
    await syslog.start();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'gw-logger-'));
      const file = join(dir, 'long.log');
      // A 1,500-byte access log line (a long query string), sent with logger's defaults.
      writeFileSync(file, `${nginx('192.0.2.170', 1, `/api/search?q=${'x'.repeat(1_400)}`)}\n`);
      execFileSync('logger', [
        '--server',
        '127.0.0.1',
        '--port',
        String(syslog.tcpPort),
        '--tcp',
        '-f',
        file,
      ]);
      const letters = await eventually(
        async () => {
          await ctx.es.indices.refresh({ index: indexNames(ctx.prefix).deadLetters });
          const r = await ctx.es.search<{ reason: string; raw: string }>({
            index: indexNames(ctx.prefix).deadLetters,
            query: { term: { source: 'logger' } },
          });
          return r.hits.hits.map((h) => h._source!);
        },
        (l) => l.length >= 2,
      );
      expect(letters).toHaveLength(2);
      const head = letters.find((l) => l.raw.startsWith('192.0.2.170'))!;
      const tail = letters.find((l) => l !== head)!;
      expect(Buffer.byteLength(head.raw)).toBe(1024);
      expect(head.reason).toContain('exactly 1024 bytes, so the sender probably cut a longer line');
      expect(head.reason).toContain('logger');
      expect(tail.reason).toContain('continues the previous record, which the sender cut at 1024 bytes');
    } finally {
      await syslog.stop();
    }
  });
});
