/**
 * The distributed stack as docker-compose.yml describes it, run without a container engine:
 * each Gatewatch service runs as the process its container would (the Dockerfile's ENTRYPOINT
 * and ENV, the service's command and its environment after compose interpolation), its
 * container ports mapped to free local ports, the harness's Redis and Elasticsearch standing in
 * for the `redis` and `elasticsearch` services, and the compose file's own healthchecks.
 *
 * Then what a user does with it: an API key from the CLI (`docker compose run api keys
 * create`), Kong logs with a credential-stuffing burst sent with `gatewatch replay --to` and the
 * stack's push token, the detection worker (re)started after the logs arrived, and the incident
 * read back through the REST API.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginReq } from '../../samples/generator/model.ts';
import { Rng } from '../../samples/generator/prng.ts';
import { kongLine } from '../../samples/generator/writers.ts';
import { integrationContext } from '../harness/context.ts';
import { eventually } from '../harness/eventually.ts';
import { captureTail, freePort, sleep, stopProcessGroup } from '../harness/processes.ts';
import { type ComposeService, readComposeStack } from './compose.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const ctx = integrationContext('compose');
/** Letters only: a secret must not contain a port number the remapping below would rewrite. */
const letters = () =>
  randomBytes(24)
    .toString('base64')
    .replace(/[^A-Za-z]/g, '')
    .slice(0, 24);
const INGEST_TOKEN = `push-${letters()}`;
// No fingerprint secret: the stack creates its own on first start and keeps it in Elasticsearch.
const stack = readComposeStack(ROOT, { GATEWATCH_INGEST_TOKEN: INGEST_TOKEN });

/** A service's process setup: its environment and its commands, on mapped ports. */
interface Prepared {
  service: ComposeService;
  /** container port → local port */
  ports: Map<number, number>;
  env: NodeJS.ProcessEnv;
  /** Exec-form arguments as this service would run them here ("node" is this Node.js). */
  command(args: string[]): { bin: string; args: string[] };
}

interface Running extends Prepared {
  child: ChildProcess;
  tail: () => string;
  output: () => string;
}

/**
 * The service's environment (image ENV, then the service's, then test isolation), with every
 * container port number mapped to a free local port and the infrastructure services' addresses
 * to the harness's servers.
 */
async function prepare(name: string): Promise<Prepared> {
  const service = stack.services.find((s) => s.name === name);
  if (!service) throw new Error(`docker-compose.yml has no service ${name}`);
  const ports = new Map<number, number>();
  for (const p of service.containerPorts) ports.set(p, await freePort());
  const remap = (text: string) => {
    let out = text;
    for (const [inside, local] of ports)
      out = out.replace(new RegExp(`(?<![0-9])${inside}(?![0-9])`, 'g'), String(local));
    // the compose services this test does not run: the harness's servers
    return out
      .replace('elasticsearch:9200', new URL(ctx.elasticsearchUrl).host)
      .replace('redis:6379', new URL(ctx.redisUrl).host);
  };
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...stack.imageEnv,
    ...Object.fromEntries(Object.entries(service.environment).map(([k, v]) => [k, remap(v)])),
    // isolation from the other test files sharing these servers
    GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: ctx.prefix,
    GATEWATCH_REDIS__PREFIX: ctx.prefix,
  };
  const command = (args: string[]) => {
    const [bin, ...rest] = args.map(remap);
    return { bin: bin === 'node' ? process.execPath : bin!, args: rest };
  };
  return { service, ports, env, command };
}

const running: Running[] = [];

