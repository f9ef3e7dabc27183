/**
 * Syslog source: RFC 5424 and RFC 3164 over UDP and TCP (optionally TLS). On TCP each frame is
 * octet-counted (`<len> <msg>`, RFC 6587 §3.4.1) or newline-terminated, detected per frame.
 * The record handed to parsing is the syslog MSG part: the gateway's own log line.
 *
 * Back-pressure: TCP sockets are paused while the queue is above its high-water mark. UDP has
 * no way to push back; datagrams arriving then are counted as dropped (visible in status).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { SourceConfig } from '../../core/config/schema.ts';
import { batchHeader } from '../pipeline/batch.ts';
import type { IngestProducer } from '../pipeline/producer.ts';
import { ReadPause } from './read-pause.ts';
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
  /** Called when a batch could not be queued (it is kept and tried again). */
  onError?: (err: Error) => void;
}

/** Records held here while Redis is unreachable before TCP reading pauses and UDP drops. */
const MAX_PENDING_RECORDS = 50_000;

export class SyslogSource implements Source {
  private readonly options: SyslogSourceOptions;
  private udp?: UdpSocket;
  private servers: Server[] = [];
  private pending: { records: string[]; peer: string }[] = [];
  private timer?: NodeJS.Timeout;
  private readonly sockets = new Set<Socket>();
  private sequence = 0;
  droppedUdp = 0;
  received = 0;
  udpPort?: number;
  tcpPort?: number;
  tlsPort?: number;

  constructor(options: SyslogSourceOptions) {
    this.options = options;
  }

  get name(): string {
    return this.options.source.name;
  }

  status(): SourceStatusSnapshot {
    return { name: this.name, records: this.received, dropped: this.droppedUdp };
  }

  private add(peer: string, frames: string[]): void {
    const records = frames.map((f) => parseSyslog(f).msg).filter((m) => m.length > 0);
    if (records.length === 0) return;
    this.received += records.length;
    this.pending.push({ records, peer });
    if (this.pendingRecords() >= this.options.producer.batchSize) void this.flush();
  }

  private pendingRecords(): number {
    let n = 0;
    for (const p of this.pending) n += p.records.length;
    return n;
  }

  /**
   * Enqueue what was received. Records that could not be queued (Redis unreachable) stay
   * pending for the next flush instead of being dropped; TCP reading pauses while they pile up.
   */
  async flush(): Promise<void> {
    const groups = this.pending;
    this.pending = [];
    const byPeer = new Map<string, string[]>();
    for (const g of groups) byPeer.set(g.peer, [...(byPeer.get(g.peer) ?? []), ...g.records]);
    const entries = [...byPeer];
    for (let i = 0; i < entries.length; i++) {
      const [peer, records] = entries[i]!;
      try {
        await this.options.producer.enqueue(
          batchHeader(this.options.source, peer),
          records,
          // Syslog has no message ids: a process-unique sequence keeps job ids distinct.
          `syslog:${process.pid}:${Date.now()}:${this.sequence++}`,
        );
      } catch (err) {
        this.pending.unshift(...entries.slice(i).map(([p, r]) => ({ peer: p, records: r })));
        this.options.onError?.(err as Error);
        return;
      }
    }
  }

  /** True when sources should stop reading: queue above high water, unreachable, or a backlog here. */
  private async mustPushBack(): Promise<boolean> {
    if (this.pendingRecords() >= MAX_PENDING_RECORDS) return true;
    return this.options.producer.overHighWater().catch(() => true);
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
    socket.on('close', () => this.sockets.delete(socket));
  }

  async start(): Promise<void> {
    const { host, port } = this.options;
    this.timer = setInterval(() => void this.flush(), this.options.flushMs ?? 200);
    if (this.options.udp ?? true) {
      const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      udp.on('message', async (msg, rinfo) => {
        // UDP cannot push back: past the high-water mark (or a full local backlog) it drops.
        const full =
          this.pendingRecords() >= MAX_PENDING_RECORDS ||
          (await this.options.producer.overHighWater().catch(() => false));
        if (full) {
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
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.udp?.close();
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
    await this.flush();
  }
}
