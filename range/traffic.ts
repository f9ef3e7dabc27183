/**
 * Loopback HTTP for the range's own clients (benign traffic and the scripted attacks): every
 * request leaves from a chosen 127.0.0.0/8 source address (`localAddress`) towards one of the
 * gateway lanes, with a bounded number in flight. Each request is also recorded into the
 * activities it belongs to: the driver writes ground truth from what was actually sent.
 */
import { Agent, request } from 'node:http';
import type { Lane, Ports } from './gateways.ts';

export interface Req {
  lane: Lane;
  /** Source address, in 127.0.0.0/8. */
  from: string;
  method?: string;
  /** Path and query, e.g. "/api/products?page=2". */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Keep-alive agent of the client (a browser, an SDK); default: a new connection. */
  agent?: Agent;
  /** Activities this request counts for (labels). */
  activity?: Activity | Activity[];
  /** Route (literal path or template) recorded in the activities; default: the path. */
  route?: string;
}

export interface Res {
  status: number;
  body: string;
}

/** What one labelled actor or attack actually did: the raw material of its label. */
export class Activity {
  readonly ips = new Set<string>();
  readonly users = new Set<string>();
  readonly apiKeys = new Set<string>();
  readonly routes = new Set<string>();
  readonly userAgents = new Set<string>();
  first = Number.POSITIVE_INFINITY;
  last = Number.NEGATIVE_INFINITY;
  requests = 0;
  readonly statuses = new Map<number, number>();

  readonly id: string;

  constructor(id: string) {
    this.id = id;
  }

  /** One request sent at `at` (ms). */
  sent(at: number, ip: string, route: string | undefined, ua: string | undefined): void {
    this.requests++;
    this.ips.add(ip);
    if (route !== undefined) this.routes.add(route);
    if (ua !== undefined) this.userAgents.add(ua);
    if (at < this.first) this.first = at;
    if (at > this.last) this.last = at;
  }

  answered(status: number): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }
}

const LOOPBACK = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function assertLoopback(ip: string): void {
  const m = LOOPBACK.exec(ip);
  if (!m || [m[1], m[2], m[3]].some((x) => Number(x) > 255))
    throw new Error(`not a 127.0.0.0/8 address: ${ip}`);
}

export class TrafficClient {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly agents = new Set<Agent>();
  sent = 0;
  failed = 0;
  readonly byLane = new Map<Lane, number>();

  private readonly ports: Ports;
  private readonly maxInFlight: number;
  /** Hard cap on requests this client sends over the whole run (a bound on every loop). */
  private readonly maxRequests: number;

  constructor(ports: Ports, maxInFlight = 48, maxRequests = 200_000) {
    this.ports = ports;
    this.maxInFlight = maxInFlight;
    this.maxRequests = maxRequests;
  }

  /** A keep-alive agent for one client (closed by close()). */
  agent(maxSockets = 2): Agent {
    const a = new Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
    this.agents.add(a);
    return a;
  }

  hasLane(lane: Lane): boolean {
    return this.ports.lanes[lane] !== undefined;
  }

  async send(r: Req): Promise<Res> {
    const port = this.ports.lanes[r.lane];
    if (port === undefined) return { status: -1, body: '' };
    if (this.sent >= this.maxRequests) return { status: -1, body: '' };
    assertLoopback(r.from);
    if (this.inFlight >= this.maxInFlight) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
    this.sent++;
    this.byLane.set(r.lane, (this.byLane.get(r.lane) ?? 0) + 1);
    const headers: Record<string, string> = { Host: `127.0.0.1:${port}`, ...r.headers };
    if (r.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(r.body));
    const acts = r.activity === undefined ? [] : Array.isArray(r.activity) ? r.activity : [r.activity];
    const route = r.route ?? r.path.split('?')[0];
    const ua = headers['User-Agent'];
    const at = Date.now();
    for (const a of acts) a.sent(at, r.from, route, ua);
    try {
      const res = await new Promise<Res>((resolve) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: r.method ?? 'GET',
            path: r.path,
            headers,
            localAddress: r.from,
            agent: r.agent ?? false,
            timeout: 15_000,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
            );
            res.on('error', () => resolve({ status: 0, body: '' }));
          },
        );
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', () => resolve({ status: 0, body: '' }));
        req.end(r.body);
      });
      if (res.status === 0) this.failed++;
      for (const a of acts) a.answered(res.status);
      return res;
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  close(): void {
    for (const a of this.agents) a.destroy();
    this.agents.clear();
  }
}
