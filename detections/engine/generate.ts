/**
 * Seeded synthetic API traffic for engine tests and benchmarks: background requests plus
 * bursts that the built-in pack should notice (credential stuffing, account takeover,
 * enumeration, scanners, key misuse, WAF bypass, 5xx spikes). Deterministic for a seed.
 */

import { setField } from '../../core/schema/catalogue.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenerateOptions {
  seed?: number;
  start: number;
  spanMs: number;
  /** Share of attack events (default 0.05). */
  attackShare?: number;
  /**
   * Fixed numbers of client IPs, users and API keys (default: growing with n — n/50, n/100,
   * n/500). Fixed, more events mean more events per group, as in a deployment whose traffic grows.
   */
  population?: { ips?: number; users?: number; keys?: number };
}

const ROUTES = [
  '/login',
  '/api/v1/login',
  '/users/{id}',
  '/users/{id}/orders/{id}',
  '/products',
  '/search',
  '/oauth/token',
  '/password/reset',
  '/health',
];
const UAS = ['Mozilla/5.0', 'okhttp/4.9', 'python-requests/2.31', 'curl/8.0', 'sqlmap/1.7', 'Nikto/2.5'];
const COUNTRIES = ['US', 'DE', 'FR', 'BR', 'IN', 'JP'];

export function* generateEvents(n: number, opts: GenerateOptions): Generator<GatewatchEvent> {
  const r = prng(opts.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const attackShare = opts.attackShare ?? 0.05;
  const nIps = opts.population?.ips ?? Math.max(20, Math.floor(n / 50));
  const ip = (i: number) =>
    i % 7 === 0
      ? `2001:db8::${(i % 65535).toString(16)}`
      : i % 11 === 0
        ? `10.0.${(i >> 8) & 255}.${i & 255}`
        : `198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const users = opts.population?.users ?? Math.max(10, Math.floor(n / 100));
  const keys = opts.population?.keys ?? Math.max(5, Math.floor(n / 500));
  let burst: { kind: number; left: number; ip: string; user: string; key: string; t: number } | undefined;
  for (let i = 0; i < n; i++) {
    let t = opts.start + Math.floor((i / n) * opts.spanMs + r() * 1000);
    const e: Record<string, unknown> = {};
    const id = `${opts.seed ?? 1}-${i.toString(16).padStart(8, '0')}`;
    let srcIp = ip(Math.floor(r() * nIps));
    let user = `user${Math.floor(r() * users)}`;
    const keyIdx = Math.floor(r() * keys);
    let key: string | undefined = r() < 0.6 ? `key${keyIdx}` : undefined;
    // a key is used from its owner's address, sometimes from a second one
    if (key) srcIp = ip((keyIdx * 13 + (r() < 0.05 ? 1 : 0)) % nIps);
    let route = pick(ROUTES);
    let method = r() < 0.7 ? 'GET' : 'POST';
    let status = r() < 0.9 ? 200 : pick([201, 204, 301, 400, 401, 403, 404, 500, 502, 503]);
    let ua = pick(UAS.slice(0, 4));
    let waf: string | undefined = r() < 0.1 ? pick(['allow', 'count', 'block']) : undefined;
    if (!burst && r() < attackShare / 50) {
      burst = {
        kind: Math.floor(r() * 7),
        left: 40 + Math.floor(r() * 80),
        ip: ip(Math.floor(r() * nIps)),
        user,
        key: `key${Math.floor(r() * keys)}`,
        t,
      };
    }
    if (burst) {
      burst.left--;
      t = burst.t + (40 - burst.left) * 2000;
      switch (burst.kind) {
        case 0: // stuffing from one IP
          srcIp = burst.ip;
          route = '/login';
          method = 'POST';
          status = r() < 0.95 ? 401 : 200;
          break;
        case 1: // ATO: failures then success on one account
          user = burst.user;
          route = '/api/v1/login';
          method = 'POST';
          status = burst.left > 0 ? 401 : 200;
          break;
        case 2: // enumeration
          srcIp = burst.ip;
          status = 404;
          route = '/users/{id}';
          break;
        case 3: // scanner
          srcIp = burst.ip;
          ua = pick(UAS.slice(4));
          break;
        case 4: // one key from many IPs
          key = burst.key;
          status = 200;
          break;
        case 5: // WAF blocks then bypass
          srcIp = burst.ip;
          route = '/search';
          waf = burst.left % 5 === 0 ? 'allow' : 'block';
          status = waf === 'allow' ? 200 : 403;
          break;
        case 6: // a route failing: 5xx for most of its answers
          route = '/products';
          status = burst.left % 4 === 0 ? 200 : 503;
          break;
      }
      if (burst.left <= 0) burst = undefined;
    }
    e['@timestamp'] = new Date(t).toISOString();
    e.event = { id, outcome: status >= 400 ? 'failure' : 'success', action: 'request', dataset: 'synthetic' };
    setField(e, 'source.ip', srcIp);
    setField(e, 'source.as.number', 64500 + (srcIp.length % 13));
    setField(e, 'source.geo.country_iso_code', COUNTRIES[srcIp.length % COUNTRIES.length]);
    if (r() < 0.8) setField(e, 'user.name', user);
    if (r() < 0.5) setField(e, 'user.id', user.replace('user', 'u'));
    if (key) setField(e, 'gatewatch.api_key.fingerprint', key);
    if (key && r() < 0.05) setField(e, 'gatewatch.api_key.location', 'query');
    setField(e, 'gatewatch.route', route);
    const path = route.replaceAll('{id}', String(Math.floor(r() * 400)));
    setField(e, 'url.path', path);
    let query: string | undefined;
    if (r() < 0.2) query = r() < 0.3 ? `a=1&token=${i}` : `page=${i % 10}`;
    if (query !== undefined) setField(e, 'url.query', query);
    // What ingest derives (no random draws: the sequence above stays as it was): the client's
    // network, the URL as received, the object a templated route names, authentication.
    setField(e, 'url.original', query === undefined ? path : `${path}?${query}`);
    if (route.includes('{id}')) setField(e, 'gatewatch.resource', path);
    setField(
      e,
      'gatewatch.network.id',
      srcIp.includes(':')
        ? `${srcIp.split(':').slice(0, 3).join(':')}::/48`
        : `${srcIp.split('.').slice(0, 3).join('.')}.0/24`,
    );
    const authRoute = route.endsWith('login') || route === '/oauth/token' || route === '/password/reset';
    if (authRoute || key !== undefined || status === 401) {
      setField(e, 'gatewatch.auth.attempt', true);
      setField(e, 'gatewatch.auth.endpoint', authRoute);
      setField(
        e,
        'gatewatch.auth.outcome',
        status === 401 || status === 403 ? 'failure' : status < 400 ? 'success' : 'unknown',
      );
    }
    setField(e, 'http.request.method', method);
    setField(e, 'http.response.status_code', status);
    setField(e, 'http.response.bytes', Math.floor(r() * 5000));
    setField(e, 'gatewatch.upstream_latency_ms', Math.floor(r() * 400) / 2);
    setField(e, 'user_agent.original', ua);
    if (waf) setField(e, 'gatewatch.waf.action', waf);
    if (r() < 0.1) setField(e, 'tags', ['a', pick(['b', 'c'])]);
    yield e as GatewatchEvent;
  }
}
