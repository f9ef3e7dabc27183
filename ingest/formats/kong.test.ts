import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('Kong format: exact output', () => {
  it('kong.http_log sample line 0: exact normalised event', () => {
    expect(normalizeSample('kong.http_log', 0, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            outcome: 'success',
            module: 'kong',
            duration: 45000000,
            dataset: 'kong.http_log',
            original:
              '{"request":{"id":"3e0f9a12-7b1c-4d2e-9f3a-0c1b2d3e4f50","uri":"/orders/ord_29xK81pQ?expand=items&apikey=[REDACTED]","url":"https://api.example.com:8443/orders/ord_29xK81pQ?expand=items&apikey=[REDACTED]","querystring":{"expand":"items","apikey":"[REDACTED]"},"method":"GET","headers":{"host":"api.example.com","user-agent":"okhttp/4.12.0","x-forwarded-for":"198.51.100.7","accept":"application/json"},"size":312,"tls":{"version":"TLSv1.3","cipher":"TLS_AES_256_GCM_SHA384","client_verify":"NONE"}},"upstream_uri":"/orders/ord_29xK81pQ?expand=items","upstream_status":"200","response":{"status":200,"headers":{"content-type":"application/json","content-length":"934","x-kong-request-id":"3e0f9a12-7b1c-4d2e-9f3a-0c1b2d3e4f50"},"size":1203},"tries":[{"balancer_latency":0,"port":8080,"balancer_start":1704448800100,"ip":"10.0.3.4"}],"authenticated_entity":{"id":"4f2c1a7e-8b9d-4e3f-a1b2-c3d4e5f6a7b8"},"consumer":{"id":"c0ffee00-1111-2222-3333-444455556666","username":"mobile-app","custom_id":"app-42","created_at":1700000000},"route":{"id":"a1a1a1a1-b2b2-c3c3-d4d4-e5e5e5e5e5e5","name":"orders-route","paths":["/orders"]},"service":{"id":"5b5b5b5b-6c6c-7d7d-8e8e-9f9f9f9f9f9f","name":"orders-svc","host":"orders.internal","port":8080},"latencies":{"kong":3,"proxy":41,"request":45,"receive":1},"client_ip":"203.0.113.9","started_at":1704448800098,"source":"upstream","workspace":"0a0a0a0a-1b1b-2c2c-3d3d-4e4e4e4e4e4e","workspace_name":"default"}',
            id: 't5SzGvBLgoOQWP23UxYwnb',
          },
          observer: {
            vendor: 'Kong',
            product: 'Kong Gateway',
            type: 'api-gateway',
            name: 'default',
          },
          source: {
            ip: '203.0.113.9',
            address: '203.0.113.9',
          },
          url: {
            original: '/orders/ord_29xK81pQ?expand=items&apikey=[REDACTED]',
            path: '/orders/ord_29xK81pQ',
            query: 'expand=items&apikey=[REDACTED]',
            scheme: 'https',
            domain: 'api.example.com',
            port: 8443,
          },
          http: {
            request: {
              id: '3e0f9a12-7b1c-4d2e-9f3a-0c1b2d3e4f50',
              method: 'GET',
              bytes: 312,
            },
            response: {
              status_code: 200,
              bytes: 1203,
              mime_type: 'application/json',
            },
          },
          user_agent: {
            original: 'okhttp/4.12.0',
            name: 'okhttp',
            version: '4.12.0',
          },
          user: {
            id: 'app-42',
            name: 'mobile-app',
          },
          service: {
            name: 'orders-svc',
          },
          tls: {
            version: '1.3',
            cipher: 'TLS_AES_256_GCM_SHA384',
          },
          gatewatch: {
            consumer: 'mobile-app',
            api_key: {
              id: '4f2c1a7e-8b9d-4e3f-a1b2-c3d4e5f6a7b8',
              fingerprint: '3550ed2dba42e543c6c602c516365331',
              source: 'gateway',
              name: 'mobile-app',
              location: 'query',
            },
            upstream_latency_ms: 41,
            extra: {
              source: 'upstream',
              route_name: 'orders-route',
              route_id: 'a1a1a1a1-b2b2-c3c3-d4d4-e5e5e5e5e5e5',
              upstream_uri: '/orders/ord_29xK81pQ?expand=items',
              upstream_status: '200',
              latency_kong_ms: 3,
              tries: 1,
              workspace: '0a0a0a0a-1b1b-2c2c-3d3d-4e4e4e4e4e4e',
            },
            source: {
              format: 'kong.http_log',
              name: 'test',
            },
            client: {
              peer_ip: '203.0.113.9',
              forwarded_for: '198.51.100.7',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'success',
            },
            query_params: ['expand', 'apikey'],
            redacted: ['apikey'],
            route: '/orders/{id}',
            resource: '/orders/ord_29xK81pQ',
            network: {
              id: '203.0.113.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:00.098Z',
        },
      ],
      failures: [],
    });
  });
});
