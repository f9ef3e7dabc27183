/**
 * Syslog source: RFC 5424 and RFC 3164 over UDP and TCP (optionally TLS). On TCP each frame is
 * octet-counted (`<len> <msg>`, RFC 6587 §3.4.1) or newline-terminated, detected per frame.
 * The record handed to parsing is the syslog MSG part: the gateway's own log line.
 *
 * Back-pressure: TCP sockets are paused while the queue is above its high-water mark. UDP has
 * no way to push back; datagrams arriving then are counted as dropped (visible in status).
 *
 * Plain syslog has no acknowledgement, so what was read cannot be asked for again: while the
 * queue (Redis) is unavailable, records go to a local disk spool (spool.ts) rather than
 * memory, and are queued when it is back, also after a restart. The kernel's own UDP drops
 * (receive buffer full) are read from /proc/net/udp, published with the other counters and
 * warned about.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { SourceConfig } from '../../core/config/schema.ts';
import { batchHeader } from '../pipeline/batch.ts';
import type { IngestProducer } from '../pipeline/producer.ts';
import { ReadPause } from './read-pause.ts';
import type { Spool } from './spool.ts';
import type { Source, SourceStatusSnapshot } from './types.ts';

export interface SyslogMessage {
  facility?: number;
  severity?: number;
  hostname?: string;
  appName?: string;
  timestamp?: string;
  msg: string;
}

const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec';

/** Parse one syslog message (RFC 5424, RFC 3164, or a bare line). Never throws. */
export function parseSyslog(frame: string): SyslogMessage {
  const line = frame.replace(/\r?\n$/, '');
  const pri = /^<(\d{1,3})>/.exec(line);
  if (!pri) return { msg: line };
  const value = Number(pri[1]);
  const base = { facility: value >> 3, severity: value & 7 };
  const rest = line.slice(pri[0].length);
  // RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
  const v5424 = /^1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(rest);
  if (v5424) {
    let i = v5424[0].length;
    if (rest[i] === '-') i += 1;
    else if (rest[i] === '[') {
      // Structured data: [id k="v" …]… with \] escapes inside values.
      let inValue = false;
      for (; i < rest.length; i++) {
        const c = rest[i];
        if (inValue) {
          if (c === '\\') i++;
          else if (c === '"') inValue = false;
        } else if (c === '"') inValue = true;
        else if (c === ']' && rest[i + 1] !== '[') {
          i++;
          break;
        }
      }
    }
    let msg = rest.slice(i).replace(/^ /, '');
    if (msg.startsWith('\uFEFF')) msg = msg.slice(1);
    const nil = (s: string) => (s === '-' ? undefined : s);
    return {
      ...base,
      ...(nil(v5424[1]!) ? { timestamp: v5424[1] } : {}),
      ...(nil(v5424[2]!) ? { hostname: v5424[2] } : {}),
      ...(nil(v5424[3]!) ? { appName: v5424[3] } : {}),
      msg,
    };
  }
  // RFC 3164: Mmm dd hh:mm:ss HOSTNAME TAG[pid]: MSG
  const v3164 = /^([A-Z][a-z]{2}) ([ \d]\d) (\d\d:\d\d:\d\d) (\S+) ([^:\s[]+)(?:\[[^\]]*\])?: ?/.exec(rest);
  if (v3164 && MONTHS.includes(v3164[1]!)) {
    return {
      ...base,
      timestamp: `${v3164[1]} ${v3164[2]} ${v3164[3]}`,
      hostname: v3164[4],
      appName: v3164[5],
      msg: rest.slice(v3164[0].length),
    };
  }
  // rsyslog's forwarding templates (RSYSLOG_ForwardFormat, the omfwd/omrelp default): RFC 3164
  // layout with an RFC 3339 timestamp — <PRI>2026-11-23T10:00:00.123+00:00 HOSTNAME TAG: MSG.
  // rsyslog sends the tag as configured, often without the colon (imfile Tag="gateway"); as in
  // RFC 3164 the tag then ends at the first character that cannot be part of it.
  const forward = /^(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)) (\S+) ([^:\s[]+)(?:\[[^\]]*\])?:? ?/.exec(
    rest,
  );
  if (forward) {
    return {
      ...base,
      timestamp: forward[1],
      hostname: forward[2],
      appName: forward[3],
      msg: rest.slice(forward[0].length),
    };
  }
  return { ...base, msg: rest.replace(/^ /, '') };
}

/**
 * Incremental TCP framer: feed bytes, get complete frames. Octet counting is chosen when a
 * frame starts with digits and a space; otherwise the frame runs to the next LF.
 */
export class SyslogFramer {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly maxFrame: number;

  constructor(maxFrame = 1024 * 1024) {
    this.maxFrame = maxFrame;
  }

