/**
 * A real Apache Kafka broker for the pull-source tests, built only from Maven Central: the
 * `org.apache.kafka:kafka_2.13` artifact and its runtime dependencies, fetched with `mvn`
 * into the harness cache once (about 45 jars, 43 MB), run in KRaft mode (broker and
 * controller in one JVM) on the machine's newest JDK 17+. Started lazily by the test files
 * that need it.
 *
 *   1. KAFKA_BOOTSTRAP_SERVERS when set (plaintext only: the TLS/SASL test needs the local
 *      broker's SASL_SSL listener and says so);
 *   2. otherwise a local broker with two client listeners: PLAINTEXT, and SASL_SSL (SASL
 *      PLAIN over TLS with a throw-away self-signed certificate) for the TLS/SASL options.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDir } from './elasticsearch.ts';
import {
  captureTail,
  freePort,
  MissingPrerequisiteError,
  requireCommand,
  run,
  sleep,
  stopProcessGroup,
} from './processes.ts';
import { selfSignedCertificate } from './tls.ts';

export const KAFKA_VERSION = process.env.GATEWATCH_KAFKA_VERSION ?? '4.4.0';
const MIN_JDK = 17;
/** Routes the broker's SLF4J logging to log4j2 (default level ERROR, on the console). */
const LOG4J_SLF4J = 'org.apache.logging.log4j:log4j-slf4j-impl:2.25.5';

export interface KafkaBroker {
  /** host:port of the PLAINTEXT listener. */
  bootstrap: string;
  /** The SASL_SSL listener (local broker only). */
  saslSsl?: { bootstrap: string; caPem: string; username: string; password: string };
  how: string;
  stop(): Promise<void>;
}

function javaMajor(home: string): number | undefined {
  const release = join(home, 'release');
  if (!existsSync(release)) return undefined;
  const m = /JAVA_VERSION="(\d+)/.exec(readFileSync(release, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/** The newest JDK 17+ (JAVA_HOME first when it qualifies). */
function findJava(): string {
  const homes: string[] = [];
  if (process.env.JAVA_HOME) homes.push(process.env.JAVA_HOME);
  const root = '/usr/lib/jvm';
  if (existsSync(root)) {
    homes.push(
      ...readdirSync(root)
        .map((name) => join(root, name))
        .sort((a, b) => (javaMajor(b) ?? 0) - (javaMajor(a) ?? 0)),
    );
  }
  for (const home of homes) {
    if ((javaMajor(home) ?? 0) >= MIN_JDK && existsSync(join(home, 'bin', 'java')))
      return join(home, 'bin', 'java');
  }
  throw new MissingPrerequisiteError(
    `test harness: no JDK ${MIN_JDK}+ found (Kafka ${KAFKA_VERSION} needs one) — install e.g. openjdk-17-jdk-headless or a Temurin JDK into /usr/lib/jvm, or set JAVA_HOME`,
  );
}

/** The broker's jars, fetched once with Maven into the harness cache. */
export function ensureKafkaLibs(version = KAFKA_VERSION): string {
  const home = join(cacheDir(), `kafka-${version}`);
  const libs = join(home, 'libs');
  const done = join(home, '.complete');
  if (existsSync(done)) return libs;
  const mvn = requireCommand('mvn', 'install Maven with `apt-get install -y maven`');
  mkdirSync(home, { recursive: true, mode: 0o755 });
  const [lg, la, lv] = LOG4J_SLF4J.split(':');
  writeFileSync(
    join(home, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gatewatch.test</groupId><artifactId>kafka-broker</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${version}</version></dependency>
    <dependency><groupId>${lg}</groupId><artifactId>${la}</artifactId><version>${lv}</version></dependency>
  </dependencies>
</project>
`,
  );
  rmSync(libs, { recursive: true, force: true });
  run(
    mvn,
    [
      '-B',
      '-q',
      'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies',
      `-DoutputDirectory=${libs}`,
      '-DincludeScope=runtime',
    ],
    { cwd: home },
  );
  writeFileSync(done, new Date().toISOString());
  return libs;
}

/** True once a TCP connection to the port succeeds. */
function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startKafka(): Promise<KafkaBroker> {
  const given = process.env.KAFKA_BOOTSTRAP_SERVERS;
  if (given) return { bootstrap: given, how: 'from KAFKA_BOOTSTRAP_SERVERS', async stop() {} };
  const java = findJava();
  const libs = ensureKafkaLibs();
  const started = Date.now();
  const [plain, controller, sasl] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'gatewatch-kafka-'));
  const { key, cert } = selfSignedCertificate(dir);
  // A PEM key store: the (PKCS#8) key followed by its certificate.
  const keystore = join(dir, 'keystore.pem');
  writeFileSync(keystore, readFileSync(key, 'utf8') + readFileSync(cert, 'utf8'));
  const username = 'gatewatch';
  const password = randomBytes(12).toString('hex');
  const properties = join(dir, 'server.properties');
  writeFileSync(
    properties,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controller}`,
      `listeners=PLAINTEXT://127.0.0.1:${plain},CONTROLLER://127.0.0.1:${controller},SASL_SSL://127.0.0.1:${sasl}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${plain},SASL_SSL://127.0.0.1:${sasl}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
      'sasl.enabled.mechanisms=PLAIN',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${username}="${password}";`,
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${keystore}`,
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      '',
    ].join('\n'),
  );
  const classpath = join(libs, '*');
  const clusterId = randomBytes(16).toString('base64url');
  const jvm = ['-Xms256m', '-Xmx512m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];
  run(java, [
    ...jvm,
    '-cp',
    classpath,
    'kafka.tools.StorageTool',
    'format',
    '-t',
    clusterId,
    '-c',
    properties,
  ]);
  const child: ChildProcess = spawn(java, [...jvm, '-cp', classpath, 'kafka.Kafka', properties], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = captureTail(child);
  const deadline = Date.now() + 120_000;
  let ready = false;
  while (Date.now() < deadline && !ready) {
    if (child.exitCode !== null)
      throw new Error(`Kafka exited during start-up (${child.exitCode}):\n${tail()}`);
    ready = (await portOpen(plain)) && (await portOpen(sasl));
    if (!ready) await sleep(200);
  }
  if (!ready) {
    await stopProcessGroup(child, 10_000);
    throw new Error(`Kafka did not open its ports within 120 s:\n${tail()}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `[gatewatch test harness] Kafka ${KAFKA_VERSION} (KRaft) started locally in ${seconds} s (format + start) at 127.0.0.1:${plain}`,
  );
  return {
    bootstrap: `127.0.0.1:${plain}`,
    saslSsl: { bootstrap: `127.0.0.1:${sasl}`, caPem: readFileSync(cert, 'utf8'), username, password },
    how: `started locally in ${seconds} s`,
    async stop() {
      await stopProcessGroup(child, 15_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
