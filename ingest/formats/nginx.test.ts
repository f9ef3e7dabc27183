import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

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
          gatewatch: {
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
            auth: {
              endpoint: true,
              attempt: true,
              outcome: 'failure',
            },
            network: {
              id: '10.0.0.0/24',
              kind: 'prefix',
            },
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
            id: '96mlukIYC6ht0kmS9MMChV',
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
            api_key: {
              id: 'key_live_42',
              fingerprint: '01e0ae08a1c0b8fb29b215c638b50d59',
              source: 'gateway',
              name: 'key_live_42',
              location: 'query',
            },
            extra: {
              upstream_status: '200',
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
