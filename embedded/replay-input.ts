/**
 * The replay's input side: log files → lines → normalised, enriched events as store rows
 * (id, time, JSON document). By default this runs on a worker thread (one, so the normaliser's
 * learned state — route templates, format detection — sees every line in file order exactly
 * as in one thread), leaving the main thread to the store, the inventory and the rules.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';
import type { GatewatchConfig } from '../core/config/schema.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import type { RawBatch } from '../ingest/pipeline/batch.ts';
import { createNormalizer, type Normalizer } from '../ingest/pipeline/normalize.ts';
import { deadLetterId } from '../ingest/sinks/dead-letters.ts';
import { isRemoteInput } from '../ingest/sources/remote-url.ts';
import { storableRecord } from '../ingest/transforms/scrub.ts';
import type { ColumnBatch, ColumnEncoder } from './replay-columns.ts';

/** Whether a file starts with gzip's magic number (whatever its name). */
function isGzip(path: string): boolean {
  const head = Buffer.alloc(2);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/**
 * Non-empty lines of a log file, gzip (told by its first bytes, not its name) or plain, in
 * arrays of up to a few MB of text. Lines end at \n, \r\n or a lone \r, as with
 * node:readline. `progress.bytes` follows the bytes read from the file (compressed bytes for
 * gzip), so progress can be told against the files' sizes.
 */
export async function* readLineBatches(path: string, progress?: { bytes: number }): AsyncGenerator<string[]> {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const input = isGzip(path) ? file.pipe(createGunzip()) : file;
  let rest: Buffer | undefined;
  // Whole lines are decoded at once ('\n' never occurs inside a UTF-8 sequence, so this reads
  // the same as decoding line by line), then split.
  const split = (text: string, lines: string[]) => {
    const cr = text.includes('\r');
    for (const line of text.split('\n')) {
      if (!cr) {
        if (line.length > 0) lines.push(line);
        continue;
      }
      const body = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (body.includes('\r')) {
        for (const part of body.split('\r')) if (part.length > 0) lines.push(part);
      } else if (body.length > 0) lines.push(body);
    }
  };
  for await (const piece of input as AsyncIterable<Buffer>) {
    const buf = rest === undefined ? piece : Buffer.concat([rest, piece]);
    const nl = buf.lastIndexOf(10);
    if (nl < 0) {
      rest = buf;
      continue;
    }
    const lines: string[] = [];
    split(buf.toString('utf8', 0, nl), lines);
    rest = nl + 1 < buf.length ? buf.subarray(nl + 1) : undefined;
    if (progress) progress.bytes = file.bytesRead;
    if (lines.length > 0) yield lines;
  }
  if (progress) progress.bytes = file.bytesRead;
  if (rest !== undefined) {
    const lines: string[] = [];
    split(rest.toString('utf8'), lines);
    if (lines.length > 0) yield lines;
  }
}

/** Non-empty lines of a log file, gzip or plain. */
export async function* readLines(path: string): AsyncGenerator<string> {
  for await (const lines of readLineBatches(path)) yield* lines;
}

/** Lines of an input, or why it cannot be read (an object that is not text). */
export type InputChunk = { lines: string[] } | { unreadable: string; raw: string };

/**
 * Lines of a local file, or of a remote input (s3://, cloudwatch://, kafka://, azblob://:
 * ingest/sources/remote.ts, loaded only when one is replayed).
 */
export async function* inputChunks(
  input: string,
  range: { since?: number | undefined; until?: number | undefined } = {},
  progress?: { bytes: number },
): AsyncGenerator<InputChunk> {
  if (!isRemoteInput(input)) {
    for await (const lines of readLineBatches(input, progress)) yield { lines };
    return;
  }
  const { remoteLineBatches } = await import('../ingest/sources/remote.ts');
  try {
    for await (const lines of remoteLineBatches(input, range)) yield { lines };
  } catch (err) {
    if ((err as Error).name !== 'UnreadableInputError') throw err;
    yield { unreadable: (err as Error).message, raw: input.replace(/\?.*$/, '') };
  }
}

/** The batch for an input that could not be read: one dead letter. */
export function unreadableBatch(source: string, chunk: { unreadable: string; raw: string }): InputBatch {
  return {
    records: 1,
    deadLetters: [{ id: deadLetterId(source, chunk.raw), reason: chunk.unreadable, raw: chunk.raw }],
    ids: [],
    ts: new Float64Array(0),
    docs: '',
  };
}

export interface InputOptions {
  config: GatewatchConfig;
  /** Source name events are attributed to (part of their id). */
  source: string;
  /** Time the records count as received (fallback event time, dead-letter time). */
  receivedAt: number;
  /** Only events with since <= @timestamp < until (ms). */
  since?: number;
  until?: number;
  /** Normalise on a worker thread (default true). */
  thread?: boolean;
  /**
   * On the worker: also send the events' projection on these fields (`projector`) as columns
   * (embedded/replay-columns.ts), which is all the main thread reads of them (the full
   * documents only go to the store).
   */
  fields?: string[];
  /** Filled in at the end: CPU time of the worker thread (ms), when one ran. */
  stats?: { workerCpuMs?: number };
}

/** Normalised input: events as store rows, in input order, and the records that failed. */
export interface InputBatch {
  /** Lines read. */
  records: number;
  /** Bytes read from the files so far, all files together (set by the reader). */
  bytes?: number;
  deadLetters: { id: string; reason: string; raw: string }[];
  ids: string[];
  ts: Float64Array;
  /**
   * The JSON documents, joined by newlines (JSON.stringify never emits one): one string per
   * batch crosses the thread boundary and the collector never copies thousands of them.
   */
  docs: string;
  /** The events themselves, when normalised on this thread. */
  events?: GatewatchEvent[];
  /** From the worker: the events projected on `InputOptions.fields`, as columns. */
  columns?: ColumnBatch;
}

/** Normalise lines into a batch (the same function on the worker and in process). */
export function normalizeLines(
  lines: string[],
  normalize: Normalizer,
  raw: RawBatch,
  options: {
    since?: number | undefined;
    until?: number | undefined;
    keepEvents: boolean;
    encode?: ColumnEncoder | undefined;
  },
): InputBatch {
  const deadLetters: InputBatch['deadLetters'] = [];
  const ids: string[] = [];
  const times: number[] = [];
  const docs: string[] = [];
  const { since, until, encode } = options;
  const events: GatewatchEvent[] | undefined = options.keepEvents ? [] : undefined;
  const results = normalize.many(lines, raw);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const result = results[i]!;
    const failures = result.ok ? result.failures : [result];
    if (failures.length > 0) {
      // what the normaliser read: scrubbed, with keyed surrogates (the id), stored without them
      const record = normalize.scrub(line, raw);
      const id = deadLetterId(raw.source, record);
      for (const f of failures) deadLetters.push({ id, reason: f.reason, raw: storableRecord(record) });
    }
    if (!result.ok) continue;
    for (const event of result.events) {
      const ts = Date.parse(event['@timestamp']);
      if (since !== undefined && ts < since) continue;
      if (until !== undefined && ts >= until) continue;
      ids.push(event.event!.id!);
      times.push(ts);
      docs.push(JSON.stringify(event));
      events?.push(event);
      encode?.add(event);
    }
  }
  return {
    records: lines.length,
    deadLetters,
    ids,
    ts: Float64Array.from(times),
    docs: docs.join('\n'),
    ...(events ? { events } : {}),
    ...(encode ? { columns: encode.end() } : {}),
  };
}

