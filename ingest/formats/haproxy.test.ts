import { describe, expect, it } from 'vitest';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { normalizeLine } from '../transforms/normalize.ts';
import { haproxyHttp } from './haproxy.ts';
import { createSourceParser, parseLine } from './index.ts';
import { normalizeSample, one, sampleLines, testContext } from './testing/helpers.ts';

// samples/formats/haproxy.http.log: lines 0-6 are from a live-fire range run (HAProxy 2.6.12,
// `option httplog`, captures Host, User-Agent, X-API-Key, Authorization); lines 7-13 from HAProxy
// 2.6.12 logging to stdout as rfc3164, rfc5424 and short syslog (line 7 as rsyslog writes
// /var/log/haproxy.log), with a deny rule, a down server, a malformed request and no captures.
const lines = sampleLines('haproxy.http');

function ev(line: string, config = {}): GatewatchEvent {
  return one(testContext({ format: 'haproxy.http', ...config }), line, normalizeLine);
}

describe('HAProxy HTTP log: exact output', () => {
  it('a partner call with its key in a captured X-API-Key header', () => {
    expect(normalizeSample('haproxy.http', 1, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            outcome: 'success',
            module: 'haproxy',
            duration: 2000000,
            dataset: 'haproxy.http',
            original:
              '127.200.0.26:34777 [07/Dec/2026:13:09:36.758] fe_api be_api/api1 0/0/0/2/2 200 1596 - - ---- 9/9/0/0/0 0/0 {127.0.0.1:46329|python-requests/2.31.0|[REDACTED]|} "GET /api/products?page=1 HTTP/1.1"',
            id: 'DgsqeJ_29zHdOO70hICn-k',
          },
          observer: {
            vendor: 'HAProxy Technologies',
            product: 'HAProxy',
            type: 'proxy',
            name: 'fe_api',
          },
          source: {
            ip: '127.200.0.26',
            address: '127.200.0.26',
            port: 34777,
          },
          http: {
            version: '1.1',
            request: {
              method: 'GET',
            },
            response: {
              status_code: 200,
              bytes: 1596,
            },
          },
          '@timestamp': '2026-12-07T13:09:36.758Z',
          url: {
            original: '/api/products?page=1',
            path: '/api/products',
            query: 'page=1',
            domain: '127.0.0.1',
          },
          service: {
            name: 'be_api',
          },
          gatewatch: {
            upstream_latency_ms: 2,
            upstream: {
              status_code: 200,
            },
            extra: {
              frontend: 'fe_api',
              backend: 'be_api',
              server: 'api1',
              termination_state: '----',
              timers: '0/0/0/2/2',
            },
            source: {
              format: 'haproxy.http',
              name: 'test',
            },
            client: {
              peer_ip: '127.200.0.26',
            },
            api_key: {
              fingerprint: '8765c285fe70c9cf1506697bd9dbd30c',
              source: 'header',
              location: 'header',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'success',
            },
            query_params: ['page'],
            redacted: ['request_capture_2'],
            route: '/api/products',
            resource: '/api/products?page=1',
            network: {
              id: '127.200.0.0/24',
              kind: 'prefix',
            },
          },
          user_agent: {
            original: 'python-requests/2.31.0',
            name: 'python-requests',
            version: '2.31.0',
          },
        },
      ],
      failures: [],
    });
  });
});

