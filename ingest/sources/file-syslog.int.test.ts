import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { freePort, which } from '../../test/harness/processes.ts';
import { selfSignedCertificate } from '../../test/harness/tls.ts';
import { type IngestRuntime, startIngest } from '../runtime.ts';
import { FileSource } from './file.ts';
import { SyslogSource } from './syslog.ts';

const ctx = integrationContext('file-syslog');
const TOKEN = 'tok-rsyslog-0123456789abcdef';

const nginx = (ip: string, n: number) =>
  `${ip} - - [23/Nov/2026:11:${String(Math.floor(n / 60) % 60).padStart(2, '0')}:${String(n % 60).padStart(2, '0')} +0000] "POST /api/login HTTP/1.1" 401 ${100 + n} "-" "python-requests/2.32"`;

describe('file and syslog sources (real files, real logger and rsyslog)', () => {
  let runtime: IngestRuntime;
  const dir = mkdtempSync(join(tmpdir(), 'gw-files-'));
  const countFor = (ip: string) => ctx.countEvents({ term: { 'source.ip': ip } });

  beforeAll(async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        redis: { url: ctx.redisUrl, prefix: ctx.prefix },
        ingest: { httpPort: 0, sources: [{ name: 'rsyslog', type: 'http', tokens: [TOKEN] }] },
      },
    });
    runtime = await startIngest(config, { workers: 1, http: true, refresh: true });
  });
  afterAll(async () => {
    await runtime?.close();
    await ctx.cleanup();
  });

  it('tails files across appends, rotation and .gz archives, and a restart neither re-reads nor skips', async () => {
    const ip = '203.0.113.10';
    const log = join(dir, 'access.log');
    const source = { name: 'files', type: 'file' as const, tokens: [], paths: [join(dir, 'access.log*')] };
    const offsetsKey = `${ctx.prefix}:offsets:files`;
    const make = () =>
      new FileSource({ source, producer: runtime.producer, redis: runtime.redis, offsetsKey });

    writeFileSync(log, Array.from({ length: 30 }, (_, i) => nginx(ip, i)).join('\n') + '\n');
    const first = make();
    expect(await first.pollOnce()).toBe(30);
    // Appended lines plus an incomplete last line (no newline yet): the partial line waits.
    appendFileSync(
      log,
      Array.from({ length: 10 }, (_, i) => nginx(ip, 30 + i)).join('\n') + '\n' + nginx(ip, 40).slice(0, 20),
    );
    expect(await first.pollOnce()).toBe(10);
    // Rotation: the writer finishes its line in the renamed file; a new file starts.
    renameSync(log, `${log}.1`);
    appendFileSync(`${log}.1`, `${nginx(ip, 40).slice(20)}\n`);
    writeFileSync(log, Array.from({ length: 5 }, (_, i) => nginx(ip, 41 + i)).join('\n') + '\n');
    expect(await first.pollOnce()).toBe(6);
    // An archived day, compressed.
    writeFileSync(
      `${log}.2.gz`,
      gzipSync(Array.from({ length: 20 }, (_, i) => nginx(ip, 100 + i)).join('\n') + '\n'),
    );
    expect(await first.pollOnce()).toBe(20);

    // A fresh process with the same offsets store reads nothing again...
    const restarted = make();
    expect(await restarted.pollOnce()).toBe(0);
    // ...but picks up what arrives after.
    appendFileSync(log, `${nginx(ip, 46)}\n`);
    expect(await restarted.pollOnce()).toBe(1);

    expect(
      await eventually(
        () => countFor(ip),
        (n) => n >= 67,
      ),
    ).toBe(67);
    // copytruncate: the file shrinks below its offset and is read from the start again.
    writeFileSync(log, `${nginx(ip, 200)}\n`);
    expect(await restarted.pollOnce()).toBe(1);
    expect(
      await eventually(
        () => countFor(ip),
        (n) => n >= 68,
      ),
    ).toBe(68);
  });

  it('receives syslog from util-linux logger over UDP (RFC 3164) and TCP (RFC 5424, octet counting)', async () => {
    const logger = which('logger');
    expect(logger, 'util-linux `logger` is required (apt-get install -y bsdutils)').toBeDefined();
    const syslog = new SyslogSource({
      source: { name: 'syslog', type: 'syslog', tokens: [], paths: [] },
      producer: runtime.producer,
      host: '127.0.0.1',
      port: await freePort(),
    });
    await syslog.start();
    try {
      const ip = '198.51.100.77';
      const send = (args: string[], line: string) => {
        const r = spawnSync(logger!, [
          '--server',
          '127.0.0.1',
          '--port',
          String(syslog.udpPort),
          '--tag',
          'nginx',
          ...args,
          line,
        ]);
        expect(r.status, r.stderr.toString()).toBe(0);
      };
      for (let i = 0; i < 5; i++) send(['--udp', '--rfc3164'], nginx(ip, i));
      for (let i = 5; i < 10; i++) send(['--tcp', '--rfc5424', '--octet-count'], nginx(ip, i));
      for (let i = 10; i < 12; i++) send(['--tcp', '--rfc5424'], nginx(ip, i));
      expect(
        await eventually(
          () => countFor(ip),
          (n) => n >= 12,
        ),
      ).toBe(12);
    } finally {
      await syslog.stop();
    }
  });

  it('receives octet-counted syslog over TLS', async () => {
    const { key, cert } = selfSignedCertificate(mkdtempSync(join(tmpdir(), 'gw-tls-')));
    const syslog = new SyslogSource({
      source: { name: 'syslog-tls', type: 'syslog', tokens: [], paths: [] },
      producer: runtime.producer,
      host: '127.0.0.1',
      port: 0,
      udp: false,
      tcp: false,
      tls: {
        port: 0,
        options: { key: readFileSync(key), cert: readFileSync(cert) },
      },
    });
    await syslog.start();
    try {
      const ip = '198.51.100.88';
      const frames = [0, 1, 2].map((i) => {
        const msg = `<134>1 2026-11-23T11:00:00Z gw nginx - - - ${nginx(ip, i)}`;
        return `${Buffer.byteLength(msg)} ${msg}`;
      });
      await new Promise<void>((resolve, reject) => {
        const socket = tlsConnect(
          { host: '127.0.0.1', port: syslog.tlsPort!, rejectUnauthorized: false },
          () => {
            socket.end(frames.join(''), () => resolve());
          },
        );
        socket.on('error', reject);
      });
      expect(
        await eventually(
          () => countFor(ip),
          (n) => n >= 3,
        ),
      ).toBe(3);
    } finally {
      await syslog.stop();
    }
  });

  it('accepts rsyslog omelasticsearch shipping to the _bulk endpoint unchanged', async () => {
    const rsyslogd = which('rsyslogd');
    expect(rsyslogd, 'rsyslog is required (apt-get install -y rsyslog rsyslog-elasticsearch)').toBeDefined();
    const port = (runtime.http!.server.address() as { port: number }).port;
    const work = mkdtempSync(join(tmpdir(), 'gw-rsyslog-'));
    chmodSync(work, 0o755);
    const input = join(work, 'gateway.log');
    const ip = '192.0.2.150';
    writeFileSync(input, '');
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
         bulkmode="on" uid="rsyslog" pwd="${TOKEN}" action.resumeRetryCount="-1" action.resumeInterval="1")
}
`,
    );
    const child = spawn(rsyslogd!, ['-n', '-f', conf, '-i', join(work, 'rsyslog.pid')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      appendFileSync(input, Array.from({ length: 8 }, (_, i) => nginx(ip, i)).join('\n') + '\n');
      const n = await eventually(
        () => countFor(ip),
        (c) => c >= 8,
        { timeoutMs: 45_000 },
      );
      expect(n, `rsyslog output:\n${output}`).toBe(8);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
