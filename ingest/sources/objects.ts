/**
 * Reading one stored object (an S3 object, an Azure blob) into the ingest queue, shared by the
 * pull sources: bytes → gunzip when the object starts with the gzip magic → lines → batches,
 * with the object's position checkpointed after every enqueue so a restart continues where the
 * queue left off.
 *
 * Positions count lines, and for plain objects also bytes: a plain object is resumed with a
 * ranged read from the byte after the last queued line, a gzip one is decompressed again and
 * the queued lines skipped. Either way a crash between an enqueue and its checkpoint re-queues
 * at most that enqueue's lines, whose deterministic job and event ids make the repeat harmless.
 *
 * An object that cannot be read as text (corrupt gzip, another compression, binary content) is
 * not retried: its readable lines stay queued, and the object itself becomes a dead letter with
 * the reason (`enqueueUnreadable`), so the source moves on.
 */
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Redis } from 'ioredis';
import { batchHeader, MAX_BATCH_RECORDS } from '../pipeline/batch.ts';
import type { IngestProducer } from '../pipeline/producer.ts';
import { envelopeMessages, isEnvelope } from './aws/cloudwatch-envelope.ts';

/** Where reading an object stands. Stored as JSON per object. */
export interface ObjectPosition {
  /** ETag (or version) of the object the position belongs to. */
  version: string;
  /** Lines read and queued (empty lines included in the count). */
  lines: number;
  /** Plain objects: the byte after the last queued line. Gzip: compressed bytes consumed. */
  bytes: number;
  gzip?: boolean;
  /** Read to the end (an append blob is never done: it may grow). */
  done?: boolean;
  /** Size of the object when it was read. */
  size?: number;
  /** Last-modified time (ms), for pruning and lag. */
  modified?: number;
  /** Why the object was dead-lettered instead of read. */
  failed?: string;
  /** Read to the end of this version except an unfinished last line of this many bytes. */
  tail?: number;
}

