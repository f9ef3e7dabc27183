import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample, one, sampleLines, testContext } from './testing/helpers.ts';
import { upstreamStatus } from './util.ts';

describe('NGINX format: exact output', () => {
  it('nginx.access sample line 1: exact normalised event', () => {
    expect(normalizeSample('nginx.access', 1, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            outcome: 'failure',
            module: 'nginx',
            dataset: 'nginx.access',
            original:
              '10.0.0.5 - alice [05/Jan/2024:10:00:01 +0100] "POST /api/v1/login HTTP/1.1" 401 64 "-" "python-requests/2.31.0" "198.51.100.7, 10.0.0.5"',
            id: 'Y8EjCcyF7cFiO1Kv2g_3AW',
          },
          observer: {
            vendor: 'F5',
            product: 'NGINX',
            type: 'proxy',
          },
          source: {
            ip: '10.0.0.5',
            address: '10.0.0.5',
          },
          user: {
            name: 'alice',
          },
          gatewatch: {
            auth: {
              present: true,
              scheme: 'basic',
              endpoint: true,
              attempt: true,
              outcome: 'failure',
            },
            source: {
              format: 'nginx.access',
              name: 'test',
            },
            client: {
              peer_ip: '10.0.0.5',
              forwarded_for: '198.51.100.7, 10.0.0.5',
            },
            route: '/api/v1/login',
            resource: '/api/v1/login',
            network: {
              id: '10.0.0.0/24',
              kind: 'prefix',
            },
          },
          http: {
            version: '1.1',
            request: {
              method: 'POST',
            },
            response: {
              status_code: 401,
              bytes: 64,
            },
          },
          user_agent: {
            original: 'python-requests/2.31.0',
            name: 'python-requests',
            version: '2.31.0',
          },
          '@timestamp': '2024-01-05T09:00:01.000Z',
          url: {
            original: '/api/v1/login',
            path: '/api/v1/login',
          },
        },
      ],
      failures: [],
    });
  });

  it('nginx.ingress sample line 1: exact normalised event', () => {
    expect(normalizeSample('nginx.ingress', 1, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            outcome: 'failure',
            module: 'nginx',
            duration: 3005000000,
            dataset: 'nginx.ingress',
            original:
              '10.244.0.1 - - [05/Jan/2024:10:00:01 +0000] "POST /api/v2/auth/token HTTP/1.1" 502 150 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36" 488 3.005 [auth-svc-80] [] 10.244.2.3:80, 10.244.2.4:80 0, 150 3.001, 0.004 502, 502 a1b2c3d4e5f60718293a4b5c6d7e8f90',
            id: 'B1hY-aeu3S7Q9JnFf0ygLL',
          },
          observer: {
            vendor: 'Kubernetes',
            product: 'ingress-nginx',
            type: 'proxy',
          },
          source: {
            ip: '10.244.0.1',
            address: '10.244.0.1',
          },
          http: {
            version: '1.1',
            request: {
              method: 'POST',
              bytes: 488,
              id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
            },
            response: {
              status_code: 502,
              bytes: 150,
            },
          },
          user_agent: {
            original:
              'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
            name: 'Chrome',
            version: '120.0.0.0',
            os: {
              name: 'Windows',
              version: '10',
            },
          },
          '@timestamp': '2024-01-05T10:00:01.000Z',
          url: {
            original: '/api/v2/auth/token',
            path: '/api/v2/auth/token',
          },
          service: {
            name: 'auth-svc-80',
          },
          gatewatch: {
            upstream_latency_ms: 3001,
            extra: {
              upstream_addr: '10.244.2.3:80, 10.244.2.4:80',
              upstream_response_length: '0, 150',
              upstream_status: '502, 502',
            },
            upstream: {
              status_code: 502,
            },
            source: {
              format: 'nginx.ingress',
              name: 'test',
            },
            client: {
              peer_ip: '10.244.0.1',
            },
            route: '/api/v2/auth/token',
            resource: '/api/v2/auth/token',
            auth: {
              endpoint: true,
              attempt: true,
              outcome: 'unknown',
            },
            network: {
              id: '10.244.0.0/24',
              kind: 'prefix',
            },
          },
        },
      ],
      failures: [],
    });
  });

  it('nginx.json sample line 0: exact normalised event', () => {
    expect(normalizeSample('nginx.json', 0, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            module: 'nginx',
            duration: 52000000,
            outcome: 'success',
            dataset: 'nginx.json',
            original:
              '{"time":"2024-01-05T10:00:00+00:00","remote_addr":"10.0.0.5","xff":"203.0.113.9, 10.0.0.5","request_id":"7f3c1e2a9b8d4c5e6f708192a3b4c5d6","method":"GET","host":"api.example.com","uri":"/v1/users/1234/orders","args":"page=1&access_token=[REDACTED]","status":200,"body_bytes_sent":2048,"request_length":412,"request_time":0.052,"upstream_status":"200","upstream_response_time":"0.050","ua":"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36","ssl_protocol":"TLSv1.3","ssl_cipher":"TLS_AES_256_GCM_SHA384","api_key_id":"key_live_42"}',
            id: 'bDTFfTOfoLQfPLF-zfxi00',
          },
          observer: {
            vendor: 'F5',
            product: 'NGINX',
            type: 'proxy',
          },
          source: {
            ip: '10.0.0.5',
            address: '10.0.0.5',
          },
          http: {
            request: {
              method: 'GET',
              bytes: 412,
              id: '7f3c1e2a9b8d4c5e6f708192a3b4c5d6',
            },
            response: {
              status_code: 200,
              bytes: 2048,
            },
          },
          url: {
            domain: 'api.example.com',
            original: '/v1/users/1234/orders?page=1&access_token=[REDACTED]',
            path: '/v1/users/1234/orders',
            query: 'page=1&access_token=[REDACTED]',
          },
          gatewatch: {
            upstream_latency_ms: 50,
            upstream: {
              status_code: 200,
            },
            api_key: {
              id: 'key_live_42',
              fingerprint: '01e0ae08a1c0b8fb29b215c638b50d59',
              source: 'gateway',
              name: 'key_live_42',
              location: 'query',
            },
            source: {
              format: 'nginx.json',
              name: 'test',
            },
            client: {
              peer_ip: '10.0.0.5',
              forwarded_for: '203.0.113.9, 10.0.0.5',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'success',
            },
            query_params: ['page', 'access_token'],
            redacted: ['access_token'],
            route: '/v1/users/{id}/orders',
            resource: '/v1/users/1234/orders?page=1',
            network: {
              id: '10.0.0.0/24',
              kind: 'prefix',
            },
          },
          user_agent: {
            original:
              'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36',
            name: 'Chrome',
            version: '120.0.6099.144',
            os: {
              name: 'Android',
              version: '14',
            },
            device: {
              name: 'Pixel 8',
            },
          },
          tls: {
            version: '1.3',
            cipher: 'TLS_AES_256_GCM_SHA384',
          },
          '@timestamp': '2024-01-05T10:00:00.000Z',
        },
      ],
      failures: [],
    });
  });
});