  push(chunk: Buffer): string[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: string[] = [];
    for (;;) {
      if (this.buffer.length === 0) break;
      const counted = /^(\d{1,9}) /.exec(this.buffer.subarray(0, 11).toString('latin1'));
      if (counted) {
        const length = Number(counted[1]);
        const start = counted[0].length;
        if (this.buffer.length < start + length) {
          if (length > this.maxFrame) {
            // Refuse to buffer an absurd frame: hand on what we have, cut.
            frames.push(this.buffer.subarray(start).toString('utf8'));
            this.buffer = Buffer.alloc(0);
          }
          break;
        }
        frames.push(this.buffer.subarray(start, start + length).toString('utf8'));
        this.buffer = this.buffer.subarray(start + length);
        continue;
      }
      const lf = this.buffer.indexOf(0x0a);
      if (lf < 0) {
        if (this.buffer.length > this.maxFrame) {
          frames.push(this.buffer.toString('utf8'));
          this.buffer = Buffer.alloc(0);
        }
        break;
      }
      const frame = this.buffer.subarray(0, lf).toString('utf8');
      if (frame.trim().length > 0) frames.push(frame);
      this.buffer = this.buffer.subarray(lf + 1);
    }
    return frames;
  }

  /** What remains at connection end (a last frame without LF). */
  flush(): string[] {
    const rest = this.buffer.toString('utf8');
    this.buffer = Buffer.alloc(0);
    return rest.trim().length > 0 ? [rest] : [];
  }
}

export interface SyslogSourceOptions {
  source: SourceConfig;
  producer: IngestProducer;
  host: string;
  port: number;
  udp?: boolean;
  tcp?: boolean;
  tls?: { port: number; options: TlsOptions };
  /** Flush buffered records at least this often (ms). */
  flushMs?: number;
  /**
   * Where records go while the queue is unavailable (see spool.ts). Without one, at most
   * `maxMemoryRecords` wait in memory and TCP reading pauses meanwhile (UDP drops).
   */
  spool?: Spool;
  /** Records held in memory for the queue before TCP reading pauses (default 10,000). */
  maxMemoryRecords?: number;
  /** UDP receive buffer asked of the kernel (bytes; the kernel caps it at net.core.rmem_max). */
  udpReceiveBuffer?: number;
  /** Called when a batch could not be queued (it is kept and tried again). */
  onError?: (err: Error) => void;
  /** Warnings an operator must see (UDP drops, a receive buffer smaller than asked). */
  onWarning?: (message: string) => void;
  /** Where the drop counters are published (the sources status and metrics read them). */
  publish?: (counters: SyslogCounters) => Promise<void>;
}

/** What the syslog source counts besides what it queues. */
export interface SyslogCounters {
  /** Datagrams the kernel dropped because the socket's receive buffer was full. */
  droppedKernel: number;
  /** Datagrams dropped here: the queue above its high-water mark, or the spool full. */
  droppedHighWater: number;
  /** Records waiting on local disk for the queue. */
  spooledBytes: number;
  lastWarning?: string;
}

/**
 * Drops the kernel counted on a UDP socket bound to `port`: the last column of its line in
 * /proc/net/udp or /proc/net/udp6 (Linux). Undefined where that is not available.
 */
export function udpKernelDrops(port: number): number | undefined {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let found: number | undefined;
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13 || !cols[1]!.endsWith(hexPort)) continue;
      found = (found ?? 0) + Number(cols[cols.length - 1]);
    }
  }
  return found;
}

/** How often drop counters are read and published (ms). */
const COUNTERS_EVERY_MS = 2_000;
/** Warnings about the same kind of drop at most this often (ms). */
const WARN_EVERY_MS = 60_000;

export class SyslogSource implements Source {
  private readonly options: SyslogSourceOptions;
  private udp?: UdpSocket;
  private servers: Server[] = [];
  private pending: { records: string[]; peer: string }[] = [];
  private timer?: NodeJS.Timeout;
  private countersTimer?: NodeJS.Timeout;
  private readonly sockets = new Set<Socket>();
  private readonly paused = new Set<Socket>();
  private sequence = 0;
  /** The last attempt to queue failed: records go to the spool until it is drained. */
  private queueDown = false;
  private draining = false;
  private flushing: Promise<void> = Promise.resolve();
  private kernelDropsAtStart = 0;
  private warnedAt = { kernel: Number.NEGATIVE_INFINITY, highWater: Number.NEGATIVE_INFINITY };
  private warnedCounts = { kernel: 0, highWater: 0 };
  private lastWarning: string | undefined;
  droppedUdp = 0;
  droppedKernel = 0;
  received = 0;
  udpPort?: number;
  tcpPort?: number;
  tlsPort?: number;
  /** The UDP receive buffer the kernel granted (bytes). */
  udpReceiveBuffer?: number;