/** Normalised batches of the files, in order. */
export async function* inputBatches(files: string[], options: InputOptions): AsyncGenerator<InputBatch> {
  if (options.thread !== false && files.length > 0) {
    yield* threadBatches(files, options);
    return;
  }
  const normalize = createNormalizer(options.config);
  const raw: RawBatch = { source: options.source, receivedAt: options.receivedAt, records: [] };
  const opts = { since: options.since, until: options.until, keepEvents: true };
  for await (const chunk of chunksOf(files, options)) {
    if ('unreadable' in chunk) {
      yield { ...unreadableBatch(options.source, chunk), events: [], bytes: chunk.bytes };
      continue;
    }
    const { lines, bytes } = chunk;
    for (let i = 0; i < lines.length; i += 2000)
      yield { ...normalizeLines(lines.slice(i, i + 2000), normalize, raw, opts), bytes };
  }
}

/**
 * The inputs' chunks in order, each with the bytes read of the local files so far (remote
 * inputs add none: their size is not known before they are read).
 */
export async function* chunksOf(
  inputs: string[],
  range: { since?: number | undefined; until?: number | undefined } = {},
): AsyncGenerator<({ lines: string[] } | { unreadable: string; raw: string }) & { bytes: number }> {
  let done = 0;
  for (const input of inputs) {
    const progress = { bytes: 0 };
    for await (const chunk of inputChunks(input, range, progress))
      yield { ...chunk, bytes: done + progress.bytes };
    done += progress.bytes;
  }
}

/** Messages from the worker (embedded/replay-worker.ts). */
export type WorkerMessage = { batch: InputBatch } | { done: true; cpuMs: number } | { error: string };

/** Batches in flight between the worker and the main thread (bounds memory). */
export const WORKER_CREDITS = 8;

async function* threadBatches(files: string[], options: InputOptions): AsyncGenerator<InputBatch> {
  const worker = new Worker(new URL('./replay-worker.ts', import.meta.url), {
    workerData: {
      files,
      config: options.config,
      source: options.source,
      receivedAt: options.receivedAt,
      since: options.since,
      until: options.until,
      fields: options.fields,
    },
  });
  const queue: WorkerMessage[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  worker.on('message', (m: WorkerMessage) => {
    queue.push(m);
    wake?.();
  });
  worker.on('error', (err) => {
    failure = err;
    wake?.();
  });
  worker.on('exit', (code) => {
    if (code !== 0) failure ??= new Error(`replay worker exited with code ${code}`);
    wake?.();
  });
  try {
    for (;;) {
      while (queue.length === 0) {
        if (failure) throw failure;
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
      const m = queue.shift()!;
      if ('error' in m) throw new Error(m.error);
      if ('done' in m) {
        if (options.stats) options.stats.workerCpuMs = m.cpuMs;
        return;
      }
      worker.postMessage('ack');
      yield m.batch;
    }
  } finally {
    await worker.terminate();
  }
}
