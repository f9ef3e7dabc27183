/**
 * RELP source: the Reliable Event Logging Protocol that rsyslog (omrelp), syslog-ng and Logstash
 * speak when a log must not be lost in transit. Plain syslog over TCP cannot say "received";
 * RELP can, and this source says it only once a message is durably in the Redis queue.
 *
 * Wire format (librelp): every frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.
 * - client `open` (offers) → `rsp` "200 OK" with our offers (relp_version, commands=syslog);
 * - client `syslog` (one message) → `rsp` "200 OK", sent after the batch holding the message
 *   was added to the queue. A client keeps unacknowledged messages and sends them again after
 *   a reconnect, so a crash of this process loses nothing; the resent copies get the same
 *   event id (a hash of source and line), so Elasticsearch stores them once.
 * - client `close` → empty `rsp`, then the connection ends; on shutdown we send `serverclose`.
 *
 * Optionally over TLS from the first byte, as librelp does it (rsyslog omrelp `tls="on"`).
 *
 * Back-pressure: above the queue's high-water mark the socket is paused. Unacknowledged
 * messages then fill the client's window (128 by default in rsyslog) and it waits.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { SourceConfig } from '../../core/config/schema.ts';
import { batchHeader } from '../pipeline/batch.ts';
import type { IngestProducer } from '../pipeline/producer.ts';
import { ReadPause } from './read-pause.ts';
import { parseSyslog } from './syslog.ts';
import type { Source, SourceStatusSnapshot } from './types.ts';

export interface RelpFrame {
  txnr: number;
  command: string;
  data: Buffer;
}

/** Largest DATALEN accepted; librelp's own default maximum message size is 128 KiB. */
const DEFAULT_MAX_DATA = 1024 * 1024;

/**
 * Incremental RELP frame parser: push bytes, get complete frames. A malformed header is a
 * protocol error: the caller answers it and drops the connection (the stream cannot be
 * resynchronised, and the client will resend what it has not had acknowledged).
 */
export class RelpFramer {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly maxData: number;

  constructor(maxData = DEFAULT_MAX_DATA) {
    this.maxData = maxData;
  }

  push(chunk: Buffer): { frames: RelpFrame[]; error?: string } {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: RelpFrame[] = [];
    for (;;) {
      if (this.buffer.length === 0) return { frames };
      // The header is at most 9 + 1 + 32 + 1 + 9 characters and a separator.
      const head = this.buffer.subarray(0, 54).toString('latin1');
      const m = /^(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})/.exec(head);
      if (!m) {
        if (!/^\d{0,9}(?: [A-Za-z]{0,32}(?: \d{0,9})?)?$/.test(head))
          return { frames, error: `malformed RELP frame header ${JSON.stringify(head.slice(0, 40))}` };
        return { frames }; // a header cut short by the packet boundary
      }
      const txnr = Number(m[1]);
      const length = Number(m[3]);
      let at = m[0].length;
      if (this.buffer.length <= at) return { frames };
      const next = this.buffer[at];
      if (next !== 0x20 && !(next === 0x0a && length === 0))
        return { frames, error: `malformed RELP frame header ${JSON.stringify(head.slice(0, 40))}` };
      if (length > this.maxData) return { frames, error: `RELP frame of ${length} bytes is too large` };
      if (next === 0x20) at += 1;
      // DATA, then the LF trailer (written even when DATALEN is 0)
      if (this.buffer.length < at + length + 1) return { frames };
      if (this.buffer[at + length] !== 0x0a) return { frames, error: 'RELP frame without its LF trailer' };
      frames.push({ txnr, command: m[2]!, data: this.buffer.subarray(at, at + length) });
      this.buffer = this.buffer.subarray(at + length + 1);
    }
  }
}

/** One response frame: `TXNR rsp DATALEN DATA LF`. */
export function relpResponse(txnr: number, data: string): Buffer {
  const body = Buffer.from(data, 'utf8');
  return Buffer.concat([
    Buffer.from(body.length > 0 ? `${txnr} rsp ${body.length} ` : `${txnr} rsp 0`, 'latin1'),
    body,
    Buffer.from('\n'),
  ]);
}

const SOFTWARE = 'gatewatch,0.1.0,https://github.com/gatewatch/gatewatch';

/** Unacknowledged messages per connection before reading pauses (rsyslog's window is 128). */
const MAX_UNACKED = 10_000;

export interface RelpSourceOptions {
  source: SourceConfig;
  producer: IngestProducer;
  host: string;
  port: number;
  /** Enqueue a connection's buffered messages at least this often (ms). */
  flushMs?: number;
  maxData?: number;
  /** Serve RELP over TLS (rsyslog omrelp `tls="on"`): certificate and key, as for syslog TLS. */
  tls?: TlsOptions;
  onError?: (err: Error) => void;
}

interface Session {
  socket: Socket;
  peer: string;
  id: number;
  open: boolean;
  /** Messages received and not yet enqueued: syslog MSG part and the txnr to acknowledge. */
  pending: { record: string | undefined; txnr: number }[];
  /** The enqueue in progress, so flushes of one connection stay in order. */
  flushing: Promise<void>;
  /** Whether an enqueue is under way. */
  inFlight: boolean;
  pause: ReadPause;
  /** Messages received and not yet acknowledged (pending and in flight). */
  unacked: number;
}

export class RelpSource implements Source {
  private readonly options: RelpSourceOptions;
  private server?: Server;
  private readonly sessions = new Set<Session>();
  private timer?: NodeJS.Timeout;
  private connections = 0;
  received = 0;
  port?: number;

  constructor(options: RelpSourceOptions) {
    this.options = options;
  }

  get name(): string {
    return this.options.source.name;
  }