  constructor(options: SyslogSourceOptions) {
    this.options = options;
  }

  get name(): string {
    return this.options.source.name;
  }

  status(): SourceStatusSnapshot {
    return { name: this.name, records: this.received, dropped: this.droppedUdp + this.droppedKernel };
  }

  counters(): SyslogCounters {
    return {
      droppedKernel: this.droppedKernel,
      droppedHighWater: this.droppedUdp,
      spooledBytes: this.options.spool?.bytes ?? 0,
      ...(this.lastWarning ? { lastWarning: this.lastWarning } : {}),
    };
  }

  private warn(message: string): void {
    this.lastWarning = message;
    (this.options.onWarning ?? ((m: string) => console.error(m)))(message);
  }

  private add(peer: string, frames: string[]): void {
    const records = frames.map((f) => parseSyslog(f).msg).filter((m) => m.length > 0);
    if (records.length === 0) return;
    this.received += records.length;
    const spool = this.options.spool;
    if (this.queueDown && spool) {
      // Queue unavailable: straight to disk, nothing more in memory.
      if (!spool.append(peer, records)) {
        this.droppedUdp += records.length;
        this.pauseAll();
      }
      return;
    }
    this.pending.push({ records, peer });
    const held = this.pendingRecords();
    if (held >= this.options.producer.batchSize) void this.flush();
    if (held >= (this.options.maxMemoryRecords ?? 10_000)) this.pauseAll();
  }

  private pendingRecords(): number {
    let n = 0;
    for (const p of this.pending) n += p.records.length;
    return n;
  }

  private pauseAll(): void {
    for (const socket of this.sockets) {
      if (this.paused.has(socket)) continue;
      this.paused.add(socket);
      socket.pause();
    }
  }

  private resumeAll(): void {
    for (const socket of this.paused) if (!socket.destroyed) socket.resume();
    this.paused.clear();
  }

