/**
 * Plain syslog cannot acknowledge, so the source must not drop what it already received when
 * Redis goes away: records that could not be queued are kept and queued once Redis is back.
 * Uses its own real redis-server so it can be stopped and started again.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../core/queue/bullmq.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { freePort } from '../../test/harness/processes.ts';
import { type RedisServer, startRedisServer } from '../../test/harness/redis.ts';
import { IngestProducer } from '../pipeline/producer.ts';
import { createScrubber } from '../transforms/scrub.ts';
import { SyslogSource } from './syslog.ts';

const line = (i: number) =>
  `192.0.2.${i} - - [23/Nov/2026:14:00:${String(i).padStart(2, '0')} +0000] "GET /api/items/${i} HTTP/1.1" 200 10 "-" "outage/1.0"`;

describe('syslog source during a Redis outage', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  it('keeps records received while Redis is down and queues them when it is back', async () => {
    const conn = await connectRedis(redis.url, 'producer');
    const producer = new IngestProducer({
      producer: conn,
      queuePrefix: 'gwt-syslog-outage',
      highWaterMark: 10_000,
      batchSize: 50,
      scrub: createScrubber(),
    });
    const errors: Error[] = [];
    const syslog = new SyslogSource({
      source: { name: 'outage', type: 'syslog', tokens: [], paths: [] },
      producer,
      host: '127.0.0.1',
      port: await freePort(),
      udp: false,
      flushMs: 100,
      onError: (e) => errors.push(e),
    });
    await syslog.start();
    const queued = async () => {
      const jobs = await producer.queue.getJobs(['waiting', 'prioritized', 'delayed']);
      return jobs.flatMap((j) => j.data.records);
    };
    const socket = connect(syslog.tcpPort!, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    try {
      socket.write(`${Array.from({ length: 10 }, (_, i) => `<14>${line(i)}`).join('\n')}\n`);
      expect((await eventually(queued, (r) => r.length >= 10)).length).toBe(10);

      await redis.stop();
      socket.write(`${Array.from({ length: 10 }, (_, i) => `<14>${line(10 + i)}`).join('\n')}\n`);
      await eventually(
        async () => errors.length,
        (n) => n > 0,
      );
      await redis.restart();

      const records = await eventually(queued, (r) => r.length >= 20, { timeoutMs: 60_000 });
      expect(records.sort()).toEqual(Array.from({ length: 20 }, (_, i) => line(i)).sort());
    } finally {
      socket.destroy();
      await syslog.stop();
      await producer.close().catch(() => undefined);
      conn.disconnect();
    }
  });
});
