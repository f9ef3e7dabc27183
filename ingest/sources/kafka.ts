/**
 * Kafka: a consumer group reading topics given by name or by a regular expression, with
 * offsets committed only after the records are in the ingest queue (at-least-once; the
 * records' deterministic event ids make a redelivery after a crash a no-op). A group without
 * committed offsets starts at `earliest` or `latest`.
 *
 * Client: @platformatic/kafka — pure JavaScript (no native addon, so it installs from the npm
 * registry alone, where @confluentinc/kafka-javascript needs librdkafka binaries fetched at
 * install time), maintained, with consumer groups, manual commits, TLS and SASL
 * (PLAIN, SCRAM-SHA-256/512). kafkajs has had no release since 2023.
 *
 * Records become lines: a value holding several lines is split, a gzip value is unpacked, and
 * a value that is not text is dead-lettered (as kafka://topic/partition/offset, with the
 * reason) without stopping the source. A topic pattern is re-resolved every 30 s and the
 * consumer re-subscribed when the matching set changes.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Admin, Consumer, type Message, type MessagesStream } from '@platformatic/kafka';
import type { KafkaSourceConfig } from '../../core/config/schema.ts';
import { batchHeader } from '../pipeline/batch.ts';
import { binaryReason } from './objects.ts';
import { SourceProgress } from './progress.ts';
import { backoffMs, type PullSourceOptions } from './pull-source.ts';
import type { Source, SourceStatusSnapshot } from './types.ts';

type KafkaMessage = Message<Buffer, Buffer, Buffer, Buffer>;

/** Connection settings for every client of a source (brokers, TLS, SASL). */
export function kafkaConnection(settings: KafkaSourceConfig) {
  const tls = settings.tls
    ? {
        ...(settings.tlsCaFile ? { ca: readFileSync(settings.tlsCaFile) } : {}),
        ...(settings.tlsCertFile ? { cert: readFileSync(settings.tlsCertFile) } : {}),
        ...(settings.tlsKeyFile ? { key: readFileSync(settings.tlsKeyFile) } : {}),
      }
    : undefined;
  const mechanisms = {
    plain: 'PLAIN',
    'scram-sha-256': 'SCRAM-SHA-256',
    'scram-sha-512': 'SCRAM-SHA-512',
  } as const;
  return {
    clientId: settings.clientId,
    bootstrapBrokers: settings.brokers,
    ...(tls ? { tls } : {}),
    ...(settings.sasl
      ? {
          sasl: {
            mechanism: mechanisms[settings.sasl.mechanism],
            username: settings.sasl.username,
            password: settings.sasl.password,
          },
        }
      : {}),
  };
}

/** Lines of a record value, or the reason it is not text. */
export function recordLines(value: Buffer | undefined): { lines: string[] } | { unreadable: string } {
  if (!value || value.length === 0) return { lines: [] };
  let bytes = value;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: 64 * 1024 * 1024 });
    } catch (err) {
      return { unreadable: `gzip record value does not inflate: ${(err as Error).message}` };
    }
  }
  const reason = binaryReason(bytes);
  if (reason) return { unreadable: `record value is ${reason}` };
  const lines = bytes
    .toString('utf8')
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l.length > 0);
  return { lines };
}