// samples/formats/nginx.json.log lines 3-7 and nginx.access.log lines 6-7 come from a live-fire
// range run (range/): nginx 1.22.1 with ModSecurity v3 and the CRS, the range's log_format.
describe('nginx.json: the key names real log_format templates use', () => {
  const json = sampleLines('nginx.json');
  const ev = (line: string) => one(testContext({ format: 'nginx.json' }), line, normalizeLine);

  it('takes the API key from an `x_api_key` column: fingerprinted, located, scrubbed', () => {
    const e = ev(json[5]!);
    expect(e.gatewatch?.api_key?.location).toBe('header');
    expect(e.gatewatch?.api_key?.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(e.gatewatch?.redacted).toEqual(['x-api-key']);
    expect(e.event?.original).not.toContain('k-live-');
    expect(e.gatewatch?.extra?.x_api_key).toBeUndefined();
  });

  it('maps upstream_status to gatewatch.upstream.status_code, absent when the WAF answered itself', () => {
    const blocked = ev(json[3]!);
    expect(blocked.http?.response?.status_code).toBe(403);
    expect(blocked.gatewatch?.upstream).toBeUndefined();
    expect(blocked.user_agent?.name).toBe('sqlmap');
    const app403 = ev(json[6]!);
    expect(app403.http?.response?.status_code).toBe(403);
    expect(app403.gatewatch?.upstream?.status_code).toBe(403);
    expect(app403.gatewatch?.extra?.upstream_status).toBeUndefined();
  });

  it('reads remote_user, request id, port, millisecond time and the forwarded-for column', () => {
    const spray = ev(json[4]!);
    expect(spray.user?.name).toBe('dferreira1');
    expect(spray.http?.request?.id).toBe('9ff36d1e5d0f554033d7f3b66eecd686');
    expect(spray.destination?.port).toBe(34033);
    expect(spray['@timestamp']).toBe('2026-12-07T13:09:11.755Z');
    expect(spray.http?.version).toBe('1.1');
    const ffuf = ev(json[6]!);
    expect(ffuf.source?.ip).toBe('127.66.5.10');
    expect(ffuf.gatewatch?.client?.forwarded_for).toBe('127.66.5.10');
  });

  it('redacts a key sent in request_uri', () => {
    const e = ev(json[7]!);
    expect(e.gatewatch?.api_key?.location).toBe('query');
    expect(e.url?.path).toBe('/api/users/136/orders');
    expect(e.url?.query).toBe('api_key=[REDACTED]');
    expect(e.event?.original).not.toContain('k-live-');
  });

  it('reads the other common spellings', () => {
    const line = JSON.stringify({
      time_local: '07/Dec/2026:13:09:11 +0000',
      remote_addr: '198.51.100.4',
      request: 'POST /v1/orders HTTP/1.1',
      status: '502',
      bytes_sent: 410,
      body_bytes_sent: 150,
      http_referrer: 'https://shop.example/cart',
      http_user_agent: 'okhttp/4.12.0',
      http_x_request_id: 'req-77',
      http_apikey: 'ak_live_0123456789abcdef',
      upstream_status: '504, 502',
      server_addr: '10.0.0.8',
      geoip_country_code: 'NL',
    });
    const e = ev(line);
    expect(e.http?.response).toEqual({ status_code: 502, bytes: 150 });
    expect(e.http?.request?.referrer).toBe('https://shop.example/cart');
    expect(e.http?.request?.id).toBe('req-77');
    expect(e.gatewatch?.upstream?.status_code).toBe(502);
    expect(e.gatewatch?.api_key?.location).toBe('header');
    expect(e.event?.original).not.toContain('ak_live_');
    expect(e.destination?.ip).toBe('10.0.0.8');
    expect(e.source?.geo?.country_iso_code).toBe('NL');
  });
});

describe("nginx.access: the range's combined log", () => {
  it('shows the basic-auth user nginx saw as $remote_user', () => {
    const line = sampleLines('nginx.access')[6]!;
    const e = one(testContext({ format: 'nginx.access' }), line, normalizeLine);
    expect(e.user?.name).toBe('dferreira1');
    expect(e.user_agent?.original).toBe('Mozilla/4.0 (Hydra)');
    expect(e.http?.response?.status_code).toBe(401);
    // Basic credentials were carried: a failed authentication on an ordinary GET route.
    expect(e.gatewatch?.auth).toEqual({ present: true, scheme: 'basic', attempt: true, outcome: 'failure' });
  });
});

describe('upstreamStatus', () => {
  it('takes the final answer of a retry or redirect list, nothing when no upstream answered', () => {
    expect(upstreamStatus('200')).toBe(200);
    expect(upstreamStatus(404)).toBe(404);
    expect(upstreamStatus('502, 200')).toBe(200);
    expect(upstreamStatus('502, 504 : 200')).toBe(200);
    expect(upstreamStatus('502 : -')).toBeUndefined();
    expect(upstreamStatus('')).toBeUndefined();
    expect(upstreamStatus('-')).toBeUndefined();
    expect(upstreamStatus('abc')).toBeUndefined();
    expect(upstreamStatus(0)).toBeUndefined();
  });
});