  status(): SourceStatusSnapshot {
    return { name: this.name, records: this.received, dropped: 0 };
  }

  async start(): Promise<void> {
    const tls = this.options.tls;
    const server =
      tls === undefined
        ? createServer((socket) => this.handle(socket))
        : createTlsServer(tls, (socket) => this.handle(socket));
    // A failed TLS handshake is the client's problem: report it, keep serving.
    server.on('tlsClientError', (err) => this.options.onError?.(err));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    this.timer = setInterval(() => {
      for (const s of this.sessions) if (s.pending.length > 0) this.flush(s);
    }, this.options.flushMs ?? 200);
  }

  /**
   * Stop accepting, enqueue and acknowledge what was received, tell clients the server is
   * closing (`serverclose`), and end the connections.
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const closed = new Promise<void>((resolve) => {
      if (this.server === undefined) resolve();
      else this.server.close(() => resolve());
    });
    await Promise.all(
      [...this.sessions].map(async (s) => {
        this.flush(s);
        await s.flushing;
        if (!s.socket.destroyed) s.socket.end('0 serverclose 0\n');
      }),
    );
    for (const s of this.sessions) s.socket.destroy();
    await closed;
  }

  private handle(socket: Socket): void {
    const session: Session = {
      socket,
      peer: (socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
      id: this.connections++,
      open: false,
      pending: [],
      flushing: Promise.resolve(),
      inFlight: false,
      pause: new ReadPause(socket, () => this.mustPause(session), 100),
      unacked: 0,
    };
    this.sessions.add(session);
    // Acknowledgements are small writes the client waits for: Nagle's algorithm would hold
    // each one back for the client's delayed ACK (tens of ms), throttling the whole stream.
    socket.setNoDelay(true);
    const framer = new RelpFramer(this.options.maxData);
    socket.on('data', (chunk: Buffer) => {
      const { frames, error } = framer.push(chunk);
      for (const f of frames) this.onFrame(session, f);
      if (error !== undefined) {
        // Whatever was received before the bad frame is still enqueued and acknowledged.
        this.options.onError?.(new Error(`${this.name}: ${session.peer}: ${error}`));
        this.flush(session);
        void session.flushing.then(() => socket.end(`0 serverclose 0\n`));
        socket.pause();
        return;
      }
      // Flush at once unless a flush is in flight; then what arrives meanwhile is flushed as
      // one batch when it completes. Waiting for a full batch would stall: a RELP client stops
      // at its window of unacknowledged messages (128 in rsyslog), usually far below a batch.
      if (!session.inFlight || session.pending.length >= this.options.producer.batchSize) this.flush(session);
      // A client that ignores its window is not buffered without bound.
      if (session.unacked >= MAX_UNACKED) void session.pause.check();
    });
    socket.on('error', () => undefined);
    // Messages not yet acknowledged are dropped with the connection: the client resends them.
    socket.on('close', () => this.sessions.delete(session));
  }

  private onFrame(s: Session, f: RelpFrame): void {
    switch (f.command) {
      case 'open': {
        s.open = true;
        const offers = f.data.toString('utf8');
        const version = /relp_version=(\d+)/.exec(offers)?.[1] ?? '0';
        s.socket.write(
          relpResponse(f.txnr, `200 OK\nrelp_version=${version}\nrelp_software=${SOFTWARE}\ncommands=syslog`),
        );
        return;
      }
      case 'syslog': {
        if (!s.open) {
          s.socket.write(relpResponse(f.txnr, '500 session not opened'));
          return;
        }
        const msg = parseSyslog(f.data.toString('utf8')).msg;
        this.received++;
        s.unacked++;
        // Empty messages are acknowledged in order with the rest but not enqueued.
        s.pending.push({ record: msg.length > 0 ? msg : undefined, txnr: f.txnr });
        return;
      }
      case 'close':
        this.flush(s);
        void s.flushing.then(() => {
          if (!s.socket.destroyed) s.socket.end(relpResponse(f.txnr, ''));
        });
        return;
      default:
        s.socket.write(relpResponse(f.txnr, `500 command ${f.command} not supported`));
    }
  }

  /**
   * Enqueue the session's pending messages as one batch, then acknowledge each. When the
   * enqueue fails the connection is dropped without acknowledging: the client sends them again.
   */
  private flush(s: Session): void {
    if (s.pending.length === 0) return;
    const batch = s.pending;
    s.pending = [];
    s.inFlight = true;
    s.flushing = s.flushing.then(async () => {
      try {
        await this.enqueueAndAck(s, batch);
      } finally {
        s.inFlight = false;
      }
      // what arrived while this batch was being queued
      if (s.pending.length > 0 && !s.socket.destroyed) this.flush(s);
    });
  }

  private async enqueueAndAck(s: Session, batch: Session['pending']): Promise<void> {
    if (s.socket.destroyed) return;
    const records = batch.flatMap((p) => (p.record === undefined ? [] : [p.record]));
    try {
      if (records.length > 0) {
        await this.options.producer.enqueue(
          batchHeader(this.options.source, s.peer),
          records,
          `relp:${process.pid}:${s.id}:${batch[0]!.txnr}:${Date.now()}`,
        );
      }
    } catch (err) {
      this.options.onError?.(err as Error);
      s.socket.destroy();
      return;
    }
    if (s.socket.destroyed) return;
    s.socket.write(Buffer.concat(batch.map((p) => relpResponse(p.txnr, '200 OK'))));
    s.unacked -= batch.length;
    await s.pause.check();
  }

  /** Whether to stop reading: queue above its high-water mark (or unreachable), or a backlog here. */
  private async mustPause(s: Session): Promise<boolean> {
    if (s.unacked >= MAX_UNACKED) return true;
    return this.options.producer.overHighWater().catch(() => true);
  }
}
