/**
 * A local disk buffer for sources that cannot ask the sender to keep its data (plain syslog
 * over UDP and TCP): while the queue (Redis) is unavailable, what arrives is appended here
 * instead of piling up in memory, flushed to disk every `syncMs`, and queued once Redis is back
 * (also after a restart: files left by a killed process are drained first).
 *
 * Files are JSON lines `[peer, record]`, one file per outage and process, named so they sort
 * in order of creation. Draining queues each file in batches whose job ids derive from the file
 * name and line, so a drain interrupted (Redis gone again, a kill) and started over queues
 * nothing twice; a file is deleted only once all of it is queued.
 */
import {
  closeSync,
  createReadStream,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface SpoolOptions {
  dir: string;
  /** Source name: the files of this source start with it. */
  name: string;
  /** Largest total size of this source's files; beyond it `append` refuses. */
  maxBytes: number;
  /** How often written records are forced to disk (ms). */
  syncMs?: number;
  /**
   * Applied to every record before it is written: secret scrubbing, so that nothing on this disk
   * holds a secret in clear either (IngestProducer.scrub; draining queues them as they are).
   */
  scrub?: (record: string) => string;
}

export class Spool {
  private readonly options: SpoolOptions;
  private fd: number | undefined;
  private file: string | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;
  /** Bytes in this source's files (existing ones counted at start). */
  bytes = 0;

  constructor(options: SpoolOptions) {
    this.options = options;
    mkdirSync(options.dir, { recursive: true });
    for (const file of this.files()) this.bytes += statSync(join(options.dir, file)).size;
  }

  /** Files of this source, oldest first. */
  files(): string[] {
    const prefix = `${this.options.name}.`;
    return readdirSync(this.options.dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith('.jsonl'))
      .sort();
  }

  /** Whether anything waits to be queued. */
  get pending(): boolean {
    return this.bytes > 0;
  }

  /** Append records; false (nothing written) when the spool is full. */
  append(peer: string, records: string[]): boolean {
    if (records.length === 0) return true;
    const scrub = this.options.scrub;
    const text = `${records.map((r) => JSON.stringify([peer, scrub === undefined ? r : scrub(r)])).join('\n')}\n`;
    const size = Buffer.byteLength(text);
    if (this.bytes + size > this.options.maxBytes) return false;
    if (this.fd === undefined) {
      // Zero-padded time first: names sort in the order the files were started.
      this.file = `${this.options.name}.${String(Date.now()).padStart(15, '0')}-${process.pid}-${this.sequence++}.jsonl`;
      this.fd = openSync(join(this.options.dir, this.file), 'a');
      this.timer ??= setInterval(() => this.sync(), this.options.syncMs ?? 1_000);
      this.timer.unref();
    }
    writeSync(this.fd, text);
    this.bytes += size;
    this.dirty = true;
    return true;
  }

  /** Force what was written to disk. */
  sync(): void {
    if (this.fd !== undefined && this.dirty) {
      fsyncSync(this.fd);
      this.dirty = false;
    }
  }

  /** Close the file being written (the next append starts a new one). */
  private finishFile(): void {
    if (this.fd === undefined) return;
    this.sync();
    closeSync(this.fd);
    this.fd = undefined;
    this.file = undefined;
  }

  /**
   * Queue every file, oldest first, in batches of `batchSize` records per peer. Stops at the
   * first failure (the file stays, to be drained again). Returns the records queued.
   */
  async drain(
    enqueue: (peer: string, records: string[], discriminator: string) => Promise<unknown>,
    batchSize: number,
  ): Promise<number> {
    this.finishFile();
    let queued = 0;
    for (const file of this.files()) {
      const path = join(this.options.dir, file);
      const size = statSync(path).size;
      const byPeer = new Map<string, { records: string[]; firstLine: number }>();
      const send = async (peer: string) => {
        const group = byPeer.get(peer)!;
        byPeer.delete(peer);
        await enqueue(peer, group.records, `spool:${file}:${group.firstLine}`);
        queued += group.records.length;
      };
      const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
      let n = 0;
      for await (const line of lines) {
        n++;
        let entry: unknown;
        try {
          entry = JSON.parse(line);
        } catch {
          continue; // a line torn by a kill mid-write
        }
        if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'string') continue;
        const [peer, record] = entry as [string, string];
        let group = byPeer.get(peer);
        if (!group) {
          group = { records: [], firstLine: n };
          byPeer.set(peer, group);
        }
        group.records.push(record);
        if (group.records.length >= batchSize) await send(peer);
      }
      for (const peer of [...byPeer.keys()]) await send(peer);
      unlinkSync(path);
      this.bytes = Math.max(0, this.bytes - size);
    }
    return queued;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.finishFile();
  }
}