export class KafkaSource implements Source {
  private readonly options: PullSourceOptions;
  private readonly settings: KafkaSourceConfig;
  private readonly progress: SourceProgress;
  private consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private admin: Admin | undefined;
  private stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  private topics: string[] = [];
  private buffer: KafkaMessage[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  private records = 0;

  constructor(options: PullSourceOptions) {
    this.options = options;
    this.settings = options.source.kafka!;
    this.progress = new SourceProgress({
      redis: options.redis,
      prefix: options.prefix,
      source: options.source,
    });
  }

  get name(): string {
    return this.options.source.name;
  }

  status(): SourceStatusSnapshot {
    return { name: this.name, records: this.records, dropped: 0 };
  }

  async start(): Promise<void> {
    this.progress.start();
    const connection = kafkaConnection(this.settings);
    this.admin = new Admin({ ...connection, retries: 3 });
    this.consumer = new Consumer({
      ...connection,
      groupId: this.settings.groupId,
      autocommit: false,
      maxWaitTime: 500,
      sessionTimeout: 20_000,
      heartbeatInterval: 3_000,
    });
    void this.subscribe();
    if (this.settings.topicPattern !== undefined) {
      this.refreshTimer = setInterval(() => void this.refreshTopics(), 30_000);
      this.refreshTimer.unref();
    }
    this.lagTimer = setInterval(() => void this.reportLag(), 5_000);
    this.lagTimer.unref();
  }

  private fail(err: unknown): void {
    if (this.stopped) return;
    const message = this.progress.error(err);
    this.options.onError?.(`kafka source ${this.name}: ${message} (retrying)`);
  }

  /** The topics to read: names, plus those matching the pattern. */
  private async resolveTopics(): Promise<string[]> {
    const names = new Set(this.settings.topics);
    if (this.settings.topicPattern !== undefined) {
      const pattern = new RegExp(this.settings.topicPattern);
      for (const t of await this.admin!.listTopics({ includeInternals: false }))
        if (pattern.test(t)) names.add(t);
    }
    return [...names].sort();
  }

  /** (Re)subscribe, retrying with backoff until it works or the source stops. */
  private async subscribe(): Promise<void> {
    while (!this.stopped) {
      try {
        this.topics = await this.resolveTopics();
        if (this.topics.length === 0) throw new Error(`no topic matches ${this.settings.topicPattern}`);
        const stream = await this.consumer!.consume({
          topics: this.topics,
          mode: 'committed',
          fallbackMode: this.settings.start,
          autocommit: false,
        });
        if (this.stopped) {
          await stream.close();
          return;
        }
        this.stream = stream;
        stream.on('data', (m: KafkaMessage) => this.take(m));
        stream.on('error', (err) => {
          this.fail(err);
          void this.restart();
        });
        this.failures = 0;
        this.progress.ok();
        return;
      } catch (err) {
        this.fail(err);
        await new Promise((r) => setTimeout(r, Math.max(500, backoffMs(this.failures++))));
      }
    }
  }

  private async restart(): Promise<void> {
    const old = this.stream;
    this.stream = undefined;
    await old?.close().catch(() => undefined);
    await this.flushing;
    if (!this.stopped) {
      await new Promise((r) => setTimeout(r, Math.max(500, backoffMs(this.failures++))));
      await this.subscribe();
    }
  }

  private async refreshTopics(): Promise<void> {
    if (this.stopped || !this.stream) return;
    try {
      const topics = await this.resolveTopics();
      if (topics.join('\0') !== this.topics.join('\0')) await this.restart();
    } catch (err) {
      this.fail(err);
    }
  }

  private take(message: KafkaMessage): void {
    this.buffer.push(message);
    if (this.buffer.length >= this.options.producer.batchSize) {
      this.stream?.pause();
      this.schedule(0);
    } else this.schedule(200);
  }

  private schedule(ms: number): void {
    if (this.flushTimer && ms > 0) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flushing = this.flushing.then(() => this.flush()).catch((err) => this.fail(err));
    }, ms);
  }

  /**
   * Queue what was received, then commit: per partition the offset after its last record.
   * The stream stays paused while the queue is above its high-water mark.
   */
  private async flush(): Promise<void> {
    const stream = this.stream;
    while (await this.options.producer.overHighWater()) {
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    const messages = this.buffer;
    this.buffer = [];
    if (messages.length > 0) {
      const byPartition = Map.groupBy(messages, (m) => `${m.topic}\0${m.partition}`);
      for (const group of byPartition.values()) {
        const first = group[0]!;
        const lines: string[] = [];
        const unreadable: { what: string; reason: string }[] = [];
        for (const m of group) {
          const read = recordLines(m.value);
          if ('lines' in read) lines.push(...read.lines);
          else
            unreadable.push({
              what: `kafka://${m.topic}/${m.partition}/${m.offset}`,
              reason: read.unreadable,
            });
        }
        const discriminator = `kafka:${first.topic}:${first.partition}:${first.offset}`;
        if (lines.length > 0) {
          await this.options.producer.enqueue(batchHeader(this.options.source), lines, discriminator);
          this.records += lines.length;
          this.progress.add('records', lines.length);
        }
        for (const [reason, items] of Map.groupBy(unreadable, (u) => u.reason)) {
          await this.options.producer.enqueue(
            { ...batchHeader(this.options.source), unreadable: reason },
            items.map((u) => u.what),
            `${discriminator}:unreadable:${items[0]!.what}`,
          );
          this.progress.add('dead_letters', items.length);
        }
        this.progress.add('objects', group.length);
        this.progress.add(
          'bytes',
          group.reduce((s, m) => s + (m.value?.length ?? 0), 0),
        );
      }
      // Everything is queued: now the offsets may move past it.
      for (const group of byPartition.values()) await group[group.length - 1]!.commit();
    }
    this.progress.ok();
    if (!this.stopped && stream === this.stream) this.stream?.resume();
  }

  /** Records between the group's committed offsets and the partitions' ends. */
  private async reportLag(): Promise<void> {
    if (this.stopped || !this.consumer || this.topics.length === 0) return;
    try {
      const latest = await this.consumer.listOffsets({ topics: this.topics });
      const committed = await this.consumer.listCommittedOffsets({
        topics: [...latest].map(([topic, offsets]) => ({ topic, partitions: offsets.map((_, i) => i) })),
      });
      let lag = 0n;
      for (const [topic, ends] of latest) {
        const done = committed.get(topic) ?? [];
        ends.forEach((end, i) => {
          const at = done[i] ?? -1n;
          lag += end - (at < 0n ? 0n : at);
        });
      }
      this.progress.set({ consumerLag: Number(lag), objectsPending: null, bytesBehind: null });
    } catch (err) {
      this.progress.error(err);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.lagTimer) clearInterval(this.lagTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.stream?.pause();
    await this.flushing;
    // What was received but not queued is not committed: the group reads it again later.
    await this.stream?.close().catch(() => undefined);
    await this.consumer?.close().catch(() => undefined);
    await this.admin?.close().catch(() => undefined);
    await this.progress.stop();
  }
}