async function start(name: string): Promise<Running> {
  const prepared = await prepare(name);
  const { bin, args } = prepared.command([...stack.entrypoint, ...prepared.service.command]);
  const child = spawn(bin, args, {
    cwd: ROOT,
    env: prepared.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let all = '';
  child.stdout!.on('data', (c: Buffer) => {
    all += c.toString('utf8');
  });
  child.stderr!.on('data', (c: Buffer) => {
    all += c.toString('utf8');
  });
  const r: Running = { ...prepared, child, tail: captureTail(child), output: () => all };
  running.push(r);
  return r;
}

/** Until the compose healthcheck passes (or, without one, the process prints `ready`). */
async function healthy(r: Running): Promise<void> {
  const check = r.service.healthcheck && r.command(r.service.healthcheck);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (r.child.exitCode !== null) throw new Error(`${r.service.name} exited:\n${r.tail()}`);
    if (check) {
      if (spawnSync(check.bin, check.args, { env: r.env, timeout: 10_000 }).status === 0) return;
    } else if (/ready/.test(r.output())) return;
    await sleep(500);
  }
  throw new Error(`${r.service.name} not healthy in 120 s:\n${r.tail()}`);
}

/** `docker compose run --rm <service> <args…>`: the image's command with the service's environment. */
async function runOnce(
  name: string,
  extra: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { env, command } = await prepare(name);
  const { bin, args } = command([...stack.entrypoint, ...extra]);
  const r = spawnSync(bin, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the docker-compose stack, as processes', () => {
  beforeAll(async () => {
    const services = await Promise.all(['api', 'ingest', 'ingest-worker'].map(start));
    await Promise.all(services.map(healthy));
  });
  afterAll(async () => {
    await Promise.all(running.map((r) => stopProcessGroup(r.child)));
    await ctx.cleanup();
  });

  it('takes pushed gateway logs, redacts their credentials, and raises the incident the API serves', async () => {
    const api = running.find((r) => r.service.name === 'api')!;
    const ingest = running.find((r) => r.service.name === 'ingest')!;
    const apiUrl = `http://127.0.0.1:${api.ports.get(8080)}`;
    const ingestUrl = `http://127.0.0.1:${ingest.ports.get(8088)}`;

    // The API refuses requests without a key; an analyst key comes from the CLI.
    expect((await fetch(`${apiUrl}/api/v1/incidents`)).status).toBe(401);
    const created = await runOnce('api', [
      'keys',
      'create',
      '--role',
      'analyst',
      '--name',
      'stack-test',
      '--json',
    ]);
    expect(created.status, created.stderr).toBe(0);
    const apiKey = (JSON.parse(created.stdout) as { token: string }).token;

    // A stuffing burst in Kong's HTTP-log format: 60 accounts tried from one address over
    // eight minutes ending six minutes ago, each with Basic credentials in the logged headers.
    const rng = new Rng('compose-stack');
    const now = Date.now();
    const attacker = '203.0.113.77';
    const passwords = Array.from({ length: 60 }, (_, i) => `Winter2026!${letters()}${i}`);
    const lines = passwords.map((password, i) =>
      kongLine(
        loginReq(
          rng,
          now - 14 * 60_000 + i * 8_000,
          attacker,
          'python-requests/2.31',
          `victim${i}@mail.example`,
          password,
          false,
          'attack',
        ),
        rng,
      ),
    );
    const dir = mkdtempSync(join(tmpdir(), 'gatewatch-stack-'));
    writeFileSync(join(dir, 'kong-http-log.ndjson'), `${lines.join('\n')}\n`);

    // What an analyst runs against a deployment: the replay tool, with the stack's push token.
    const replay = spawnSync(
      process.execPath,
      ['cli/gatewatch.ts', 'replay', '--to', ingestUrl, '--source', 'gateway', '--token', INGEST_TOKEN, dir],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
      },
    );
    expect(replay.status, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/^sent 60 lines to /);
    // a wrong token is refused
    const refused = await fetch(`${ingestUrl}/ingest/gateway`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer not-the-token-of-this-stack',
        'content-type': 'application/x-ndjson',
      },
      body: lines[0],
    });
    expect(refused.status).toBe(401);

    // The ingest worker indexes all 60, and no password reaches storage.
    const indexed = await eventually(
      () => ctx.countEvents(),
      (n) => n >= 60,
      { timeoutMs: 60_000 },
    );
    expect(indexed).toBe(60);
    const stored = await ctx.es.search({ index: `${ctx.prefix}-events*`, size: 100 });
    const text = JSON.stringify(stored.hits.hits.map((h) => h._source));
    expect(text).toContain('victim17@mail.example');
    for (const password of passwords) expect(text).not.toContain(password);
    expect(text).not.toContain(Buffer.from(`victim17@mail.example:${passwords[17]}`).toString('base64'));

    // A detection worker started after the logs arrived: each rule's schedule fires at once.
    await healthy(await start('detect-worker'));
    const read = async () => {
      const response = await fetch(`${apiUrl}/api/v1/incidents?rule=credential-stuffing-single-source`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as { items: { group: Record<string, unknown>; event_count: number }[] })
        .items;
    };
    const items = await eventually(read, (found) => found.length > 0, { timeoutMs: 90_000 });
    expect(items.map((i) => i.group)).toEqual([{ 'source.ip': attacker }]);
    // the incident lists one window's attempts (at most the 60 sent)
    expect(items[0]!.event_count).toBeGreaterThanOrEqual(25);
    expect(items[0]!.event_count).toBeLessThanOrEqual(60);
    // every rule's first run is over: still exactly one incident
    const detect = running.find((r) => r.service.name === 'detect-worker')!;
    await eventually(
      async () => detect.output(),
      (out) => out.includes('credential-stuffing-single-source ['),
    );
    expect(await read()).toHaveLength(1);
  });
  it("takes syslog (TCP and UDP) on the published syslog port, as the compose file's syslog source", async () => {
    const ingest = running.find((r) => r.service.name === 'ingest')!;
    const port = ingest.ports.get(5514)!;
    const ip = '198.51.100.99';
    const stamp = DateTime.utc().toFormat("dd/LLL/yyyy:HH:mm:ss '+0000'");
    const nginx = (n: number) =>
      `<134>1 ${new Date().toISOString()} edge-proxy nginx - - - ${ip} - - [${stamp}] "GET /api/v1/orders/${n} HTTP/1.1" 200 ${300 + n} "-" "okhttp/4.12"`;
    await new Promise<void>((done, fail) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(`${nginx(1)}\n${nginx(2)}\n`));
      socket.on('close', () => done());
      socket.on('error', fail);
    });
    const udp = createSocket('udp4');
    await new Promise<void>((done, fail) =>
      udp.send(nginx(3), port, '127.0.0.1', (err) => (err ? fail(err) : done())),
    );
    udp.close();
    const query = {
      bool: { filter: [{ term: { 'source.ip': ip } }, { term: { 'gatewatch.source.name': 'syslog' } }] },
    };
    const n = await eventually(
      () => ctx.countEvents(query),
      (count) => count >= 3,
      { timeoutMs: 60_000 },
    );
    expect(n).toBe(3);
  });
});
