/**
 * File source: tails files matching glob patterns, including rotated and `.gz` files.
 *
 * Files are tracked by identity (device + inode), not by name, so a rotation (access.log →
 * access.log.1) continues where it was. Offsets live in Redis next to the queue and are
 * advanced only after the batch they cover is enqueued: a crash in between re-reads at most
 * that batch, whose deterministic job and event ids make the repeat harmless. A file shorter
 * than its offset was truncated (copytruncate) and is read again from the start. `.gz` files
 * are read once as a stream; their offset counts lines.
 */
import { createReadStream } from 'node:fs';
import { glob, open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Redis } from 'ioredis';
import type { SourceConfig } from '../../core/config/schema.ts';
import { batchHeader } from '../pipeline/batch.ts';
import type { IngestProducer } from '../pipeline/producer.ts';
import type { Source, SourceStatusSnapshot } from './types.ts';

export interface FileSourceOptions {
  source: SourceConfig;
  producer: IngestProducer;
  redis: Redis;
  /** Redis hash holding this source's offsets. */
  offsetsKey: string;
  pollMs?: number;
  /** Bytes read per step from a plain file. */
  chunkBytes?: number;
  /** A line longer than this is cut and handed on whole as one (oversized) record. */
  maxLineBytes?: number;
  onError?: (err: Error) => void;
}

interface Offset {
  path: string;
  offset: number;
  done?: boolean;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

export class FileSource implements Source {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly options: FileSourceOptions;
  /** Lines read so far across files (for status). */
  linesRead = 0;

  constructor(options: FileSourceOptions) {
    this.options = options;
  }

  get name(): string {
    return this.options.source.name;
  }

  status(): SourceStatusSnapshot {
    return { name: this.name, records: this.linesRead, dropped: 0 };
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      this.running = this.pollOnce().then(
        () => undefined,
        (err) => this.options.onError?.(err as Error),
      );
      await this.running;
      if (!this.stopped) this.timer = setTimeout(loop, this.options.pollMs ?? 500);
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass over every matching file; returns the number of records enqueued. */
  async pollOnce(): Promise<number> {
    let total = 0;
    const paths = new Set<string>();
    for (const pattern of this.options.source.paths) {
      for await (const path of glob(pattern)) paths.add(path);
    }
    for (const path of [...paths].sort()) {
      if (this.stopped) break;
      if (await this.options.producer.overHighWater()) break; // pause reading: the queue is full
      total += path.endsWith('.gz') ? await this.readGzip(path) : await this.readPlain(path);
    }
    return total;
  }

  private async getOffset(id: string): Promise<Offset | undefined> {
    const raw = await this.options.redis.hget(this.options.offsetsKey, id);
    return raw ? (JSON.parse(raw) as Offset) : undefined;
  }

  private async setOffset(id: string, offset: Offset): Promise<void> {
    await this.options.redis.hset(this.options.offsetsKey, id, JSON.stringify(offset));
  }

  private async readPlain(path: string): Promise<number> {
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return 0;
    const id = `${info.dev}:${info.ino}`;
    const saved = await this.getOffset(id);
    let offset = saved?.offset ?? 0;
    if (info.size < offset) offset = 0; // truncated in place
    if (info.size === offset) return 0;
    const chunkBytes = this.options.chunkBytes ?? 4 * 1024 * 1024;
    const maxLine = this.options.maxLineBytes ?? 16 * 1024 * 1024;
    let total = 0;
    const handle = await open(path, 'r');
    try {
      while (offset < info.size && !this.stopped) {
        let want = Math.min(chunkBytes, info.size - offset);
        let buffer = Buffer.alloc(want);
        let { bytesRead } = await handle.read(buffer, 0, want, offset);
        let end = buffer.lastIndexOf(0x0a, bytesRead - 1);
        // No newline in the chunk: a long line. Read further until one appears or the cap.
        while (end < 0 && offset + bytesRead < info.size && bytesRead < maxLine) {
          want = Math.min(bytesRead * 2, maxLine, info.size - offset);
          buffer = Buffer.alloc(want);
          ({ bytesRead } = await handle.read(buffer, 0, want, offset));
          end = buffer.lastIndexOf(0x0a, bytesRead - 1);
        }
        let consumed: number;
        if (end >= 0) consumed = end + 1;
        else if (bytesRead >= maxLine)
          consumed = bytesRead; // oversized line: hand it on whole, cut
        else break; // an incomplete last line: wait for its newline
        const text = decoder.decode(buffer.subarray(0, consumed));
        const records = text
          .split('\n')
          .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
          .filter((l) => l.length > 0);
        if (records.length > 0) {
          await this.options.producer.enqueue(
            batchHeader(this.options.source),
            records,
            `file:${id}:${offset}`,
          );
        }
        offset += consumed;
        total += records.length;
        await this.setOffset(id, { path, offset });
        if (await this.options.producer.overHighWater()) break;
      }
    } finally {
      await handle.close();
    }
    this.linesRead += total;
    return total;
  }

  private async readGzip(path: string): Promise<number> {
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return 0;
    const id = `${info.dev}:${info.ino}`;
    const saved = await this.getOffset(id);
    if (saved?.done) return 0;
    const skip = saved?.offset ?? 0;
    const batchSize = this.options.producer.batchSize;
    let lineNo = 0;
    let batch: string[] = [];
    let batchFirstLine = 0;
    let total = 0;
    const flush = async () => {
      if (batch.length > 0) {
        await this.options.producer.enqueue(
          batchHeader(this.options.source),
          batch,
          `file:${id}:${batchFirstLine}`,
        );
        total += batch.length;
        batch = [];
      }
      await this.setOffset(id, { path, offset: lineNo });
    };
    const gunzip = createGunzip();
    const lines = createInterface({
      input: createReadStream(path).pipe(gunzip),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    try {
      for await (const line of lines) {
        lineNo++;
        if (lineNo <= skip || line.length === 0) continue;
        if (batch.length === 0) batchFirstLine = lineNo;
        batch.push(line);
        if (batch.length >= batchSize) await flush();
        if (this.stopped) return total;
      }
      await flush();
      await this.setOffset(id, { path, offset: lineNo, done: true });
    } catch (err) {
      // A truncated or corrupt archive: keep what was read, report the rest.
      await flush();
      await this.setOffset(id, { path, offset: lineNo, done: true });
      throw new Error(`${path}: ${(err as Error).message}`);
    }
    this.linesRead += total;
    return total;
  }
}
