import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('AWS ALB format: exact output', () => {
  it('aws.alb sample line 2: exact normalised event', () => {
    expect(normalizeSample('aws.alb', 2, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web', 'network'],
            type: ['access'],
            action: 'request',
            outcome: 'failure',
            module: 'aws',
            duration: 121000000,
            dataset: 'aws.alb',
            original:
              'h2 2024-01-05T10:00:02.000001Z app/api-alb/50dc6c495c0c9188 [2001:db8::1f]:61000 10.0.1.6:8080 0.000 0.120 0.001 500 500 0 73 "GET https://api.example.com:443/v1/reports/export?api_key=[REDACTED]&fmt=csv HTTP/2.0" "curl/8.4.0" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-tg/73e2d6bc24d8a067 "Root=1-65a3f2e2-2222222222222222bbbbbbbb" "api.example.com" "-" 2 2024-01-05T10:00:01.879000Z "forward" "-" "-" "10.0.1.6:8080" "500" "-" "-" -',
            id: 'TMSmQk-mgc8CfuV-6dAWO8',
          },
          observer: {
            vendor: 'AWS',
            product: 'Application Load Balancer',
            type: 'load-balancer',
            name: 'app/api-alb/50dc6c495c0c9188',
          },
          source: {
            ip: '2001:db8::1f',
            port: 61000,
            address: '2001:db8::1f',
          },
          destination: {
            ip: '10.0.1.6',
            port: 8080,
          },
          http: {
            version: '2',
            request: {
              id: 'Root=1-65a3f2e2-2222222222222222bbbbbbbb',
              method: 'GET',
              bytes: 0,
            },
            response: {
              status_code: 500,
              bytes: 73,
            },
          },
          user_agent: {
            original: 'curl/8.4.0',
            name: 'curl',
            version: '8.4.0',
          },
          tls: {
            version: '1.3',
            cipher: 'TLS_AES_128_GCM_SHA256',
          },
          gatewatch: {
            upstream_latency_ms: 120,
            upstream: {
              status_code: 500,
            },
            extra: {
              type: 'h2',
              target_status_code: '500',
              target_group_arn:
                'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-tg/73e2d6bc24d8a067',
              actions_executed: 'forward',
              matched_rule_priority: '2',
            },
            source: {
              format: 'aws.alb',
              name: 'test',
            },
            client: {
              peer_ip: '2001:db8::1f',
            },
            api_key: {
              fingerprint: '6419cf6390c47fc94b112410c66a6547',
              source: 'query',
              location: 'query',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'unknown',
            },
            query_params: ['api_key', 'fmt'],
            redacted: ['api_key'],
            route: '/v1/reports/export',
            resource: '/v1/reports/export',
            network: {
              id: '2001:db8::/48',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:02.000Z',
          url: {
            original: 'https://api.example.com:443/v1/reports/export?api_key=[REDACTED]&fmt=csv',
            path: '/v1/reports/export',
            query: 'api_key=[REDACTED]&fmt=csv',
            scheme: 'https',
            domain: 'api.example.com',
            port: 443,
          },
        },
      ],
      failures: [],
    });
  });
});
