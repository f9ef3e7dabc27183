/**
 * RELP end to end with a real client: rsyslog's omrelp ships a file to the `gatewatch ingest
 * sources` process, which is killed with SIGKILL while messages it has received are still on
 * their way into Redis (Redis writes are paused), and started again. rsyslog resends what was
 * never acknowledged; deterministic event ids keep the resent copies from doubling.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { connectRedis } from '../../core/queue/bullmq.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { freePort, which } from '../../test/harness/processes.ts';
import { selfSignedCertificate } from '../../test/harness/tls.ts';
import { type IngestRuntime, startIngest } from '../runtime.ts';
import { RelpSource } from './relp.ts';

const ctx = integrationContext('relp');
const names = indexNames(ctx.prefix);

const nginx = (ip: string, n: number) =>
  `${ip} - - [23/Nov/2026:13:${String(Math.floor(n / 60) % 60).padStart(2, '0')}:${String(n % 60).padStart(2, '0')} +0000] "GET /api/orders/${n} HTTP/1.1" 200 ${100 + n} "-" "relp-test/1.0"`;

describe('RELP source (real rsyslog omrelp)', () => {
  let runtime: IngestRuntime;
  const work = mkdtempSync(join(tmpdir(), 'gw-relp-'));
  chmodSync(work, 0o755);
  let relpPort: number;
  const configFile = join(work, 'gatewatch.json');
  const children: ChildProcess[] = [];

  const count = (ip: string) => ctx.countEvents({ term: { 'source.ip': ip } });

  const startSources = async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, ['cli/gatewatch.ts', '--config', configFile, 'ingest', 'sources'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => process.stderr.write(`[sources ${child.pid}] ${d}`));
    await eventually(
      async () => out,
      (o) => o.includes('RELP listening'),
      { timeoutMs: 60_000 },
    );
    return child;
  };

  /**
   * rsyslogd shipping `input` (imfile, with `tag`) through one omrelp action that retries
   * forever; `omrelp` holds the action's own parameters. Its output is kept for failure messages.
   */
  const startRsyslog = (dir: string, input: string, tag: string, omrelp: string) => {
    const rsyslogd = which('rsyslogd');
    expect(rsyslogd, 'rsyslog is required (apt-get install -y rsyslog rsyslog-relp)').toBeDefined();
    const conf = join(dir, 'rsyslog.conf');
    writeFileSync(
      conf,
      `global(workDirectory="${dir}")
module(load="imfile")
module(load="omrelp")
input(type="imfile" File="${input}" Tag="${tag}" ruleset="ship")
ruleset(name="ship") {
  action(type="omrelp" target="127.0.0.1" ${omrelp}
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
`,
    );
    const child = spawn(rsyslogd!, ['-n', '-f', conf, '-i', join(dir, 'rsyslog.pid')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    return { child, output: () => output };
  };

  beforeAll(async () => {
    relpPort = await freePort();
    const settings = {
      elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
      redis: { url: ctx.redisUrl, prefix: ctx.prefix },
      ingest: {
        httpPort: 0,
        syslogPort: 0,
        relpPort,
        sources: [{ name: 'relp', type: 'syslog' }],
      },
    };
    writeFileSync(configFile, JSON.stringify(settings));
    runtime = await startIngest(loadConfig({ env: {}, overrides: settings }), { workers: 1, refresh: true });
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await runtime?.close();
    await ctx.cleanup();
  });

  it('answers the RELP handshake and refuses a syslog frame before open', async () => {
    const child = await startSources();
    try {
      const replies = await new Promise<string>((resolve, reject) => {
        const socket = connect(relpPort, '127.0.0.1');
        let got = '';
        socket.on('data', (d) => {
          got += d;
          if (got.split('\n').filter((l) => /^\d+ rsp/.test(l)).length >= 2) {
            socket.destroy();
            resolve(got);
          }
        });
        socket.on('error', reject);
        socket.write('1 syslog 5 hello\n');
        const offers = 'relp_version=0\nrelp_software=test\ncommands=syslog';
        socket.write(`2 open ${offers.length} ${offers}\n`);
      });
      expect(replies).toMatch(/^1 rsp \d+ 500 session not opened\n/);
      expect(replies).toContain('2 rsp ');
      expect(replies).toContain('200 OK\nrelp_version=0\n');
      expect(replies).toContain('commands=syslog');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('acknowledges without waiting for a full batch or the flush timer (a client stops at its window)', async () => {
    const relp = new RelpSource({
      source: { name: 'relp-window', type: 'syslog', tokens: [], paths: [] },
      producer: runtime.producer,
      host: '127.0.0.1',
      port: 0,
      flushMs: 3_600_000,
    });
    await relp.start();
    const ip = '198.51.100.62';
    try {
      const socket = connect(relp.port!, '127.0.0.1');
      let got = '';
      socket.on('data', (d) => (got += d));
      await new Promise((r) => socket.once('connect', r));
      const offers = 'relp_version=0\nrelp_software=test\ncommands=syslog';
      socket.write(`1 open ${offers.length} ${offers}\n`);
      // ten messages, far fewer than a batch (500): a client with a window of ten waits now
      socket.write(
        Array.from({ length: 10 }, (_, i) => {
          const m = `<13>2026-11-23T13:00:00Z edge gateway: ${nginx(ip, i)}`;
          return `${i + 2} syslog ${Buffer.byteLength(m)} ${m}\n`;
        }).join(''),
      );
      const acked = await eventually(
        async () => [...got.matchAll(/^(\d+) rsp 6 200 OK$/gm)].map((m) => Number(m[1])),
        (a) => a.length >= 10,
      );
      expect(acked.sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(
        await eventually(
          () => count(ip),
          (n) => n >= 10,
        ),
      ).toBe(10);
      socket.destroy();
    } finally {
      await relp.stop();
    }
  });

  it('serves rsyslog omrelp over TLS (tls="on", certificate validated by the client)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-relp-tls-'));
    chmodSync(dir, 0o755);
    const { key, cert } = selfSignedCertificate(dir);
    const relp = new RelpSource({
      source: { name: 'relp-tls', type: 'syslog', tokens: [], paths: [] },
      producer: runtime.producer,
      host: '127.0.0.1',
      port: 0,
      tls: { key: readFileSync(key), cert: readFileSync(cert) },
    });
    await relp.start();
    const input = join(dir, 'gateway.log');
    writeFileSync(input, '');
    // librelp uses certificate (not anonymous) TLS when the client has a certificate of its own
    const rsyslog = startRsyslog(
      dir,
      input,
      'gateway:',
      `port="${relp.port}" tls="on" tls.authMode="certvalid" tls.caCert="${cert}" tls.myCert="${cert}" tls.myPrivKey="${key}"`,
    );
    const ip = '198.51.100.63';
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      appendFileSync(input, `${Array.from({ length: 5 }, (_, i) => nginx(ip, i)).join('\n')}\n`);
      expect(
        await eventually(
          () => count(ip),
          (n) => n >= 5,
          { timeoutMs: 60_000 },
        ),
        `rsyslog output:\n${rsyslog.output()}`,
      ).toBe(5);
    } finally {
      rsyslog.child.kill('SIGTERM');
      await relp.stop();
    }
  });

  it('loses and doubles nothing when the source process is killed before its messages are queued', async () => {
    const input = join(work, 'gateway.log');
    writeFileSync(input, '');
    let sources = await startSources();
    // Default omrelp template (RSYSLOG_ForwardFormat), tag without a colon.
    const rsyslog = startRsyslog(work, input, 'gateway', `port="${relpPort}" timeout="5"`);
    const redis = await connectRedis(ctx.redisUrl, 'producer');
    const ip = '198.51.100.61';
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      appendFileSync(input, `${Array.from({ length: 30 }, (_, i) => nginx(ip, i)).join('\n')}\n`);
      expect(
        await eventually(
          () => count(ip),
          (n) => n >= 30,
          { timeoutMs: 60_000 },
        ),
        `rsyslog output:\n${rsyslog.output()}`,
      ).toBe(30);

      // Redis accepts no writes for a while: the source receives the next messages but cannot
      // queue them, so it must not acknowledge them. Then it dies without a chance to clean up.
      await redis.call('CLIENT', 'PAUSE', '6000', 'WRITE');
      appendFileSync(input, `${Array.from({ length: 30 }, (_, i) => nginx(ip, 30 + i)).join('\n')}\n`);
      await new Promise((r) => setTimeout(r, 3_000));
      sources.kill('SIGKILL');
      await new Promise((r) => sources.once('exit', r));
      await redis.call('CLIENT', 'UNPAUSE');

      // While the source is down rsyslog keeps retrying; more lines arrive in the meantime.
      appendFileSync(input, `${Array.from({ length: 30 }, (_, i) => nginx(ip, 60 + i)).join('\n')}\n`);
      await new Promise((r) => setTimeout(r, 1_000));
      sources = await startSources();

      expect(
        await eventually(
          () => count(ip),
          (n) => n >= 90,
          { timeoutMs: 90_000 },
        ),
        `rsyslog output:\n${rsyslog.output()}`,
      ).toBe(90);
      // every line exactly once
      const r = await ctx.es.search<{ url: { path: string } }>({
        index: names.eventsAlias,
        query: { term: { 'source.ip': ip } },
        size: 200,
        _source: ['url.path'],
      });
      const paths = r.hits.hits.map((h) => h._source!.url.path).sort();
      expect(new Set(paths).size).toBe(90);
      expect(paths).toContain('/api/orders/45');
    } finally {
      await redis.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      redis.disconnect();
      rsyslog.child.kill('SIGTERM');
      sources.kill('SIGTERM');
    }
  });
});
