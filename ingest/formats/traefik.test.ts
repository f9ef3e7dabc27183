import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('Traefik format: exact output', () => {
  it('traefik.access sample line 1: exact normalised event', () => {
    expect(normalizeSample('traefik.access', 1, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            outcome: 'failure',
            module: 'traefik',
            duration: 2100000,
            dataset: 'traefik.access',
            original:
              '{"ClientAddr":"[2001:db8::5]:40100","ClientHost":"2001:db8::5","ClientPort":"40100","DownstreamContentSize":19,"DownstreamStatus":401,"Duration":2100000,"OriginDuration":1900000,"OriginStatus":401,"RequestHost":"api.example.com","RequestMethod":"post","RequestPath":"/v1/auth/token","RequestProtocol":"HTTP/1.1","RequestScheme":"https","RouterName":"auth@file","ServiceName":"auth@file","StartUTC":"2024-01-05T10:00:01.5Z","TLSVersion":"1.2","TLSCipher":"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256","entryPointName":"websecure","request_User-Agent":"python-requests/2.31.0","request_Authorization":"[REDACTED]","level":"info","msg":"","time":"2024-01-05T10:00:01Z"}',
            id: 'La0m0LYRXdHEjMKy5DYfZ7',
          },
          observer: {
            vendor: 'Traefik Labs',
            product: 'Traefik',
            type: 'proxy',
            name: 'websecure',
          },
          source: {
            ip: '2001:db8::5',
            address: '2001:db8::5',
            port: 40100,
          },
          http: {
            version: '1.1',
            request: {
              method: 'POST',
            },
            response: {
              status_code: 401,
              bytes: 19,
            },
          },
          user_agent: {
            original: 'python-requests/2.31.0',
            name: 'python-requests',
            version: '2.31.0',
          },
          service: {
            name: 'auth@file',
          },
          tls: {
            version: '1.2',
            cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
          },
          gatewatch: {
            upstream_latency_ms: 1.9,
            extra: {
              RouterName: 'auth@file',
              OriginStatus: 401,
            },
            source: {
              format: 'traefik.access',
              name: 'test',
            },
            client: {
              peer_ip: '2001:db8::5',
            },
            api_key: {
              fingerprint: '94af7bcfac58af2906d42d734675450d',
              source: 'basic',
              name: 'alice',
              location: 'header',
            },
            auth: {
              present: true,
              scheme: 'basic',
              endpoint: true,
              attempt: true,
              outcome: 'failure',
            },
            redacted: ['authorization'],
            route: '/v1/auth/token',
            resource: '/v1/auth/token',
            network: {
              id: '2001:db8::/48',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:01.500Z',
          url: {
            original: '/v1/auth/token',
            path: '/v1/auth/token',
            domain: 'api.example.com',
            scheme: 'https',
          },
          user: {
            name: 'alice',
          },
        },
      ],
      failures: [],
    });
  });
});
