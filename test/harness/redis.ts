/**
 * Starts Debian's `redis-server` on a free loopback port in a temporary directory, with the
 * settings production uses (noeviction, AOF on), so queue tests exercise the real thing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { captureTail, freePort, requireCommand, sleep, stopProcessGroup } from './processes.ts';

export interface RedisServer {
  url: string;
  port: number;
  version: string;
  /** Its data directory: the append-only files (appendonlydir/) and dump.rdb, for tests that read them. */
  dir: string;
  /** Graceful stop (SIGTERM: AOF flushed). */
  stop(): Promise<void>;
  /** Start again on the same port and data directory (after stop or crash). */
  restart(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Stop and delete the data directory. */
  dispose(): Promise<void>;
}

export async function startRedisServer(
  options: { port?: number; extraArgs?: string[] } = {},
): Promise<RedisServer> {
  const binary = requireCommand('redis-server', 'install it with `apt-get install -y redis-server`');
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'gatewatch-redis-'));
  let child: ChildProcess | undefined;
  let tail: () => string = () => '';

  const launch = async () => {
    child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--maxmemory-policy',
        'noeviction',
        '--daemonize',
        'no',
        '--logfile',
        '',
        ...(options.extraArgs ?? []),
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    tail = captureTail(child);
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    try {
      for (let i = 0; i < 200; i++) {
        if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}):\n${tail()}`);
        try {
          if (probe.status !== 'ready') await probe.connect();
          if ((await probe.ping()) === 'PONG') return;
        } catch {
          probe.disconnect();
        }
        await sleep(50);
      }
      throw new Error(`redis-server did not answer PING on port ${port}:\n${tail()}`);
    } finally {
      probe.disconnect();
    }
  };

  await launch();
  const client = new Redis({ port, host: '127.0.0.1' });
  const info = await client.info('server');
  client.disconnect();
  const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    version,
    dir,
    async stop() {
      if (child) await stopProcessGroup(child);
    },
    async restart() {
      if (child && child.exitCode === null && child.signalCode === null) await stopProcessGroup(child);
      await launch();
    },
    async kill() {
      if (!child || child.pid === undefined) return;
      const exited = new Promise((r) => child!.once('exit', r));
      process.kill(-child.pid, 'SIGKILL');
      await exited;
    },
    async dispose() {
      if (child) await stopProcessGroup(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
