/**
 * A short mutual-exclusion lock in Redis (SET NX PX, released by compare-and-delete), for work
 * that several detect workers must not interleave, such as folding detections into incidents
 * (look up the incident of an entity, then create or update it). The TTL bounds how long a
 * crashed holder blocks the others.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

const RELEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export function redisLock(redis: Redis, key: string, ttlMs: number) {
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    const token = randomUUID();
    const deadline = Date.now() + ttlMs * 2;
    for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
      if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK') break;
      if (Date.now() > deadline)
        throw new Error(`lock ${key} held by another worker for over ${ttlMs * 2} ms`);
      await new Promise((r) => setTimeout(r, wait));
    }
    try {
      return await fn();
    } finally {
      await redis.eval(RELEASE, 1, key, token);
    }
  };
}
