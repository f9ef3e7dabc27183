/**
 * CloudWatch Logs: polls log groups (by name, and every group under a name prefix) with
 * FilterLogEvents, one time window at a time per group. A window ends `latency` before now
 * (CloudWatch Logs ingests with a delay) and starts where the group's last window ended.
 *
 * Checkpoints (a Redis hash, one field per log group) hold the window being read, the page
 * token reached in it, and per log stream the newest event time and id queued. The token is
 * saved after each page's events are queued, so a restart continues with the next page; a
 * token that expired restarts the window (the repeated events keep their deterministic ids).
 * Pages may come back empty with a token: paging goes on until the token is absent.
 * Throttling (ThrottlingException, LimitExceeded, 5xx) backs off with jitter and retries.
 */
import {
  CloudWatchLogsClient,
  DescribeLogGroupsCommand,
  type FilteredLogEvent,
  FilterLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { durationMs } from '../../../core/config/load.ts';
import type { CloudWatchSourceConfig } from '../../../core/config/schema.ts';
import { batchHeader } from '../../pipeline/batch.ts';
import { startTime } from '../layouts.ts';
import { backoffMs, PollingSource, type PullSourceOptions } from '../pull-source.ts';
import { awsClientOptions } from './clients.ts';

export interface GroupCheckpoint {
  /** The window being read, or the last one read: [from, to). */
  from: number;
  to: number;
  /** Next page of the window; absent once the window is complete. */
  token?: string;
  /** Pages queued in the window (names the next batch). */
  page?: number;
  /** Per log stream: newest event time and id queued. */
  streams: Record<string, { t: number; id: string }>;
}

const THROTTLED = new Set([
  'ThrottlingException',
  'LimitExceededException',
  'ServiceUnavailableException',
  'TooManyRequestsException',
]);

export function isThrottle(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return THROTTLED.has(e.name ?? '') || (e.$metadata?.httpStatusCode ?? 0) >= 500;
}

function isExpiredToken(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return e.name === 'InvalidParameterException' && /token/i.test(e.message ?? '');
}

export class CloudWatchSource extends PollingSource {
  private readonly client: CloudWatchLogsClient;
  private readonly settings: CloudWatchSourceConfig;

  constructor(options: PullSourceOptions) {
    super(options);
    this.settings = options.source.cloudwatch!;
    // Throttling is retried here, with a longer and jittered schedule than the SDK's own.
    this.client = new CloudWatchLogsClient({ ...awsClientOptions(this.settings), maxAttempts: 1 });
  }

  protected intervalMs(): number {
    return durationMs(this.settings.pollInterval);
  }

  /** Call the API, sleeping and retrying while it throttles (until stopped). */
  private async call<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        if (!isThrottle(err) || this.stopped) throw err;
        this.progress.add('throttled');
        await this.sleep(Math.max(200, backoffMs(attempt, 30_000)));
      }
    }
  }

  private async groups(): Promise<string[]> {
    const names = new Set(this.settings.logGroups);
    if (this.settings.logGroupPrefix !== undefined) {
      let token: string | undefined;
      do {
        const page = await this.call(() =>
          this.client.send(
            new DescribeLogGroupsCommand({
              logGroupNamePrefix: this.settings.logGroupPrefix,
              ...(token ? { nextToken: token } : {}),
            }),
          ),
        );
        for (const g of page.logGroups ?? []) if (g.logGroupName) names.add(g.logGroupName);
        token = page.nextToken;
      } while (token);
    }
    return [...names].sort();
  }

  private async firstStart(now: number): Promise<number> {
    const meta = this.key('meta');
    const saved = await this.options.redis.hget(meta, 'start_at');
    if (saved !== null) return Number(saved);
    const at = startTime(this.settings.start, now) ?? 0;
    await this.options.redis.hset(meta, 'start_at', String(at));
    return at;
  }

  protected async poll(): Promise<void> {
    const now = Date.now();
    const end = now - durationMs(this.settings.latency);
    const start = await this.firstStart(now);
    const groups = await this.groups();
    const key = this.key('groups');
    let oldest = end;
    let pending = 0;
    for (const group of groups) {
      if (this.stopped) return;
      const raw = await this.options.redis.hget(key, group);
      let cp: GroupCheckpoint = raw
        ? (JSON.parse(raw) as GroupCheckpoint)
        : { from: start, to: start, streams: {} };
      if (cp.token === undefined) {
        if (end <= cp.to) continue;
        cp = { from: cp.to, to: end, page: 0, streams: cp.streams };
      }
      pending++;
      cp = await this.readWindow(group, cp, key);
      oldest = Math.min(oldest, cp.token === undefined ? cp.to : cp.from);
      if (cp.token === undefined) pending--;
      this.progress.set({ objectsPending: pending, positionTime: oldest });
    }
    this.progress.set({ objectsPending: pending, positionTime: oldest, bytesBehind: null });
  }

  /** Page through one group's window, queueing each page and saving the token after it. */
  private async readWindow(group: string, start: GroupCheckpoint, key: string): Promise<GroupCheckpoint> {
    let cp = start;
    for (;;) {
      if (this.stopped) return cp;
      while (await this.options.producer.overHighWater()) {
        if (this.stopped) return cp;
        await this.sleep(250);
      }
      let page: { events?: FilteredLogEvent[]; nextToken?: string };
      try {
        page = await this.call(() =>
          this.client.send(
            new FilterLogEventsCommand({
              logGroupName: group,
              startTime: cp.from,
              // endTime is inclusive
              endTime: cp.to - 1,
              ...(this.settings.logStreamPrefix
                ? { logStreamNamePrefix: this.settings.logStreamPrefix }
                : {}),
              ...(this.settings.filterPattern ? { filterPattern: this.settings.filterPattern } : {}),
              ...(cp.token ? { nextToken: cp.token } : {}),
              limit: 5_000,
            }),
          ),
        );
      } catch (err) {
        if (cp.token && isExpiredToken(err)) {
          // An old token: read the window again from its start.
          cp = { ...cp, token: undefined, page: 0 };
          await this.options.redis.hset(key, group, JSON.stringify({ ...cp, token: '' }));
          continue;
        }
        throw err;
      }
      const events = page.events ?? [];
      const records: string[] = [];
      const streams = { ...cp.streams };
      for (const e of events) {
        const message = e.message?.replace(/\r?\n$/, '');
        if (message) records.push(message);
        if (e.logStreamName && e.timestamp !== undefined) {
          const seen = streams[e.logStreamName];
          if (!seen || e.timestamp >= seen.t)
            streams[e.logStreamName] = { t: e.timestamp, id: e.eventId ?? '' };
        }
      }
      const pageNo = cp.page ?? 0;
      if (records.length > 0) {
        await this.options.producer.enqueue(
          batchHeader(this.options.source),
          records,
          `cloudwatch:${group}:${cp.from}:${cp.to}:${events[0]?.eventId ?? pageNo}`,
        );
        this.queued(records.length);
      }
      cp = {
        from: cp.from,
        to: cp.to,
        page: pageNo + 1,
        streams,
        ...(page.nextToken ? { token: page.nextToken } : {}),
      };
      await this.options.redis.hset(key, group, JSON.stringify(cp));
      if (!page.nextToken) return cp;
    }
  }
}
