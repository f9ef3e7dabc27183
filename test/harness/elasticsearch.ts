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
  /** The node's name (node.name). */
  name: string;
  /** Its data directory (path.data): a size-limited mount with `dataLimitMb`. */
  dataPath: string;
  /** `dataPath` is a tmpfs of `dataLimitMb` (else it is on the machine's disk). */
  dataLimited: boolean;
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
  /** node.name (default gatewatch-test-1). */
  name?: string;
  /** Transport port (default: a free one). */
  transportPort?: number;
  /**
   * Join or form a cluster instead of running single-node: the transport addresses of every
   * node (discovery.seed_hosts) and the names of the master-eligible ones that bootstrap it.
   */
  cluster?: { seedHosts: string[]; initialMasterNodes: string[] };
  /**
   * Put path.data on a tmpfs of this many MiB (root only: a disk that really fills up, else it
   * stays on the disk: see `dataLimited`), for tests of the disk watermarks. The node's disk
   * thresholds are then enabled.
   */
  dataLimitMb?: number;
  /** More elasticsearch.yml lines. */
  settings?: Record<string, string | number | boolean>;
}

export async function startElasticsearch(
  options: StartElasticsearchOptions = {},
): Promise<ElasticsearchNode> {
  const version = options.version ?? ELASTICSEARCH_VERSION;
  const jdk = findJdk();
  const home = ensureDistribution(version);
  const port = options.port ?? (await freePort());
  const transportPort = options.transportPort ?? (await freePort());
  const heap = options.heapMb ?? 512;
  const name = options.name ?? 'gatewatch-test-1';

  const runs = join(cacheDir(), 'runs');
  mkdirSync(runs, { recursive: true, mode: 0o755 });
  const runDir = mkdtempSync(join(runs, `node-${port}-`));
  const conf = join(runDir, 'config');
  cpSync(join(home, 'config'), conf, { recursive: true });
  const dataPath = join(runDir, 'data');
  mkdirSync(dataPath);
  mkdirSync(join(runDir, 'logs'));
  mkdirSync(join(runDir, 'tmp'));
  let mounted = false;
  if (options.dataLimitMb !== undefined) {
    // A tmpfs of its own needs root with CAP_SYS_ADMIN; without, the data path stays on the
    // machine's disk and the caller sets watermarks from its free space instead.
    try {
      if (!isRoot()) throw new Error('not root');
      // To try the fallback where mounting is allowed.
      if (process.env.GATEWATCH_TEST_NO_TMPFS) throw new Error('GATEWATCH_TEST_NO_TMPFS is set');
      run(requireCommand('mount', 'install the `mount` package'), [
        '-t',
        'tmpfs',
        '-o',
        `size=${options.dataLimitMb}m,mode=0755`,
        'tmpfs',
        dataPath,
      ]);
      mounted = true;
    } catch (err) {
      console.warn(
        `test harness: no ${options.dataLimitMb} MiB tmpfs for the data path (${(err as Error).message.split('\n')[0]}); it stays on the disk`,
      );
    }
  }
  writeFileSync(
    join(conf, 'elasticsearch.yml'),
    [
      `cluster.name: ${options.settings?.['cluster.name'] ?? 'gatewatch-test'}`,
      `node.name: ${name}`,
      'network.host: 127.0.0.1',
      `http.port: ${port}`,
      `transport.port: ${transportPort}`,
      ...(options.cluster
        ? [
            `discovery.seed_hosts: [${options.cluster.seedHosts.map((h) => `"${h}"`).join(', ')}]`,
            `cluster.initial_master_nodes: [${options.cluster.initialMasterNodes.map((n) => `"${n}"`).join(', ')}]`,
          ]
        : ['discovery.type: single-node']),
      'xpack.security.enabled: false',
      // Test machines can be short of disk: never flip indices read-only mid-run (except on a
      // node whose data path is a small mount of its own, which is there to fill up).
      `cluster.routing.allocation.disk.threshold_enabled: ${options.dataLimitMb !== undefined}`,
      'action.destructive_requires_name: false',
      `path.data: ${dataPath}`,
      `path.logs: ${join(runDir, 'logs')}`,
      ...Object.entries(options.settings ?? {})
        .filter(([k]) => k !== 'cluster.name')
        .map(([k, v]) => `${k}: ${v}`),
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
        // A cluster node answers once it has joined a cluster with an elected master (health
        // then answers, whatever the colour); a single node once its indices are usable.
        const res = await fetch(
          options.cluster
            ? `${url}/_cluster/health?timeout=1s`
            : `${url}/_cluster/health?wait_for_status=yellow&timeout=1s`,
        );
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(250);
    }
    await stopProcessGroup(child);
    throw new Error(`Elasticsearch did not become ready on ${url} within 180 s:\n${tail()}`);
  };

  try {
    await launch();
  } catch (err) {
    if (mounted) unmount(dataPath);
    throw err;
  }
  return {
    url,
    port,
    version,
    name,
    dataPath,
    dataLimited: mounted,
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
      if (mounted) unmount(dataPath);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

function unmount(path: string): void {
  try {
    run(requireCommand('umount', 'install the `mount` package'), [path]);
  } catch {
    // left mounted: a tmpfs goes with the machine
  }
}

export interface ElasticsearchCluster {
  nodes: ElasticsearchNode[];
  /** Every node's URL, for a client that spreads its requests. */
  urls: string[];
  dispose(): Promise<void>;
}

/**
 * Several nodes of the same distribution on loopback forming one cluster (every node master
 * eligible and a data node), e.g. three with small heaps for the fault tests. Resolves once the
 * cluster has all its nodes.
 */
export async function startElasticsearchCluster(
  options: { nodes?: number; heapMb?: number; version?: string } = {},
): Promise<ElasticsearchCluster> {
  const count = options.nodes ?? 3;
  const ports = await Promise.all(
    Array.from({ length: count }, async () => ({ http: await freePort(), transport: await freePort() })),
  );
  const names = ports.map((_, i) => `gatewatch-cluster-${i + 1}`);
  const cluster = {
    seedHosts: ports.map((p) => `127.0.0.1:${p.transport}`),
    initialMasterNodes: names,
  };
  const clusterName = `gatewatch-cluster-${ports[0]!.http}`;
  const started = await Promise.allSettled(
    ports.map((p, i) =>
      startElasticsearch({
        port: p.http,
        transportPort: p.transport,
        name: names[i]!,
        heapMb: options.heapMb ?? 320,
        ...(options.version ? { version: options.version } : {}),
        cluster,
        settings: { 'cluster.name': clusterName },
      }),
    ),
  );
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.dispose().catch(() => undefined)));
    throw (failed as PromiseRejectedResult).reason;
  }
  const deadline = Date.now() + 120_000;
  for (;;) {
    const res = await fetch(`${nodes[0]!.url}/_cluster/health?wait_for_nodes=${count}&timeout=5s`).catch(
      () => undefined,
    );
    if (res?.ok && !((await res.json()) as { timed_out: boolean }).timed_out) break;
    if (Date.now() > deadline) {
      await Promise.all(nodes.map((n) => n.dispose().catch(() => undefined)));
      throw new Error(`the ${count} Elasticsearch nodes did not form one cluster within 120 s`);
    }
    await sleep(500);
  }
  return {
    nodes,
    urls: nodes.map((n) => n.url),
    async dispose() {
      await Promise.all(nodes.map((n) => n.dispose()));
    },
  };
}
