/**
 * The range's own processes: prerequisite checks (which Debian package is missing), free
 * loopback ports, and a registry of every child it starts so that all of them — gateways, the
 * test API, attack tools and the children those fork — are stopped on every exit path (normal
 * end, error, Ctrl-C, SIGTERM from `timeout`). Each child runs in its own process group, and
 * stopping it signals the whole group.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { createServer } from 'node:net';

/** Files whose absence names the Debian package to install. */
export const PREREQUISITES: { pkg: string; paths: string[] }[] = [
  { pkg: 'nginx', paths: ['/usr/sbin/nginx'] },
  { pkg: 'libnginx-mod-http-modsecurity', paths: ['/usr/lib/nginx/modules/ngx_http_modsecurity_module.so'] },
  {
    pkg: 'modsecurity-crs',
    paths: ['/usr/share/modsecurity-crs/rules', '/etc/modsecurity/crs/crs-setup.conf'],
  },
  { pkg: 'haproxy', paths: ['/usr/sbin/haproxy'] },
  { pkg: 'hydra', paths: ['/usr/bin/hydra'] },
  { pkg: 'ffuf', paths: ['/usr/bin/ffuf'] },
  { pkg: 'wfuzz', paths: ['/usr/bin/wfuzz'] },
  { pkg: 'sqlmap', paths: ['/usr/bin/sqlmap'] },
  { pkg: 'siege', paths: ['/usr/bin/siege'] },
  { pkg: 'gcc', paths: ['/usr/bin/gcc'] },
  { pkg: 'libc6-dev', paths: ['/usr/include/dlfcn.h'] },
  { pkg: 'coreutils', paths: ['/usr/bin/timeout'] },
];

export class RangeSetupError extends Error {}

/** Throws a one-line RangeSetupError naming the first missing Debian package. */
export function checkPrerequisites(list: readonly { pkg: string; paths: string[] }[] = PREREQUISITES): void {
  const missing = list.filter((p) => !p.paths.every((path) => existsSync(path))).map((p) => p.pkg);
  if (missing.length > 0) {
    throw new RangeSetupError(
      `range: missing Debian package${missing.length > 1 ? 's' : ''} ${missing.join(', ')} — install with: apt-get install -y ${missing.join(' ')}`,
    );
  }
}

/** Version of an installed Debian package, or "unknown". */
export function packageVersion(pkg: string): string {
  try {
    return (
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own field syntax
      execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() || 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

/** A port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Started {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Files for stdout / stderr (appended); default: discarded. */
  stdout?: string;
  stderr?: string;
}

/** Every process group the range started and has not seen exit yet. */
export class ProcessRegistry {
  private readonly live = new Map<number, Started>();
  /** Every process started (pid and command), for checking afterwards that none is left. */
  readonly history: { name: string; pid: number; command: string }[] = [];
  private readonly cleanups: (() => void)[] = [];
  private readonly onExit = () => {
    this.killAllSync();
    for (const c of this.cleanups.splice(0)) c();
  };
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.onExit();
    // the conventional exit code of a process ended by a signal
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15));
  };

  constructor() {
    process.on('exit', this.onExit);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('SIGHUP', this.onSignal);
  }

  /** Run `fn` (synchronously) if the process exits or is signalled before dispose(). */
  atExit(fn: () => void): void {
    this.cleanups.push(fn);
  }

  spawn(name: string, command: string, args: string[], opts: SpawnOptions = {}): Started {
    const out = opts.stdout === undefined ? 'ignore' : openSync(opts.stdout, 'a');
    const err = opts.stderr === undefined ? 'ignore' : openSync(opts.stderr, 'a');
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', out, err],
      detached: true,
    });
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => {
        if (child.pid !== undefined) this.live.delete(child.pid);
        resolve(code ?? signal ?? 'unknown');
      });
      child.once('error', (e) => {
        if (child.pid !== undefined) this.live.delete(child.pid);
        resolve(`spawn error: ${e.message}`);
      });
    });
    const started = { name, child, exited };
    if (child.pid !== undefined) {
      this.live.set(child.pid, started);
      this.history.push({ name, pid: child.pid, command });
    }
    return started;
  }

  /** Signal a child's process group, wait up to `graceMs`, then SIGKILL the group. */
  async stop(p: Started, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const pid = p.child.pid;
    if (pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) {
      if (pid !== undefined) killGroup(pid, 'SIGKILL');
      return;
    }
    killGroup(pid, signal);
    const done = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
    // the leader may be gone while forked children (hydra tasks, nginx workers) linger
    killGroup(pid, 'SIGKILL');
    if (!done) await Promise.race([p.exited, sleep(2000)]);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((p) => this.stop(p)));
  }

  /** Last resort on process exit: SIGKILL every group still registered. */
  killAllSync(): void {
    for (const pid of this.live.keys()) killGroup(pid, 'SIGKILL');
    this.live.clear();
  }

  /** Remove the process handlers (after stopAll). */
  dispose(): void {
    this.cleanups.length = 0;
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('SIGHUP', this.onSignal);
  }

  get size(): number {
    return this.live.size;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
