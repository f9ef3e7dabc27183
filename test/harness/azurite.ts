/**
 * A real Azure Blob Storage endpoint for the pull-source tests: Azurite's blob service (npm
 * `azurite`, a dev dependency). Started lazily by the test files that need it.
 *
 *   1. AZURITE_BLOB_URL when set (e.g. http://127.0.0.1:10000/devstoreaccount1);
 *   2. otherwise Azurite's blob service from node_modules, run with this Node directly (not
 *      through npx, whose PID would not be Azurite's), in memory, on a free loopback port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { captureTail, MissingPrerequisiteError, sleep, stopProcessGroup } from './processes.ts';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  /** Blob endpoint including the account: http://127.0.0.1:PORT/devstoreaccount1 */
  blobUrl: string;
  connectionString: string;
  how: string;
  stop(): Promise<void>;
}

function connectionString(blobUrl: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobUrl};`;
}

function azuriteMain(): string {
  try {
    const pkg = createRequire(import.meta.url).resolve('azurite/package.json');
    const main = join(dirname(pkg), 'dist', 'src', 'blob', 'main.js');
    if (existsSync(main)) return main;
  } catch {
    // not installed
  }
  throw new MissingPrerequisiteError(
    'test harness: Azurite not found in node_modules — run `npm install` (azurite is a dev dependency) or set AZURITE_BLOB_URL',
  );
}

export async function startAzurite(): Promise<AzuriteServer> {
  const given = process.env.AZURITE_BLOB_URL?.replace(/\/$/, '');
  if (given)
    return {
      blobUrl: given,
      connectionString: connectionString(given),
      how: 'from AZURITE_BLOB_URL',
      async stop() {},
    };
  const main = azuriteMain();
  const started = Date.now();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--inMemoryPersistence',
      '--extentMemoryLimit',
      '256',
      '--disableTelemetry',
      // the SDK speaks a newer service version than this Azurite knows
      '--skipApiVersionCheck',
    ],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const tail = captureTail(child);
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  let port: string | undefined;
  while (Date.now() < deadline && !port) {
    if (child.exitCode !== null) throw new Error(`Azurite exited (${child.exitCode}):\n${tail()}`);
    port = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
    if (!port) await sleep(50);
  }
  if (!port) {
    await stopProcessGroup(child, 5_000);
    throw new Error(`Azurite did not start within 60 s:\n${tail()}`);
  }
  const blobUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`[gatewatch test harness] Azurite started locally in ${seconds} s at ${blobUrl}`);
  return {
    blobUrl,
    connectionString: connectionString(blobUrl),
    how: `started locally in ${seconds} s`,
    async stop() {
      await stopProcessGroup(child, 10_000);
    },
  };
}
