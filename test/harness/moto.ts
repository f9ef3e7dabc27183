/**
 * A real S3, SQS, SNS and CloudWatch Logs endpoint for the pull-source tests: moto in server
 * mode (PyPI `moto[server]`). Started lazily by the test files that need it, not by the global
 * setup, so runs that do not touch AWS sources do not pay for it.
 *
 *   1. MOTO_URL when set (a moto server someone else runs; tests isolate themselves by naming
 *      buckets, queues and log groups after their unique prefix);
 *   2. otherwise `moto_server` from PATH on a free loopback port (`-p 0`; the port it took is
 *      read from its output).
 *
 * No moto_server and no MOTO_URL: one line saying what to install, never a skip.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { captureTail, requireCommand, sleep, stopProcessGroup } from './processes.ts';

export interface MotoServer {
  url: string;
  /** How it was found: "MOTO_URL" or "started locally in N s". */
  how: string;
  /** Client settings for every AWS SDK client against this server. */
  aws: {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
  };
  stop(): Promise<void>;
}

/** moto's default account, used in the ARNs it makes up. */
export const MOTO_ACCOUNT = '123456789012';

function clientSettings(url: string): MotoServer['aws'] {
  // Static credentials: without them the SDK would search the default chain (instance metadata).
  return {
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

export async function startMoto(): Promise<MotoServer> {
  const given = process.env.MOTO_URL?.replace(/\/$/, '');
  if (given) {
    if (!(await answers(given))) throw new Error(`MOTO_URL=${given} does not answer GET /moto-api/`);
    return { url: given, how: 'from MOTO_URL', aws: clientSettings(given), async stop() {} };
  }
  const binary = requireCommand(
    'moto_server',
    "install moto in server mode with `python3 -m pip install 'moto[server]'` (or set MOTO_URL)",
  );
  const started = Date.now();
  const child: ChildProcess = spawn(binary, ['-H', '127.0.0.1', '-p', '0'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = captureTail(child);
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}):\n${tail()}`);
    // "* Running on http://127.0.0.1:PORT" (other lines carry colour codes)
    const port = /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
    if (port) {
      url = `http://127.0.0.1:${port}`;
      if (await answers(url)) break;
    }
    await sleep(100);
  }
  if (!url || !(await answers(url))) {
    await stopProcessGroup(child, 5_000);
    throw new Error(`moto_server did not answer within 60 s:\n${tail()}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`[gatewatch test harness] moto started locally in ${seconds} s at ${url}`);
  return {
    url,
    how: `started locally in ${seconds} s`,
    aws: clientSettings(url),
    async stop() {
      await stopProcessGroup(child, 10_000);
    },
  };
}
