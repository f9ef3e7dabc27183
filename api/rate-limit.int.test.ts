/**
 * Per-key rate limiting on real Redis: the limit holds within a process and is shared by every
 * API process (counts are batched to Redis, see rate-limit-store.ts).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { eventually } from '../test/harness/eventually.ts';
import { sleep } from '../test/harness/processes.ts';
import { buildApp } from './app.ts';
import { parseToken } from './auth/keys.ts';
import { startTestApp, type TestApp } from './testing/harness.ts';

const LIMIT = 5;
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp('rate-limit', { api: { rateLimitPerMinute: LIMIT } });
});
afterAll(() => t?.close());

/** Windows are whole clock minutes: start a scenario early in one, so it cannot straddle two. */
async function startOfAWindow(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 45_000) await sleep(60_000 - intoMinute + 50);
}

describe('rate limiting per API key', () => {
  test('the request past the limit gets 429 problem details with Retry-After; other keys are unaffected', async () => {
    await startOfAWindow();
    const list = (role: 'viewer' | 'analyst') =>
      t.app.inject({ method: 'GET', url: '/api/v1/incidents?limit=1', headers: t.auth(role) });
    for (let i = 0; i < LIMIT; i++) expect((await list('viewer')).statusCode).toBe(200);
    const over = await list('viewer');
    expect(over.statusCode).toBe(429);
    expect(over.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.json()).toMatchObject({ status: 429 });
    expect((await list('analyst')).statusCode).toBe(200);
  });

  test('a second API process sees the counts of the first through Redis', async () => {
    await startOfAWindow();
    const redis = new Redis(t.it.redisUrl);
    const second = await buildApp({ config: t.config, es: t.it.es, redis, ports: t.ports });
    try {
      const listAs = (app: typeof second) =>
        app.inject({ method: 'GET', url: '/api/v1/incidents?limit=1', headers: t.auth('admin') });
      for (let i = 0; i < LIMIT; i++) expect((await listAs(t.app)).statusCode).toBe(200);
      // The first process's counts reach Redis within one sync interval.
      const keyId = parseToken(t.tokens.admin)!.id;
      const total = async () => {
        const [key] = await redis.keys(`${t.it.prefix}:api-rate:key:${keyId}:*`);
        return key ? Number(await redis.get(key)) : 0;
      };
      expect(await eventually(total, (n) => n >= LIMIT)).toBe(LIMIT);
      // The second process admits only what it serves before its own first sync tells it the
      // total (one request here, spaced past a sync interval); on its own it would admit LIMIT.
      const statuses: number[] = [];
      await eventually(
        async () => {
          const status = (await listAs(second)).statusCode;
          statuses.push(status);
          return status;
        },
        (status) => status === 429,
        { intervalMs: 300 },
      );
      expect(statuses.at(-1)).toBe(429);
      expect(statuses.filter((s) => s === 200).length).toBeLessThan(LIMIT);
      expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    } finally {
      await second.close();
      redis.disconnect();
    }
  });
});
