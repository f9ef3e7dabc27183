import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('Envoy/Istio format: exact output', () => {
  it('envoy.access sample line 4: exact normalised event', () => {
    expect(normalizeSample('envoy.access', 4, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            outcome: 'failure',
            module: 'istio',
            duration: 1000000,
            dataset: 'envoy.access',
            original:
              '[2024-01-05T10:00:04.000Z] "GET /reviews/0?token=[REDACTED] HTTP/1.1" 503 UF upstream_reset_before_response_started{connection_failure} - "delayed_connect_error:_111" 0 91 1 - "-" "Go-http-client/1.1" "e3f2a1b0-c9d8-4765-b432-10fedcba9876" "reviews:9080" "10.244.0.30:9080" outbound|9080||reviews.default.svc.cluster.local - 10.96.10.20:9080 [2001:db8::9]:33000 - default',
            id: 'TloTDwVMycV48zDigV77hl',
          },
          observer: {
            vendor: 'Istio',
            product: 'Istio',
            type: 'proxy',
          },
          http: {
            version: '1.1',
            request: {
              id: 'e3f2a1b0-c9d8-4765-b432-10fedcba9876',
              method: 'GET',
              bytes: 0,
            },
            response: {
              status_code: 503,
              bytes: 91,
            },
          },
          user_agent: {
            original: 'Go-http-client/1.1',
            name: 'Go-http-client',
            version: '1.1',
          },
          gatewatch: {
            extra: {
              response_code_details: 'upstream_reset_before_response_started{connection_failure}',
              upstream_transport_failure_reason: 'delayed_connect_error:_111',
              upstream_cluster: 'outbound|9080||reviews.default.svc.cluster.local',
              route_name: 'default',
              response_flags: 'UF',
              upstream_host: '10.244.0.30:9080',
            },
            source: {
              format: 'envoy.access',
              name: 'test',
            },
            client: {
              peer_ip: '2001:db8::9',
            },
            api_key: {
              fingerprint: '798593350d6b68e6f2ed0bbc3627bb95',
              source: 'query',
              location: 'query',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'unknown',
            },
            query_params: ['token'],
            redacted: ['token'],
            route: '/reviews/{id}',
            resource: '/reviews/0',
            network: {
              id: '2001:db8::/48',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:04.000Z',
          url: {
            original: '/reviews/0?token=[REDACTED]',
            path: '/reviews/0',
            query: 'token=[REDACTED]',
            domain: 'reviews',
          },
          source: {
            ip: '2001:db8::9',
            address: '2001:db8::9',
            port: 33000,
          },
          destination: {
            ip: '10.96.10.20',
            port: 9080,
          },
        },
      ],
      failures: [],
    });
  });

  it('envoy.json sample line 1: exact normalised event', () => {
    expect(normalizeSample('envoy.json', 1, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            module: 'envoy',
            duration: 8000000,
            outcome: 'failure',
            dataset: 'envoy.json',
            original:
              '{"start_time":"2024-01-05T10:00:01.000Z","method":"POST","path":"/api/v2/auth/login","protocol":"HTTP/2","response_code":401,"response_flags":"-","response_code_details":"via_upstream","bytes_received":98,"bytes_sent":37,"duration":8,"upstream_service_time":"7","x_forwarded_for":"198.51.100.12, 10.244.0.1","user_agent":"python-requests/2.31.0","request_id":"5c6d7e8f-9012-4b3c-a4d5-e6f7a8b9c0d1","authority":"api.example.com:443","upstream_host":"10.244.1.7:8080","upstream_cluster":"outbound|8080||auth.default.svc.cluster.local","downstream_remote_address":"[2001:db8::44]:50000","route_name":"default"}',
            id: 'ITBTfEZegmUd_53_SjcVwg',
          },
          observer: {
            vendor: 'Envoy',
            product: 'Envoy',
            type: 'proxy',
          },
          http: {
            request: {
              method: 'POST',
              bytes: 98,
              id: '5c6d7e8f-9012-4b3c-a4d5-e6f7a8b9c0d1',
            },
            version: '2',
            response: {
              status_code: 401,
              bytes: 37,
            },
          },
          gatewatch: {
            upstream_latency_ms: 7,
            extra: {
              response_code_details: 'via_upstream',
              upstream_host: '10.244.1.7:8080',
              route_name: 'default',
            },
            source: {
              format: 'envoy.json',
              name: 'test',
            },
            client: {
              peer_ip: '2001:db8::44',
              forwarded_for: '198.51.100.12, 10.244.0.1',
            },
            route: '/api/v2/auth/login',
            resource: '/api/v2/auth/login',
            auth: {
              endpoint: true,
              attempt: true,
              outcome: 'failure',
            },
            network: {
              id: '2001:db8::/48',
              kind: 'prefix',
            },
          },
          user_agent: {
            original: 'python-requests/2.31.0',
            name: 'python-requests',
            version: '2.31.0',
          },
          url: {
            domain: 'api.example.com',
            original: '/api/v2/auth/login',
            path: '/api/v2/auth/login',
          },
          source: {
            address: '2001:db8::44',
            port: 50000,
            ip: '2001:db8::44',
          },
          service: {
            name: 'outbound|8080||auth.default.svc.cluster.local',
          },
          '@timestamp': '2024-01-05T10:00:01.000Z',
        },
      ],
      failures: [],
    });
  });
});