  /**
   * Enqueue what was received. If the queue does not take it, it goes to the spool (or, without
   * one, stays pending while TCP reading pauses) instead of being dropped. Flushes run one at a
   * time, in order.
   */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.queueDown || this.options.spool?.pending) await this.tryDrain();
    const groups = this.pending;
    this.pending = [];
    const byPeer = new Map<string, string[]>();
    for (const g of groups) byPeer.set(g.peer, [...(byPeer.get(g.peer) ?? []), ...g.records]);
    const entries = [...byPeer];
    for (let i = 0; i < entries.length; i++) {
      const [peer, records] = entries[i]!;
      try {
        if (this.queueDown) throw new Error('ingest queue unavailable');
        await this.options.producer.enqueue(
          batchHeader(this.options.source, peer),
          records,
          // Syslog has no message ids: a process-unique sequence keeps job ids distinct.
          `syslog:${process.pid}:${Date.now()}:${this.sequence++}`,
        );
      } catch (err) {
        if (!this.queueDown) this.options.onError?.(err as Error);
        this.queueDown = true;
        const rest = entries.slice(i);
        const spool = this.options.spool;
        if (spool) {
          for (const [p, r] of rest) {
            if (!spool.append(p, r)) {
              this.droppedUdp += r.length;
              this.pauseAll();
            }
          }
        } else {
          this.pending.unshift(...rest.map(([p, r]) => ({ peer: p, records: r })));
          this.pauseAll();
        }
        return;
      }
    }
    if (this.pendingRecords() < (this.options.maxMemoryRecords ?? 10_000) && !(await this.overHighWater()))
      this.resumeAll();
  }

  /** Queue what the spool holds once the queue answers again. */
  private async tryDrain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      await this.options.producer.currentDepth(true);
      const spool = this.options.spool;
      if (spool?.pending) {
        await spool.drain(
          (peer, records, discriminator) =>
            this.options.producer.enqueue(batchHeader(this.options.source, peer), records, discriminator),
          this.options.producer.batchSize,
        );
      }
      this.queueDown = false;
    } catch {
      // Still unavailable: try again at the next flush.
    } finally {
      this.draining = false;
    }
  }

  private overHighWater(): Promise<boolean> {
    // Unreachable: with a spool, reading goes on (records go to disk); without, it pauses.
    return this.options.producer.overHighWater().catch(() => !this.options.spool);
  }

  /** True when stream sources should stop reading now. */
  private async mustPushBack(): Promise<boolean> {
    if (this.pendingRecords() >= (this.options.maxMemoryRecords ?? 10_000)) return true;
    if (this.queueDown) return !this.options.spool;
    return this.overHighWater();
  }

  private handleConnection(socket: Socket): void {
    this.sockets.add(socket);
    const framer = new SyslogFramer();
    const peer = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const pause = new ReadPause(socket, () => this.mustPushBack(), 500);
    socket.on('data', async (chunk: Buffer) => {
      this.add(peer, framer.push(chunk));
      await pause.check();
    });
    socket.on('end', () => this.add(peer, framer.flush()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.paused.delete(socket);
    });
  }

  /** Read the kernel's drop counter, publish the counters, warn about new drops. */
  private async publishCounters(): Promise<void> {
    if (this.udpPort !== undefined) {
      const drops = udpKernelDrops(this.udpPort);
      if (drops !== undefined) this.droppedKernel = Math.max(0, drops - this.kernelDropsAtStart);
    }
    const now = Date.now();
    const newKernel = this.droppedKernel - this.warnedCounts.kernel;
    if (newKernel > 0 && now - this.warnedAt.kernel >= WARN_EVERY_MS) {
      this.warn(
        `syslog source ${this.name}: the kernel dropped ${newKernel} UDP datagram(s) (${this.droppedKernel} since start): ` +
          `the ${this.udpReceiveBuffer ?? '?'}-byte receive buffer filled faster than it was read. Raise ` +
          'ingest.syslogUdpReceiveBuffer (and net.core.rmem_max), or send over TCP or RELP.',
      );
      this.warnedAt.kernel = now;
      this.warnedCounts.kernel = this.droppedKernel;
    }
    const newHighWater = this.droppedUdp - this.warnedCounts.highWater;
    if (newHighWater > 0 && now - this.warnedAt.highWater >= WARN_EVERY_MS) {
      this.warn(
        `syslog source ${this.name}: dropped ${newHighWater} UDP record(s) (${this.droppedUdp} since start): ` +
          'the ingest queue is above its high-water mark (workers behind) or the spool is full; UDP cannot push back.',
      );
      this.warnedAt.highWater = now;
      this.warnedCounts.highWater = this.droppedUdp;
    }
    await this.options.publish?.(this.counters()).catch(() => undefined);
  }

  async start(): Promise<void> {
    const { host, port } = this.options;
    this.timer = setInterval(() => void this.flush(), this.options.flushMs ?? 200);
    if (this.options.udp ?? true) {
      const udp = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      udp.on('message', async (msg, rinfo) => {
        // UDP cannot push back: past the high-water mark it drops (counted); while the queue is
        // unavailable records go to the spool.
        if (!this.queueDown && (await this.options.producer.overHighWater().catch(() => false))) {
          this.droppedUdp++;
          return;
        }
        this.add(
          rinfo.address,
          msg
            .toString('utf8')
            .split('\n')
            .filter((l) => l.trim().length > 0),
        );
      });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => resolve());
      });
      this.udp = udp;
      this.udpPort = udp.address().port;
      const asked = this.options.udpReceiveBuffer;
      if (asked !== undefined) {
        try {
          udp.setRecvBufferSize(asked);
        } catch (err) {
          this.warn(
            `syslog source ${this.name}: cannot set the UDP receive buffer: ${(err as Error).message}`,
          );
        }
      }
      this.udpReceiveBuffer = udp.getRecvBufferSize();
      // Linux reports twice what it grants (the other half is bookkeeping); a smaller answer
      // means the asked size was capped at net.core.rmem_max.
      if (asked !== undefined && this.udpReceiveBuffer < asked) {
        this.warn(
          `syslog source ${this.name}: the UDP receive buffer is ${this.udpReceiveBuffer} bytes, not the ${asked} asked ` +
            `(ingest.syslogUdpReceiveBuffer): the kernel caps it at net.core.rmem_max; raise that (sysctl -w net.core.rmem_max=${asked}) or bursts will be dropped.`,
        );
      }
      this.kernelDropsAtStart = udpKernelDrops(this.udpPort) ?? 0;
      this.countersTimer = setInterval(() => void this.publishCounters(), COUNTERS_EVERY_MS);
      this.countersTimer.unref();
    }
    if (this.options.tcp ?? true) {
      const server = createServer((socket) => this.handleConnection(socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // Same port number as UDP when one was chosen by the OS.
        server.listen(this.udpPort ?? port, host, () => resolve());
      });
      this.servers.push(server);
      this.tcpPort = (server.address() as { port: number }).port;
    }
    if (this.options.tls) {
      const server = createTlsServer(this.options.tls.options, (socket) => this.handleConnection(socket));
      await new Promise<void>((resolve) => server.listen(this.options.tls!.port, host, () => resolve()));
      this.servers.push(server);
      this.tlsPort = (server.address() as { port: number }).port;
    }
    // Records a previous process left on disk are queued first.
    if (this.options.spool?.pending) void this.flush();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.countersTimer) clearInterval(this.countersTimer);
    this.udp?.close();
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
    await this.flush();
    if (this.udpPort !== undefined) await this.publishCounters();
    this.options.spool?.close();
  }
}
