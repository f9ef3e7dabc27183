/**
 * Sources that list a store and read what is new (S3 bucket listing, Azure Blob Storage):
 * every `pollInterval` each location is listed, and objects that are new, changed or not read
 * to the end are read. What was read is kept per object in a Redis hash (version, size, lines
 * and bytes queued), so a restart continues mid-object.
 *
 * Date partitions (./layouts.ts) keep listings small: after the first complete pass only the
 * partitions from `lookback` before that pass's start are listed again. `start` bounds the
 * first pass: `beginning`, `now` (objects modified after the source first ran) or a date.
 * Checkpoints of objects a complete pass no longer lists are removed, so the hash stays as
 * large as the listed window.
 */
import { durationMs } from '../../core/config/load.ts';
import { type ListedObject, type Lister, listObjects, startTime } from './layouts.ts';
import { HashCheckpoints, type ObjectPosition, type StoredObject } from './objects.ts';
import { PollingSource, type PullSourceOptions } from './pull-source.ts';

/** Run `work` over items with at most `limit` at once. */
export async function eachLimit<T>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export interface ListingLocation {
  lister: Lister;
  prefix: string;
  /** The object behind a listing entry (its url names its checkpoint). */
  object(listed: ListedObject): StoredObject;
}

export interface ListingSettings {
  start: string;
  pollInterval: string;
  lookback: string;
  concurrency: number;
}

export abstract class ListingSource extends PollingSource {
  protected readonly checkpoints: HashCheckpoints;

  constructor(options: PullSourceOptions) {
    super(options);
    this.checkpoints = new HashCheckpoints(options.redis, this.key('objects'));
  }

  protected abstract listing(): ListingSettings;
  /** Where to list this pass (containers may come and go). */
  protected abstract locations(): Promise<ListingLocation[]>;

  /** How to read an object (append blobs: complete lines only, resumed by byte). */
  protected readOptions(_listed: ListedObject): { completeLinesOnly?: boolean; appendOnly?: boolean } {
    return {};
  }

  /** Whether a listed object has something left to read. */
  protected needsRead(listed: ListedObject, prior: ObjectPosition | undefined): boolean {
    return !prior || prior.version !== listed.etag || !prior.done;
  }

  protected intervalMs(): number {
    return durationMs(this.listing().pollInterval);
  }

  /** The first run's start time, fixed in Redis so `now` means the first start, not each restart. */
  private async startAt(now: number): Promise<number | undefined> {
    const meta = this.key('meta');
    const saved = await this.options.redis.hget(meta, 'start_at');
    if (saved !== null) return saved === '' ? undefined : Number(saved);
    const at = startTime(this.listing().start, now);
    await this.options.redis.hset(meta, 'start_at', at === undefined ? '' : String(at));
    return at;
  }

  protected async poll(): Promise<void> {
    const passStart = Date.now();
    const settings = this.listing();
    const startAt = await this.startAt(passStart);
    const listedUntil = await this.options.redis.hget(this.key('meta'), 'listed_until');
    const since = Math.max(
      startAt ?? Number.NEGATIVE_INFINITY,
      listedUntil !== null ? Number(listedUntil) - durationMs(settings.lookback) : Number.NEGATIVE_INFINITY,
    );
    const listed: { entry: ListedObject; object: StoredObject }[] = [];
    for (const location of await this.locations()) {
      for await (const entry of listObjects(location.lister, location.prefix, {
        since: Number.isFinite(since) ? since : undefined,
      })) {
        if (this.stopped) return;
        if (startAt !== undefined && entry.modified < startAt) continue;
        listed.push({ entry, object: location.object(entry) });
      }
    }
    const urls = listed.map((l) => l.object.url);
    const positions = await this.checkpoints.get(urls);
    const todo: { entry: ListedObject; object: StoredObject; prior: ObjectPosition | undefined }[] = [];
    listed.forEach((l, i) => {
      if (this.needsRead(l.entry, positions[i])) todo.push({ ...l, prior: positions[i] });
    });
    const left = (t: (typeof todo)[number]) =>
      t.entry.size -
      (t.prior && (t.prior.version === t.entry.etag || this.readOptions(t.entry).appendOnly)
        ? t.prior.bytes
        : 0);
    let pending = todo.length;
    let behind = todo.reduce((sum, t) => sum + Math.max(0, left(t)), 0);
    const oldest = todo.reduce((min, t) => Math.min(min, t.entry.modified), passStart);
    this.progress.set({ objectsPending: pending, bytesBehind: behind, positionTime: oldest });
    let failed: unknown;
    await eachLimit(todo, settings.concurrency, async (t) => {
      if (this.stopped) return;
      try {
        await this.readStoredObject(t.object, t.prior, this.checkpoints, this.readOptions(t.entry));
        pending--;
        behind -= Math.max(0, left(t));
        this.progress.set({ objectsPending: pending, bytesBehind: Math.max(0, behind) });
      } catch (err) {
        failed ??= err;
      }
    });
    if (failed) throw failed;
    if (this.stopped) return;
    // A complete pass: the next one lists from here (minus lookback), and forgets what it no longer lists.
    await this.options.redis.hset(this.key('meta'), 'listed_until', String(passStart));
    const seen = new Set(urls);
    await this.checkpoints.remove((await this.checkpoints.ids()).filter((id) => !seen.has(id)));
    this.progress.set({ objectsPending: 0, bytesBehind: 0, positionTime: passStart });
  }
}
