/**
 * Plain syslog cannot be asked to resend, so what it delivers must not vanish silently, on
 * the real receiver process (`gatewatch ingest sources`):
 * - over TCP while Redis is down, records go to the disk spool and survive a SIGKILL of the
 *   receiver: a restarted receiver queues them once Redis is back;
 * - over UDP, datagrams the kernel drops because the receive buffer is full are counted (the
 *   sources status, metrics) and warned about: stored + dropped = sent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { freePort } from '../../test/harness/processes.ts';
import { type RedisServer, startRedisServer } from '../../test/harness/redis.ts';
import { IngestAdmin } from '../admin.ts';
import { type IngestRuntime, sourceStatsKey, startIngest } from '../runtime.ts';

const ctx = integrationContext('syslog-losses');
const children: ChildProcess[] = [];
const servers: RedisServer[] = [];
const runtimes: IngestRuntime[] = [];

function receiver(env: Record<string, string>) {
  const child = spawn(process.execPath, ['cli/gatewatch.ts', 'ingest', 'sources'], {
    env: {
      ...process.env,
      ELASTICSEARCH_URL: ctx.elasticsearchUrl,
      GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: ctx.prefix,
      GATEWATCH_REDIS__PREFIX: ctx.prefix,
      GATEWATCH_INGEST__SOURCES: JSON.stringify([{ name: 'syslog', type: 'syslog' }]),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const run = { child, output: '', exited: false };
  child.stdout!.on('data', (d) => (run.output += d));
  child.stderr!.on('data', (d) => (run.output += d));
  child.once('exit', () => (run.exited = true));
  return run;
}

const ready = (run: { output: string; exited: boolean }) =>
  eventually(
    async () => run,
    (r) => r.output.includes('ingest sources ready') || r.exited,
    { timeoutMs: 120_000, intervalMs: 200 },
  ).then((r) => expect(r.output).toContain('ingest sources ready'));

async function workers(redisUrl: string): Promise<IngestRuntime> {
  const config = loadConfig({
    env: {},
    overrides: {
      elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
      redis: { url: redisUrl, prefix: ctx.prefix },
      ingest: { sources: [{ name: 'syslog', type: 'syslog' }] },
    },
  });
  const runtime = await startIngest(config, { workers: 1, refresh: true });
  runtimes.push(runtime);
  return runtime;
}

const line = (tag: string, i: number) =>
  `198.51.${Math.floor(i / 250)}.${i % 250} - - [23/Nov/2026:13:00:00 +0000] "GET /api/${tag}/${i} HTTP/1.1" 200 10 "-" "syslog-losses/1.0"`;

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const runtime of runtimes) await runtime.close().catch(() => undefined);
  for (const server of servers) await server.dispose();
  await ctx.cleanup();
});

describe('plain syslog losses', () => {
  it('TCP records received while Redis is down survive a SIGKILL of the receiver', async () => {
    const redis = await startRedisServer();
    servers.push(redis);
    const spoolDir = mkdtempSync(join(tmpdir(), 'gw-spool-'));
    const port = await freePort();
    const env = {
      REDIS_URL: redis.url,
      GATEWATCH_INGEST__HTTP_PORT: String(await freePort()),
      GATEWATCH_INGEST__SYSLOG_PORT: String(port),
      GATEWATCH_INGEST__SPOOL_DIR: spoolDir,
    };
    const first = receiver(env);
    await ready(first);
    await redis.stop();

    const total = 1_000;
    const socket = connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    await new Promise<void>((resolve) =>
      socket.end(
        `${Array.from({ length: total }, (_, i) => `<14>${line('killed', i)}`).join('\n')}\n`,
        resolve,
      ),
    );
    // What the receiver took is on disk, not only in its memory...
    const spooled = () =>
      readdirSync(spoolDir)
        .filter((f) => f.endsWith('.jsonl'))
        .reduce((n, f) => n + readFileSync(join(spoolDir, f), 'utf8').split('\n').filter(Boolean).length, 0);
    expect(
      await eventually(
        async () => spooled(),
        (n) => n === total,
      ),
    ).toBe(total);
    // ...so a kill loses none of it: the next receiver queues it once Redis is back.
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    await redis.restart();
    const second = receiver(env);
    await ready(second);
    await workers(redis.url);
    const stored = await eventually(
      () => ctx.countEvents({ prefix: { 'url.path': '/api/killed/' } }),
      (n) => n >= total,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(stored).toBe(total);
    expect(
      await eventually(
        async () => spooled(),
        (n) => n === 0,
      ),
    ).toBe(0);
    second.child.kill('SIGTERM');
  });

  it('UDP datagrams the kernel drops are counted, shown and warned about: stored + dropped = sent', async () => {
    const port = await freePort();
    const run = receiver({
      REDIS_URL: ctx.redisUrl,
      GATEWATCH_INGEST__HTTP_PORT: String(await freePort()),
      GATEWATCH_INGEST__SYSLOG_PORT: String(port),
      GATEWATCH_INGEST__SPOOL_DIR: mkdtempSync(join(tmpdir(), 'gw-spool-')),
      GATEWATCH_INGEST__SYSLOG_UDP_RECEIVE_BUFFER: '4096',
    });
    await ready(run);
    const runtime = await workers(ctx.redisUrl);
    // A burst while the receiver cannot read (stopped): the small buffer overflows.
    const sent = 400;
    run.child.kill('SIGSTOP');
    const udp = createSocket('udp4');
    try {
      for (let i = 0; i < sent; i++) {
        await new Promise<void>((resolve, reject) =>
          udp.send(`<14>${line('burst', i)}`, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
        );
      }
    } finally {
      udp.close();
      run.child.kill('SIGCONT');
    }
    const key = sourceStatsKey(ctx.prefix, 'syslog');
    const read = async () => ({
      stored: await ctx.countEvents({ prefix: { 'url.path': '/api/burst/' } }),
      dropped: Number((await runtime.redis.hget(key, 'dropped_kernel')) ?? 0),
    });
    const seen = await eventually(read, (s) => s.dropped > 0 && s.stored + s.dropped === sent, {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(seen.dropped).toBeGreaterThan(0);
    expect(seen.stored + seen.dropped).toBe(sent);
    expect(run.output).toMatch(/the kernel dropped \d+ UDP datagram/);
    const admin = new IngestAdmin({
      es: runtime.es,
      redis: runtime.redis,
      prefix: ctx.prefix,
      queuePrefix: ctx.prefix,
      sources: [{ name: 'syslog', type: 'syslog', tokens: [], paths: [] }],
      producer: runtime.producer,
    });
    const [status] = await admin.sources();
    expect(status).toMatchObject({ name: 'syslog', dropped_total: seen.dropped });
    expect(status!.last_error).toMatch(/the kernel dropped/);
    run.child.kill('SIGTERM');
  });
});
