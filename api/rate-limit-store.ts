/**
 * A rate-limit store for @fastify/rate-limit shared by every API process through Redis, without
 * a Redis round trip per request.
 *
 * Each process counts requests per key and per fixed window (aligned to the clock, so every
 * process agrees on window boundaries) locally, and every `syncMs` adds its unsent counts to
 * the window's Redis counter with one pipelined INCRBY per key, reading back the total of all
 * processes. A request is judged against `total seen at the last sync + local counts since`.
 * So a key's limit holds exactly within one process and, across N processes, may be exceeded
 * by at most what the other processes admitted during one sync interval. A request costs a Map
 * lookup instead of a Lua script call (the per-request round trip cost as much CPU as the
 * listing query it guarded).
 *
 * If Redis is unreachable the counts stay local (each process enforces the limit on its own
 * traffic) and are sent when it returns; the request path never waits for Redis.
 */
import type { Redis } from 'ioredis';

interface Counter {
  /** Window number: floor(now / timeWindow). */
  window: number;
  /** The window's total over all processes as of the last sync (including this process's sent counts). */
  synced: number;
  /** Counted here, not yet added in Redis. */
  unsent: number;
  /** Sent in the sync now in flight (added back to unsent if that sync fails). */
  sending: number;
}

type Callback = (err: Error | null, result: { current: number; ttl: number }) => void;

export interface SharedRateLimitOptions {
  redis: Redis;
  /** Key prefix in Redis. */
  nameSpace: string;
  /** How often local counts are sent to Redis (ms). */
  syncMs?: number;
}

/**
 * Build the store class @fastify/rate-limit instantiates (`store` option). The plugin
 * constructs it with its global parameters; `child()` serves route-specific limits.
 */
export function sharedRateLimitStore(options: SharedRateLimitOptions) {
  const syncMs = options.syncMs ?? 100;
  return class SharedRateLimitStore {
    private readonly counters = new Map<string, Counter>();
    private readonly prefix: string;
    private timer: NodeJS.Timeout | undefined;
    private syncing = false;
    private timeWindow = 60_000;

    constructor(_params?: unknown, prefix = options.nameSpace) {
      this.prefix = prefix;
    }

    incr(key: string, cb: Callback, timeWindow: number, _max: number): void {
      this.timeWindow = timeWindow;
      const now = Date.now();
      const c = this.counter(key, now, timeWindow);
      c.unsent++;
      this.arm();
      cb(null, { current: c.synced + c.unsent + c.sending, ttl: (c.window + 1) * timeWindow - now });
    }

    read(key: string, cb: Callback, timeWindow: number, _max: number): void {
      const now = Date.now();
      const c = this.counters.get(key);
      if (!c || c.window !== Math.floor(now / timeWindow)) {
        cb(null, { current: 0, ttl: 0 });
        return;
      }
      cb(null, { current: c.synced + c.unsent + c.sending, ttl: (c.window + 1) * timeWindow - now });
    }

    /** A route with its own limit counts apart (the plugin passes `{ routeInfo }` at run time). */
    child(routeOptions: object) {
      const route = (routeOptions as { routeInfo?: { method?: string; url?: string } }).routeInfo;
      return new SharedRateLimitStore(undefined, `${this.prefix}${route?.method ?? ''}${route?.url ?? ''}-`);
    }

    private counter(key: string, now: number, timeWindow: number): Counter {
      const window = Math.floor(now / timeWindow);
      let c = this.counters.get(key);
      if (!c) {
        c = { window, synced: 0, unsent: 0, sending: 0 };
        this.counters.set(key, c);
      } else if (c.window !== window) {
        c.window = window;
        c.synced = 0;
        c.unsent = 0;
        c.sending = 0;
      }
      return c;
    }

    private arm(): void {
      if (this.timer) return;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.sync();
      }, syncMs);
      // A pending sync must not keep a closing process alive.
      this.timer.unref();
    }

    /** Send unsent counts (one pipelined INCRBY + PEXPIRE per key) and read back window totals. */
    private async sync(): Promise<void> {
      if (this.syncing) return this.arm();
      const now = Date.now();
      const batch: [string, Counter, number, number][] = [];
      for (const [key, c] of this.counters) {
        if (c.window < Math.floor(now / this.timeWindow)) {
          // A finished window: its counts no longer matter to anyone.
          if (c.sending === 0) this.counters.delete(key);
          continue;
        }
        if (c.unsent === 0) continue;
        c.sending += c.unsent;
        batch.push([key, c, c.unsent, c.window]);
        c.unsent = 0;
      }
      if (batch.length === 0) return;
      this.syncing = true;
      try {
        const pipeline = options.redis.pipeline();
        for (const [key, , n, window] of batch) {
          const redisKey = `${this.prefix}${key}:${window}`;
          pipeline.incrby(redisKey, n);
          pipeline.pexpire(redisKey, this.timeWindow * 2);
        }
        const results = (await pipeline.exec()) ?? [];
        batch.forEach(([, c, n, window], i) => {
          // A counter that moved on to a new window meanwhile keeps its new state.
          if (c.window !== window) return;
          c.sending -= n;
          const [err, total] = results[2 * i] ?? [new Error('no reply'), 0];
          if (err) c.unsent += n;
          else c.synced = Number(total);
        });
      } catch {
        for (const [, c, n, window] of batch) {
          if (c.window !== window) continue;
          c.sending -= n;
          c.unsent += n;
        }
      } finally {
        this.syncing = false;
        if ([...this.counters.values()].some((c) => c.unsent > 0)) this.arm();
      }
    }
  };
}
