/**
 * Running `gatewatch` as a process in tests, as a user runs it: the real entry point, its
 * exit code, stdout and stderr apart.
 */
import { type SpawnSyncOptions, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const GATEWATCH = fileURLToPath(new URL('./gatewatch.ts', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Node flags before the entry point (e.g. `--import` a hook). */
  nodeArgs?: string[];
}

function environment(extra: CliOptions['env'] = {}): NodeJS.ProcessEnv {
  // no colour unless a test asks; no inherited config file
  const env: NodeJS.ProcessEnv = { ...process.env, GATEWATCH_CONFIG: undefined, FORCE_COLOR: undefined };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

/** Run `gatewatch <args>` to completion. */
export function runCli(args: string[], options: CliOptions = {}): CliResult {
  const spawnOptions: SpawnSyncOptions = {
    cwd: options.cwd ?? ROOT,
    env: environment(options.env),
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
    ...(options.input !== undefined ? { input: options.input } : {}),
  };
  const r = spawnSync(process.execPath, [...(options.nodeArgs ?? []), GATEWATCH, ...args], spawnOptions);
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Run `gatewatch <args>` asynchronously (for servers a test talks to, then stops). */
export function spawnCli(args: string[], options: CliOptions = {}) {
  return spawn(process.execPath, [...(options.nodeArgs ?? []), GATEWATCH, ...args], {
    cwd: options.cwd ?? ROOT,
    env: environment(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