/** An object a source wants read. */
export interface StoredObject {
  /** Stable address, e.g. s3://bucket/key: names the object in dead letters and job ids. */
  url: string;
  version: string;
  size?: number;
  modified?: number;
  /** Bytes from `start` to the end. */
  open(start: number, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
}

/** The object cannot be read as text: dead-letter it, do not retry. */
export class UnreadableInputError extends Error {
  override name = 'UnreadableInputError';
}

export interface ReadObjectOptions {
  producer: IngestProducer;
  source: { name: string; format?: string | undefined };
  /** Called after each enqueue with the new position (persist it) and the records queued. */
  onQueued(position: ObjectPosition, records: number): Promise<void>;
  isStopped(): boolean;
  /** Append blobs: a last line without its newline is left for the next read. */
  completeLinesOnly?: boolean;
  /** The object only ever grows (append blobs): a new version resumes at the old byte offset. */
  appendOnly?: boolean;
  /** A line longer than this is cut and handed on as one record. */
  maxLineBytes?: number;
  /** Lines per enqueue (one Redis round trip for several jobs). */
  linesPerEnqueue?: number;
}

const KNOWN_BINARY: [bytes: number[], what: string][] = [
  [[0x28, 0xb5, 0x2f, 0xfd], 'zstd-compressed'],
  [[0x42, 0x5a, 0x68], 'bzip2-compressed'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz-compressed'],
  [[0x50, 0x4b, 0x03, 0x04], 'a zip archive'],
  [[0x50, 0x41, 0x52, 0x31], 'Parquet'],
  [[0x4f, 0x62, 0x6a, 0x01], 'Avro'],
  [[0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59], 'snappy-framed'],
];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/**
 * Why text that should be log lines is not, or undefined when it looks like text: NUL bytes,
 * or more than 10 % control characters and invalid UTF-8 in the first 8 KB.
 */
export function binaryReason(head: Uint8Array): string | undefined {
  const sample = head.subarray(0, 8192);
  if (sample.length === 0) return undefined;
  if (sample.includes(0)) return 'binary content (NUL bytes), not text log lines';
  let odd = 0;
  for (const b of sample) if (b < 0x09 || (b > 0x0d && b < 0x20) || b === 0x7f) odd++;
  const text = new TextDecoder('utf-8').decode(sample);
  for (let i = 0; i < text.length && i < sample.length; i++) if (text.charCodeAt(i) === 0xfffd) odd++;
  if (odd / sample.length > 0.1) return 'binary content (control bytes, invalid UTF-8), not text log lines';
  return undefined;
}

/** The reason an object's first bytes say it is not gzip or text, or undefined. */
export function compressionReason(head: Uint8Array): string | undefined {
  for (const [magic, what] of KNOWN_BINARY) {
    if (startsWith(head, magic)) return `${what} object: only gzip and plain text are read`;
  }
  return undefined;
}

function isZlibError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/** The first chunk, and an iterable of every chunk (the first included). */
async function peek(
  body: AsyncIterable<Uint8Array>,
): Promise<{ head: Uint8Array | undefined; all: AsyncIterable<Uint8Array> }> {
  const it = body[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? undefined : first.value;
  async function* all() {
    if (head !== undefined) yield head;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, all: all() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LineBatchOptions {
  /** Append blobs: a last line without its newline is left for the next read. */
  completeLinesOnly?: boolean | undefined;
  /** The object only ever grows (append blobs): a new version resumes at the old byte offset. */
  appendOnly?: boolean | undefined;
  /** A line longer than this is cut and handed on as one record. */
  maxLineBytes?: number | undefined;
  /** Lines per batch. */
  linesPerBatch: number;
}

export interface LineBatch {
  lines: string[];
  /** Number (1-based) of the first line of the batch in the object. */
  firstLine: number;
  /** The position once these lines are taken. */
  position: ObjectPosition;
}

/**
 * An object's lines from `from` (its saved position) to the end, in batches; the last batch
 * (possibly empty) carries the final position (done, or the tail of an append blob). Throws
 * UnreadableInputError once the object proves not to be text (after yielding the lines read
 * before the damage), any other error for transient failures.
 */
export async function* objectLineBatches(
  object: StoredObject,
  from: ObjectPosition | undefined,
  options: LineBatchOptions,
): AsyncGenerator<LineBatch> {
  const same = from?.version === object.version;
  if (same && from?.done) return;
  const maxLine = options.maxLineBytes ?? 16 * 1024 * 1024;
  // Plain objects resume by byte; gzip ones by skipping the lines already queued.
  let start = 0;
  let lineNo = 0;
  let skip = 0;
  if (from && !from.gzip && from.bytes > 0 && (same || options.appendOnly)) {
    if (object.size === undefined || object.size >= from.bytes) {
      start = from.bytes;
      lineNo = from.lines;
    }
  } else if (from?.gzip && same) skip = from.lines;
  const meta = {
    ...(object.size !== undefined ? { size: object.size } : {}),
    ...(object.modified !== undefined ? { modified: object.modified } : {}),
  };
  if (object.size !== undefined && start >= object.size && start > 0) {
    yield { lines: [], firstLine: lineNo + 1, position: { ...from!, version: object.version, ...meta } };
    return;
  }

  const abort = new AbortController();
  let text: Readable | undefined;
  try {
    const body = await object.open(start, abort.signal);
    const { head, all } = await peek(body);
    const gzip =
      start === 0 ? head !== undefined && head[0] === 0x1f && head[1] === 0x8b : (from?.gzip ?? false);
    if (start === 0 && head !== undefined && !gzip) {
      const reason = compressionReason(head) ?? binaryReason(head);
      if (reason) throw new UnreadableInputError(reason);
    }
    let compressedRead = start;
    async function* counted() {
      for await (const chunk of all) {
        compressedRead += chunk.length;
        yield chunk;
      }
    }
    const raw = Readable.from(counted(), { objectMode: false });
    text = gzip ? pipeline(raw, createGunzip(), () => undefined) : raw;

    let position: ObjectPosition = { version: object.version, lines: lineNo, bytes: start, gzip, ...meta };
    let pending: string[] = [];
    let pendingFirst = lineNo + 1;
    /** Plain: the byte after the last complete line seen. */
    let consumed = start;
    let checkedText = start > 0;
    const cut = (): LineBatch => {
      position = { ...position, lines: lineNo, bytes: gzip ? compressedRead : consumed };
      const batch = { lines: pending, firstLine: pendingFirst, position };
      pending = [];
      pendingFirst = lineNo + 1;
      return batch;
    };
    const take = (line: string) => {
      lineNo++;
      if (lineNo <= skip) return;
      const body = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (body.length === 0) return;
      // CloudWatch Logs subscription envelopes that Firehose wrote to S3 back to back
      if (body.charCodeAt(0) === 0x7b && isEnvelope(body)) {
        try {
          pending.push(...envelopeMessages(body));
          return;
        } catch {
          // not envelopes after all: the line is handed on as it is
        }
      }
      pending.push(body);
    };

    let carry: Buffer | undefined;
    try {
      for await (const chunk of text as AsyncIterable<Buffer>) {
        if (!checkedText) {
          checkedText = true;
          const reason = binaryReason(chunk);
          if (reason) throw new UnreadableInputError(gzip ? `gzip holding ${reason}` : reason);
        }
        const buf = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
        const nl = buf.lastIndexOf(10);
        if (nl < 0) {
          if (buf.length >= maxLine) {
            take(buf.toString('utf8'));
            consumed += buf.length;
            carry = undefined;
          } else carry = buf;
          continue;
        }
        for (const line of buf.toString('utf8', 0, nl).split('\n')) take(line);
        consumed += nl + 1;
        carry = nl + 1 < buf.length ? buf.subarray(nl + 1) : undefined;
        if (pending.length >= options.linesPerBatch) yield cut();
      }
    } catch (err) {
      if (err instanceof UnreadableInputError) {
        yield cut();
        throw err;
      }
      if (gzip && isZlibError(err)) {
        // A body cut short by the network is retried; a complete body that does not inflate is damaged.
        if (object.size !== undefined && compressedRead < object.size) throw err;
        yield cut();
        throw new UnreadableInputError(
          `gzip data corrupt after line ${lineNo} (byte ${compressedRead} of the object): ${(err as Error).message}`,
        );
      }
      throw err;
    }
    const complete = !options.completeLinesOnly;
    if (carry !== undefined && carry.length > 0 && complete) {
      take(carry.toString('utf8'));
      consumed += carry.length;
    }
    const last = cut();
    // Append blobs: `tail` bytes of a line still without its newline wait for the next read.
    yield {
      ...last,
      position: { ...last.position, ...(complete ? { done: true } : { tail: carry?.length ?? 0 }) },
    };
  } finally {
    abort.abort();
    text?.destroy();
  }
}

/**
 * Read an object from `from` (its saved position) to the end, enqueuing its lines. Returns the
 * final position; throws UnreadableInputError for objects that are not text (after queuing the
 * lines read before the damage), any other error for transient failures (retry later).
 */
export async function readObject(
  object: StoredObject,
  from: ObjectPosition | undefined,
  options: ReadObjectOptions,
): Promise<ObjectPosition> {
  const linesPerBatch = Math.min(
    options.linesPerEnqueue ?? options.producer.batchSize * 8,
    MAX_BATCH_RECORDS * 4,
  );
  let position: ObjectPosition | undefined = from?.version === object.version ? from : undefined;
  const batches = objectLineBatches(object, from, { ...options, linesPerBatch });
  // One batch read ahead: the next lines are downloaded and inflated while these are enqueued.
  let ahead = batches.next();
  ahead.catch(() => undefined);
  try {
    for (;;) {
      const next = await ahead;
      if (next.done) break;
      const batch = next.value;
      ahead = batches.next();
      ahead.catch(() => undefined);
      if (batch.lines.length > 0) {
        while (await options.producer.overHighWater()) {
          if (options.isStopped()) return position ?? { version: object.version, lines: 0, bytes: 0 };
          await sleep(250);
        }
        await options.producer.enqueue(
          batchHeader(options.source),
          batch.lines,
          `${object.url}#${object.version}#${batch.firstLine}`,
        );
      }
      position = batch.position;
      await options.onQueued(position, batch.lines.length);
      if (options.isStopped() && !position.done) return position;
    }
  } finally {
    await batches.return(undefined).catch(() => undefined);
  }
  return position ?? { version: object.version, lines: 0, bytes: 0 };
}

/**
 * Dead-letter an object that could not be read: one record naming it, with the reason. Its
 * job id is deterministic, so a source that fails on the same object twice stores it once.
 */
export async function enqueueUnreadable(
  producer: IngestProducer,
  source: { name: string; format?: string | undefined },
  object: { url: string; version: string; size?: number | undefined },
  reason: string,
): Promise<void> {
  const what = `${object.url} (version ${object.version}${object.size !== undefined ? `, ${object.size} bytes` : ''})`;
  await producer.enqueue(
    { ...batchHeader(source), unreadable: reason },
    [what],
    `unreadable:${object.url}#${object.version}`,
  );
}

/** Per-object positions of a source, kept in Redis. */
export interface ObjectCheckpoints {
  get(ids: string[]): Promise<(ObjectPosition | undefined)[]>;
  set(id: string, position: ObjectPosition): Promise<void>;
}

/** Positions in one Redis hash, kept until removed (bucket and container listing). */
export class HashCheckpoints implements ObjectCheckpoints {
  readonly redis: Redis;
  readonly key: string;
  constructor(redis: Redis, key: string) {
    this.redis = redis;
    this.key = key;
  }
  async get(ids: string[]): Promise<(ObjectPosition | undefined)[]> {
    const out: (ObjectPosition | undefined)[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const values = await this.redis.hmget(this.key, ...ids.slice(i, i + 1000));
      for (const v of values) out.push(v ? (JSON.parse(v) as ObjectPosition) : undefined);
    }
    return out;
  }
  async set(id: string, position: ObjectPosition): Promise<void> {
    await this.redis.hset(this.key, id, JSON.stringify(position));
  }
  /** Every id stored. */
  async ids(): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(this.key, cursor, 'COUNT', 1000);
      for (let i = 0; i < entries.length; i += 2) out.push(entries[i]!);
      cursor = next;
    } while (cursor !== '0');
    return out;
  }
  async remove(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) await this.redis.hdel(this.key, ...ids.slice(i, i + 1000));
  }
}

/**
 * Positions as keys that expire (event notifications: a message is the checkpoint; these only
 * let a redelivered message resume mid-object, and skip an object read to the end already).
 */
export class ExpiringCheckpoints implements ObjectCheckpoints {
  readonly redis: Redis;
  readonly prefix: string;
  readonly ttlSeconds: number;
  constructor(redis: Redis, prefix: string, ttlSeconds: number) {
    this.redis = redis;
    this.prefix = prefix;
    this.ttlSeconds = ttlSeconds;
  }
  async get(ids: string[]): Promise<(ObjectPosition | undefined)[]> {
    if (ids.length === 0) return [];
    const values = await this.redis.mget(...ids.map((id) => `${this.prefix}:${id}`));
    return values.map((v) => (v ? (JSON.parse(v) as ObjectPosition) : undefined));
  }
  async set(id: string, position: ObjectPosition): Promise<void> {
    await this.redis.set(`${this.prefix}:${id}`, JSON.stringify(position), 'EX', this.ttlSeconds);
  }
}
