/**
 * Kafka source against a real Apache Kafka broker (KRaft, from Maven Central), into a real
 * Redis queue and a real Elasticsearch, counted by event id: a consumer group that commits
 * only what is queued, topics by name and by pattern, records that are not text dead-lettered,
 * TLS with SASL PLAIN, and a SIGKILL of `gatewatch ingest sources` mid-stream.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Admin, Producer } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import type { SourceConfig } from '../../core/config/schema.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { type KafkaBroker, startKafka } from '../../test/harness/kafka.ts';
import { IngestAdmin } from '../admin.ts';
import { type IngestRuntime, startIngest } from '../runtime.ts';
import { createPullSource } from './pull.ts';
import {
  deadLetters,
  eventCounts,
  kill,
  kongLine,
  replayJson,
  startSourcesProcess,
  waitForEvents,
} from './testing/pull-fixtures.ts';

const ctx = integrationContext('kafka');

describe('Kafka source (Apache Kafka, KRaft)', () => {
  let kafka: KafkaBroker;
  let admin: Admin;
  let producer: Producer;
  let runtime: IngestRuntime;
  const work = mkdtempSync(join(tmpdir(), 'gw-kafka-'));
  const topic = (name: string) => `${ctx.prefix}-${name}`;

  const settings = (sources: unknown[]) => ({
    elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
    redis: { url: ctx.redisUrl, prefix: ctx.prefix },
    ingest: { httpPort: 0, highWaterMark: 4, sources },
  });
  const kafkaSource = (name: string, k: Record<string, unknown>): SourceConfig =>
    loadConfig({
      env: {},
      overrides: settings([{ name, type: 'kafka', kafka: { brokers: [kafka.bootstrap], ...k } }]),
    }).ingest.sources[0]!;
  const errors: string[] = [];
  const pullSource = (source: SourceConfig) =>
    createPullSource({
      source,
      producer: runtime.producer,
      redis: runtime.redis,
      prefix: ctx.prefix,
      onError: (line) => errors.push(line),
    });
  const send = async (name: string, values: (string | Buffer)[], partitions = 2) => {
    for (let i = 0; i < values.length; i += 500) {
      await producer.send({
        messages: values.slice(i, i + 500).map((v, j) => ({
          topic: topic(name),
          partition: (i + j) % partitions,
          value: Buffer.isBuffer(v) ? v : Buffer.from(v),
        })),
      });
    }
  };
  /** Committed offsets of a group, summed over partitions. */
  const committed = async (group: string, name: string) => {
    const [g] = await admin.listConsumerGroupOffsets({ groups: [group] });
    return (g?.topics ?? [])
      .filter((t) => t.name === topic(name))
      .flatMap((t) => t.partitions)
      .reduce((s, p) => s + (p.committedOffset > 0n ? Number(p.committedOffset) : 0), 0);
  };

  beforeAll(async () => {
    kafka = await startKafka();
    admin = new Admin({ clientId: 'gw-test', bootstrapBrokers: [kafka.bootstrap] });
    producer = new Producer({ clientId: 'gw-test', bootstrapBrokers: [kafka.bootstrap] });
    for (const name of ['edge', 'logs-a', 'logs-b', 'crash', 'secure'])
      await admin.createTopics({ topics: [topic(name)], partitions: 2, replicas: 1 });
    runtime = await startIngest(loadConfig({ env: {}, overrides: settings([]) }), {
      workers: 1,
      refresh: true,
    });
  });
  afterAll(async () => {
    await producer?.close();
    await admin?.close();
    await runtime?.close();
    await kafka?.stop();
    await ctx.cleanup();
  });

  it('reads a topic once, commits only what is queued, and a restart resumes from the committed offsets', async () => {
    const group = `${ctx.prefix}-edge`;
    const source = kafkaSource('kafka-edge', { topics: [topic('edge')], groupId: group });
    await send(
      'edge',
      Array.from({ length: 500 }, (_, i) => kongLine('edge', i)),
    );
    const first = await pullSource(source);
    await first.start();
    expect(await waitForEvents(ctx.es, ctx.prefix, 'edge', 500)).toEqual({ events: 500, maxPerPath: 1 });
    expect(
      await eventually(
        () => committed(group, 'edge'),
        (n) => n === 500,
      ),
    ).toBe(500);
    await first.stop();
    expect(first.status().records).toBe(500);

    // Written while no consumer runs: the next one starts at the committed offsets.
    await send(
      'edge',
      Array.from({ length: 100 }, (_, i) => kongLine('edge', 1000 + i)),
    );
    const second = await pullSource(source);
    await second.start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'edge', 600)).toEqual({ events: 600, maxPerPath: 1 });
      expect(
        await eventually(
          () => committed(group, 'edge'),
          (n) => n === 600,
        ),
      ).toBe(600);
      // consumer lag in the sources status: nothing left
      const status = new IngestAdmin({
        es: ctx.es,
        redis: runtime.redis,
        prefix: ctx.prefix,
        queuePrefix: ctx.prefix,
        sources: [source],
        producer: runtime.producer,
      });
      const [s] = await eventually(
        () => status.sources(),
        ([x]) => x?.backlog?.consumer_lag === 0,
        { timeoutMs: 20_000 },
      );
      expect(s?.backlog?.consumer_lag).toBe(0);
    } finally {
      await second.stop();
    }
    expect(second.status().records).toBe(100);
  });

  it('follows a topic pattern; gzip values are unpacked; binary and corrupt values go to dead letters', async () => {
    const source = kafkaSource('kafka-pattern', {
      topicPattern: `^${topic('logs-')}`,
      groupId: `${ctx.prefix}-pattern`,
    });
    await send('logs-a', [kongLine('pattern', 0), `${kongLine('pattern', 1)}\n${kongLine('pattern', 2)}`], 1);
    await send(
      'logs-b',
      [
        gzipSync(`${kongLine('pattern', 3)}\n${kongLine('pattern', 4)}\n`),
        Buffer.concat([Buffer.from([0, 1, 2, 3]), randomBytes(200)]),
        Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), randomBytes(40)]),
        kongLine('pattern', 5),
      ],
      1,
    );
    const pull = await pullSource(source);
    await pull.start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'pattern', 6)).toEqual({ events: 6, maxPerPath: 1 });
      const letters = await eventually(
        () => deadLetters(ctx.es, ctx.prefix, 'kafka-pattern'),
        (d) => d.length >= 2,
      );
      expect(letters.map((d) => [d.stage, d.raw, d.reason]).sort()).toEqual([
        [
          'read',
          `kafka://${topic('logs-b')}/0/1`,
          'record value is binary content (NUL bytes), not text log lines',
        ],
        [
          'read',
          `kafka://${topic('logs-b')}/0/2`,
          expect.stringMatching(/^gzip record value does not inflate/),
        ],
      ]);
    } finally {
      await pull.stop();
    }
  });

  it('a SIGKILL of the sources process mid-stream loses and doubles nothing', async () => {
    const total = 8_000;
    const group = `${ctx.prefix}-crash`;
    await send(
      'crash',
      Array.from({ length: total }, (_, i) => kongLine('kcrash', i)),
    );
    const file = join(work, 'crash.json');
    writeFileSync(
      file,
      JSON.stringify(
        settings([
          {
            name: 'kafka-crash',
            type: 'kafka',
            kafka: { brokers: [kafka.bootstrap], topics: [topic('crash')], groupId: group },
          },
        ]),
      ),
    );
    const first = await startSourcesProcess(file);
    // Back-pressure (high-water mark 4 jobs) holds the consumer part-way.
    await eventually(
      () => committed(group, 'crash'),
      (n) => n >= 2_000,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    await kill(first.child);
    const atKill = await committed(group, 'crash');
    expect(atKill).toBeLessThan(total);
    const second = await startSourcesProcess(file);
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'kcrash', total, 150_000)).toEqual({
        events: total,
        maxPerPath: 1,
      });
      expect(
        await eventually(
          () => committed(group, 'crash'),
          (n) => n === total,
        ),
      ).toBe(total);
    } finally {
      await kill(second.child, 'SIGTERM');
    }
  });

  it('connects with TLS and SASL PLAIN; a wrong password is reported without being logged', async () => {
    expect(
      kafka.saslSsl,
      'the TLS/SASL test needs the harness-started broker: unset KAFKA_BOOTSTRAP_SERVERS',
    ).toBeDefined();
    const secure = kafka.saslSsl!;
    const ca = join(work, 'ca.pem');
    writeFileSync(ca, secure.caPem);
    await send(
      'secure',
      Array.from({ length: 50 }, (_, i) => kongLine('secure', i)),
    );
    const tls = { brokers: [secure.bootstrap], topics: [topic('secure')], tls: true, tlsCaFile: ca };
    const wrongPassword = `wrong-${randomBytes(6).toString('hex')}`;
    const denied = await pullSource(
      kafkaSource('kafka-denied', {
        ...tls,
        groupId: `${ctx.prefix}-denied`,
        sasl: { mechanism: 'plain', username: secure.username, password: wrongPassword },
      }),
    );
    errors.length = 0;
    await denied.start();
    await eventually(
      async () => errors.length,
      (n) => n > 0,
    );
    await denied.stop();
    expect(errors.join('\n')).toMatch(/kafka source kafka-denied: .*(auth|SASL)/i);
    expect(errors.join('\n')).not.toContain(wrongPassword);

    const allowed = await pullSource(
      kafkaSource('kafka-secure', {
        ...tls,
        groupId: `${ctx.prefix}-secure`,
        sasl: { mechanism: 'plain', username: secure.username, password: secure.password },
      }),
    );
    await allowed.start();
    try {
      expect(await waitForEvents(ctx.es, ctx.prefix, 'secure', 50)).toEqual({ events: 50, maxPerPath: 1 });
    } finally {
      await allowed.stop();
    }
    expect((await eventCounts(ctx.es, ctx.prefix, 'secure')).events).toBe(50);
  });

  it('replay kafka://broker/topic reads the topic to its current end without committing', async () => {
    const summary = await replayJson([`kafka://${kafka.bootstrap}/${topic('edge')}`], []);
    expect([summary.records, summary.events]).toEqual([600, 600]);
    expect(await committed(`${ctx.prefix}-edge`, 'edge')).toBe(600);
  });
});
