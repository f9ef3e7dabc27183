/**
 * A real Elasticsearch node built only from Maven Central artifacts: the official
 * `org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>` distribution,
 * fetched with Maven, unpacked once into a cache, and started on the machine's JDK (21+ for
 * 9.x) as an unprivileged user (Elasticsearch refuses to run as root), loopback only,
 * single node, security off.
 *
 * Every start gets its own config and data directory (ES_PATH_CONF, path.data), so the
 * unpacked distribution is shared read-only and several nodes can run at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  captureTail,
  ensureSystemUser,
  freePort,
  isRoot,
  MissingPrerequisiteError,
  requireCommand,
  run,
  sleep,
  stopProcessGroup,
} from './processes.ts';

/** Same major as the @elastic/elasticsearch client (9.x); docker-compose.yml uses the same. */
export const ELASTICSEARCH_VERSION = process.env.GATEWATCH_ES_VERSION ?? '9.5.4';
const MIN_JDK = 21;
const ES_USER = 'gatewatch-es';

export interface ElasticsearchNode {
  url: string;
  port: number;
  version: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
  kill(): Promise<void>;
  dispose(): Promise<void>;
}

/** Where the download and the unpacked node are cached. It must be traversable by ES_USER. */
export function cacheDir(): string {
  if (process.env.GATEWATCH_CACHE_DIR) return process.env.GATEWATCH_CACHE_DIR;
  // root's home is 0700, so the unprivileged node user could not read a cache there.
  if (isRoot()) return '/var/tmp/gatewatch-cache';
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'gatewatch');
}

function javaMajor(javaHome: string): number | undefined {
  const release = join(javaHome, 'release');
  if (!existsSync(release)) return undefined;
  const m = /JAVA_VERSION="(\d+)/.exec(readFileSync(release, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/** A JDK 21+ home: ES_JAVA_HOME, JAVA_HOME, or the newest under /usr/lib/jvm. */
export function findJdk(): string {
  for (const candidate of [process.env.ES_JAVA_HOME, process.env.JAVA_HOME]) {
    if (candidate && (javaMajor(candidate) ?? 0) >= MIN_JDK) return candidate;
  }
  const root = '/usr/lib/jvm';
  const homes = existsSync(root)
    ? readdirSync(root)
        .map((name) => join(root, name))
        .map((home) => ({ home, major: javaMajor(home) ?? 0 }))
        .filter((j) => j.major >= MIN_JDK && existsSync(join(j.home, 'bin', 'java')))
        .sort((a, b) => b.major - a.major)
    : [];
  if (homes[0]) return homes[0].home;
  throw new MissingPrerequisiteError(
    `test harness: no JDK ${MIN_JDK}+ found (Elasticsearch ${ELASTICSEARCH_VERSION} needs one) — install e.g. a Temurin 21/25 JDK into /usr/lib/jvm or set ES_JAVA_HOME`,
  );
}

/** Fetch (Maven) and unpack the distribution once; later calls return the cached home. */
export function ensureDistribution(version = ELASTICSEARCH_VERSION): string {
  const base = cacheDir();
  const home = join(base, `elasticsearch-${version}`);
  if (existsSync(join(home, 'bin', 'elasticsearch'))) return home;

  const mvn = requireCommand('mvn', 'install Maven with `apt-get install -y maven`');
  const unzip = requireCommand('unzip', 'install it with `apt-get install -y unzip`');
  mkdirSync(base, { recursive: true, mode: 0o755 });
  const download = join(base, 'download');
  const zip = join(download, `elasticsearch-${version}.zip`);
  if (!existsSync(zip)) {
    run(mvn, [
      '-B',
      '-q',
      'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy',
      `-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:${version}:zip`,
      `-DoutputDirectory=${download}`,
    ]);
  }
  const staging = mkdtempSync(join(base, 'unpack-'));
  run(unzip, ['-q', zip, '-d', staging]);
  const unpacked = join(staging, `elasticsearch-${version}`);
  try {
    renameSync(unpacked, home);
  } catch (err) {
    // Another process unpacked it first: fine.
    if (!existsSync(join(home, 'bin', 'elasticsearch'))) throw err;
  }
  rmSync(staging, { recursive: true, force: true });
  return home;
}

function chownRecursive(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownRecursive(child, uid, gid);
    else chownSync(child, uid, gid);
  }
}

export interface StartElasticsearchOptions {
  port?: number;
  heapMb?: number;
  version?: string;
}

export async function startElasticsearch(
  options: StartElasticsearchOptions = {},
): Promise<ElasticsearchNode> {
  const version = options.version ?? ELASTICSEARCH_VERSION;
  const jdk = findJdk();
  const home = ensureDistribution(version);
  const port = options.port ?? (await freePort());
  const transportPort = await freePort();
  const heap = options.heapMb ?? 512;

  const runs = join(cacheDir(), 'runs');
  mkdirSync(runs, { recursive: true, mode: 0o755 });
  const runDir = mkdtempSync(join(runs, `node-${port}-`));
  const conf = join(runDir, 'config');
  cpSync(join(home, 'config'), conf, { recursive: true });
  mkdirSync(join(runDir, 'data'));
  mkdirSync(join(runDir, 'logs'));
  mkdirSync(join(runDir, 'tmp'));
  writeFileSync(
    join(conf, 'elasticsearch.yml'),
    [
      'cluster.name: gatewatch-test',
      'node.name: gatewatch-test-1',
      'network.host: 127.0.0.1',
      `http.port: ${port}`,
      `transport.port: ${transportPort}`,
      'discovery.type: single-node',
      'xpack.security.enabled: false',
      // Test machines can be short of disk: never flip indices read-only mid-run.
      'cluster.routing.allocation.disk.threshold_enabled: false',
      'action.destructive_requires_name: false',
      `path.data: ${join(runDir, 'data')}`,
      `path.logs: ${join(runDir, 'logs')}`,
      '',
    ].join('\n'),
  );

  let identity: { uid: number; gid: number } | undefined;
  if (isRoot()) {
    identity = ensureSystemUser(ES_USER);
    chownRecursive(runDir, identity.uid, identity.gid);
  }

  let child: ChildProcess | undefined;
  let tail: () => string = () => '';
  const url = `http://127.0.0.1:${port}`;

  const launch = async () => {
    child = spawn(join(home, 'bin', 'elasticsearch'), [], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: runDir,
        ES_JAVA_HOME: jdk,
        ES_PATH_CONF: conf,
        ES_TMPDIR: join(runDir, 'tmp'),
        ES_JAVA_OPTS: `-Xms${heap}m -Xmx${heap}m`,
      },
    });
    tail = captureTail(child);
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `Elasticsearch exited during start-up (${child.exitCode ?? child.signalCode}):\n${tail()}`,
        );
      }
      try {
        const res = await fetch(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(250);
    }
    await stopProcessGroup(child);
    throw new Error(`Elasticsearch did not become ready on ${url} within 180 s:\n${tail()}`);
  };

  await launch();
  return {
    url,
    port,
    version,
    async stop() {
      if (child) await stopProcessGroup(child, 30_000);
    },
    async restart() {
      if (child && child.exitCode === null && child.signalCode === null)
        await stopProcessGroup(child, 30_000);
      await launch();
    },
    async kill() {
      if (!child || child.pid === undefined || child.exitCode !== null) return;
      const exited = new Promise((r) => child!.once('exit', r));
      process.kill(-child.pid, 'SIGKILL');
      await exited;
    },
    async dispose() {
      if (child) await stopProcessGroup(child, 30_000);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}