describe('HAProxy HTTP log: fields that matter', () => {
  it('reads a basic-auth capture as the user name and never keeps the credentials', () => {
    const e = ev(lines[3]!);
    expect(e.user?.name).toBe('jweber');
    expect(e.gatewatch?.auth).toEqual({ present: true, scheme: 'basic', attempt: true, outcome: 'failure' });
    expect(e.gatewatch?.redacted).toEqual(['authorization']);
    expect(e.event?.original).not.toContain('andlYmVyOmFkbWlu');
    expect(e.user_agent?.original).toBe('Mozilla/4.0 (Hydra)');
    expect(e.http?.response?.status_code).toBe(401);
    expect(e.gatewatch?.upstream?.status_code).toBe(401);
  });

  it('reads a bearer token capture: JWT subject, fingerprint, token scrubbed', () => {
    const e = ev(lines[4]!);
    expect(e.gatewatch?.jwt?.sub).toBe('viktor.berg');
    expect(e.gatewatch?.auth?.scheme).toBe('bearer');
    expect(e.event?.original).not.toMatch(/eyJ[\w-]+\.eyJ/);
    expect(e.user_agent?.name).toBe('Chrome');
  });

  it('redacts a key sent in the query string, in the URL and the original line', () => {
    const e = ev(lines[2]!);
    expect(e.gatewatch?.api_key?.location).toBe('query');
    expect(e.url?.query).toBe('page=5&api_key=[REDACTED]');
    expect(e.event?.original).not.toContain('k-live-');
    expect(e.user_agent?.original).toBe('node-fetch/1.0 (+https://github.com/bitinn/node-fetch)');
  });

  it('sets the upstream status only when a server answered', () => {
    expect(ev(lines[5]!).gatewatch?.upstream?.status_code).toBe(503); // the API's own 503
    expect(ev(lines[8]!).gatewatch?.upstream).toBeUndefined(); // http-request deny, <NOSRV>, PR--
    expect(ev(lines[9]!).gatewatch?.upstream).toBeUndefined(); // server down: HAProxy's 503, SC--
    expect(ev(lines[10]!).gatewatch?.upstream).toBeUndefined(); // <BADREQ>
    expect(ev(lines[12]!).gatewatch?.upstream?.status_code).toBe(200);
  });

  it('reads the same request behind every syslog header HAProxy and rsyslog write', () => {
    const raw = lines[12]!.replace(/^<6>/, '');
    const variants = [
      raw,
      lines[7]!,
      lines[12]!,
      `<134>Dec  7 13:11:23 localhost haproxy[24725]: ${raw}`,
      `<134>1 2026-12-07T13:11:23.555212+00:00 - haproxy 24725 - - ${raw}`,
    ];
    const pick = (e: GatewatchEvent) => ({
      ts: e['@timestamp'],
      ip: e.source?.ip,
      port: e.source?.port,
      method: e.http?.request?.method,
      path: e.url?.path,
      status: e.http?.response?.status_code,
      bytes: e.http?.response?.bytes,
      duration: e.event?.duration,
      server: e.gatewatch?.extra?.server,
    });
    const want = {
      ts: '2026-12-07T13:11:23.546Z',
      ip: '127.0.0.1',
      port: 37460,
      method: 'GET',
      path: '/',
      status: 200,
      bytes: 454,
      duration: 8_000_000,
      server: 's1',
    };
    for (const v of variants) expect(pick(ev(v)), v).toEqual(want);
  });

  it('reads a malformed request: status, no method, the marker kept', () => {
    const e = ev(lines[10]!);
    expect(e.http?.response?.status_code).toBe(400);
    expect(e.http?.request).toBeUndefined();
    expect(e.gatewatch?.extra?.request).toBe('<BADREQ>');
    expect(e.event?.duration).toBe(0);
  });

  it('recognises X-Forwarded-For and keeps response captures, decodes #XX escapes', () => {
    const e = ev(lines[9]!);
    expect(e.gatewatch?.client?.forwarded_for).toBe('203.0.113.7, 10.0.0.2');
    expect(e.user_agent?.name).toBe('Firefox');
    const quoted = lines[1]!
      .replace('"GET /api/products?page=1 HTTP/1.1"', '"GET /api/search?q=#22shoes#22 HTTP/1.1"')
      .replace('python-requests/2.31.0', 'agent#7Cwith#7Bbraces#7D');
    const q = ev(quoted);
    expect(q.url?.query).toBe('q="shoes"');
    expect(q.gatewatch?.extra?.request_capture_1).toBe('agent|with{braces}');
  });

  it('names captures from the source field map when one is configured', () => {
    const fieldMap = {
      'capture.request.0': '@header:host',
      'capture.request.1': 'user_agent.original',
      'capture.request.2': '@header:x-api-key',
      'capture.request.3': '@header:authorization',
    };
    const e = ev(lines[1]!, { fieldMap });
    expect(e.gatewatch?.redacted).toEqual(['x-api-key']);
    expect(e.gatewatch?.api_key?.location).toBe('header');
    expect(e.user_agent?.original).toBe('python-requests/2.31.0');
    expect(e.url?.domain).toBe('127.0.0.1');
  });

  it("skips HAProxy's own notices and explains lines that are not HTTP logs", () => {
    const sp = createSourceParser({ name: 's' });
    for (const notice of [
      'Proxy fe_api started.',
      '<133>Dec  7 13:11:23 localhost haproxy[24725]: Server be_api/api1 is DOWN, reason: Layer4 connection problem',
      'Stopping frontend fe_api in 0 ms.',
    ]) {
      expect(parseLine(sp, notice, 0)).toMatchObject({ ok: false, skip: true, format: 'haproxy.http' });
    }
    const tcp = '127.0.0.1:41000 [07/Dec/2026:13:11:23.546] fe_tcp be_tcp/s1 1/0/5 212 -- 1/1/0/0/0 0/0';
    const r = haproxyHttp.parse(tcp, { source: { name: 's' }, state: new Map(), receivedAt: 0 });
    expect(r).toEqual({ ok: false, reason: 'haproxy: not an HTTP log line (option httplog)' });
  });

  it('is auto-detected, and other formats do not take its lines', () => {
    const ctx = testContext();
    for (const line of lines) {
      const r = normalizeLine(line, ctx);
      expect(r.ok && r.events[0]?.event?.dataset, line).toBe('haproxy.http');
    }
    expect(
      haproxyHttp.detect('127.0.0.1 - - [07/Dec/2026:13:11:23 +0000] "GET / HTTP/1.1" 200 1 "-" "curl"'),
    ).toBe(0);
  });
});
