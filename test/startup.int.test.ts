/**
 * Start-up and empty states, on the real processes: a receiver started before Redis waits for
 * it, the API answers 503 (not 500) while Redis is down, a receiver without sources says what
 * to configure, and a fresh deployment's rule runs are normal runs that find nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../api/auth/keys.ts';
import { loadConfig } from '../core/config/load.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installIncidentIndex } from '../detections/incidents/repository.ts';
import { elasticsearchExecutor } from '../detections/runtime.ts';
import { DetectionScheduler } from '../detections/scheduler/scheduler.ts';
import { parseRules } from '../parser/index.ts';
import { integrationContext } from './harness/context.ts';
import { eventually } from './harness/eventually.ts';
import { freePort } from './harness/processes.ts';
import { type RedisServer, startRedisServer } from './harness/redis.ts';

const ctx = integrationContext('startup');
const TOKEN = 'tok-startup-0123456789abcdef';
const children: ChildProcess[] = [];
const servers: RedisServer[] = [];

/** A gatewatch command as its own process, with everything it prints. */
function gatewatch(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['cli/gatewatch.ts', ...args], {
    env: {
      ...process.env,
      ELASTICSEARCH_URL: ctx.elasticsearchUrl,
      GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: ctx.prefix,
      GATEWATCH_REDIS__PREFIX: ctx.prefix,
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

const printed = (run: { output: string; exited: boolean }, what: RegExp) =>
  eventually(
    async () => run,
    (r) => what.test(r.output) || r.exited,
    { timeoutMs: 120_000, intervalMs: 200 },
  ).then((r) => r.output);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const server of servers) await server.dispose();
  await ctx.cleanup();
});

describe('start-up and empty states', () => {
  it('a receiver started before Redis waits for it, saying so, then serves', async () => {
    const redisPort = await freePort();
    const httpPort = await freePort();
    const run = gatewatch(['ingest', 'sources'], {
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      GATEWATCH_INGEST__HTTP_PORT: String(httpPort),
      GATEWATCH_INGEST__SOURCES: JSON.stringify([{ name: 'edge', type: 'http', tokens: [TOKEN] }]),
    });
    const waiting = await printed(run, /waiting for Redis/);
    expect(waiting).toContain(`waiting for Redis at redis://127.0.0.1:${redisPort}`);
    // Longer than the 10 s a start-up used to allow before dying with an uncaught error.
    await new Promise((r) => setTimeout(r, 11_000));
    expect(run.exited, run.output).toBe(false);
    servers.push(await startRedisServer({ port: redisPort }));
    expect(await printed(run, /ingest sources ready/)).toContain('ingest sources ready');
    const pushed = await fetch(`http://127.0.0.1:${httpPort}/ingest/edge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: '192.0.2.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',
    });
    expect(pushed.status).toBe(202);
    run.child.kill('SIGTERM');
  });

  it('a receiver without sources says what to configure', async () => {
    const run = gatewatch(['ingest', 'sources'], {
      REDIS_URL: ctx.redisUrl,
      GATEWATCH_INGEST__HTTP_PORT: String(await freePort()),
    });
    const output = await printed(run, /ingest sources ready/);
    expect(output).toContain('no ingest sources configured: nothing will be received');
    expect(output).toContain('GATEWATCH_INGEST__SOURCES=');
    expect(output).toContain('Running without Docker');
    run.child.kill('SIGTERM');
  });

  it('the API answers a 503 problem, not a 500, while Redis is down, and keeps serving', async () => {
    const redis = await startRedisServer();
    servers.push(redis);
    const port = await freePort();
    const run = gatewatch(['serve'], {
      REDIS_URL: redis.url,
      GATEWATCH_API__PORT: String(port),
      GATEWATCH_INGEST__SOURCES: JSON.stringify([{ name: 'edge', type: 'http', tokens: [TOKEN] }]),
    });
    expect(await printed(run, /listening on/)).toContain('listening on');
    const keys = new ApiKeyStore(ctx.es, ctx.prefix);
    const { token } = await keys.create('viewer', 'startup', 'test');
    const sources = () =>
      fetch(`http://127.0.0.1:${port}/api/v1/ingest/sources`, {
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await sources()).status).toBe(200);
    await redis.stop();
    const down = await sources();
    expect(down.status).toBe(503);
    expect(down.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await down.json()).toMatchObject({ status: 503, type: 'urn:gatewatch:problem:queue-unavailable' });
    expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
    await redis.restart();
    expect((await eventually(sources, (r) => r.status === 200)).status).toBe(200);
    expect(run.exited, run.output).toBe(false);
    run.child.kill('SIGTERM');
  });

  it('a fresh deployment: rule runs before the first event are normal runs that find nothing', async () => {
    const prefix = `${ctx.prefix}-fresh`;
    const config = loadConfig({
      env: {},
      overrides: { elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: prefix } },
    });
    await installIncidentIndex(ctx.es, prefix);
    const redis = new Redis(ctx.redisUrl);
    const told: string[] = [];
    const { rules } = parseRules(
      `rule fresh-probe {
  title "Admin route probed"
  severity medium
  where gatewatch.route startswith "/admin"
}
rule fresh-burst {
  title "Burst"
  severity low
  where http.response.status_code == 401
  threshold {
    group by source.ip
    window 5m
    metric failures = count()
    having failures > 10
  }
}
`,
      { file: 'fresh.gwr' },
    );
    expect(rules).toHaveLength(2);
    const scheduler = new DetectionScheduler({
      es: ctx.es,
      redis,
      redisUrl: ctx.redisUrl,
      prefix,
      queuePrefix: prefix,
      rules,
      execute: elasticsearchExecutor(ctx.es, prefix, config.detections.maxGroups, (m) => told.push(m)),
      maxCatchUpMs: 3_600_000,
    });
    try {
      await scheduler.init();
      const records = [
        ...(await scheduler.runRule('fresh-probe')),
        ...(await scheduler.runRule('fresh-burst')),
      ];
      expect(records.map((r) => [r.outcome, r.detections, r.error])).toEqual([
        ['ok', 0, undefined],
        ['ok', 0, undefined],
      ]);
      // Said once, not once per rule and run.
      expect(told).toEqual([
        `no events stored yet (${indexNames(prefix).eventsAlias} does not exist): rules run and find nothing until the first event is ingested`,
      ]);
      // The checkpoint moved on: the next run starts where this one ended.
      expect(await scheduler.getCheckpoint('fresh-probe')).toBeGreaterThan(0);
    } finally {
      await scheduler.close();
      redis.disconnect();
    }
  });
});
