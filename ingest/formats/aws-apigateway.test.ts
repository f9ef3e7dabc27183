import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('AWS API Gateway format: exact output', () => {
  it('aws.apigateway sample line 2: exact normalised event', () => {
    expect(normalizeSample('aws.apigateway', 2, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            module: 'aws',
            duration: 3000000,
            outcome: 'failure',
            dataset: 'aws.apigateway',
            original:
              '{"requestId":"0f1e2d3c-4b5a-6978-8877-665544332211","extendedRequestId":"Rk3PbEXAMPLEabc=","ip":"198.51.100.4","requestTimeEpoch":"1704448802345","httpMethod":"GET","resourcePath":"/users/{id}/keys","path":"/prod/users/991/keys","status":"429","protocol":"HTTP/1.1","responseLength":"44","responseLatency":"3","integrationLatency":"-","userAgent":"python-requests/2.31.0","apiKeyId":"a1b2c3d4e5","apiKey":"[REDACTED]","errorMessage":"Too Many Requests","errorResponseType":"THROTTLED","domainName":"api.example.com","stage":"prod"}',
            id: 'P0QkNFHAhghwg_qVBSePF6',
          },
          observer: {
            vendor: 'AWS',
            product: 'API Gateway',
            type: 'api-gateway',
          },
          http: {
            request: {
              id: '0f1e2d3c-4b5a-6978-8877-665544332211',
              method: 'GET',
            },
            response: {
              status_code: 429,
              bytes: 44,
            },
            version: '1.1',
          },
          source: {
            ip: '198.51.100.4',
            address: '198.51.100.4',
          },
          gatewatch: {
            route: '/users/{id}/keys',
            api_key: {
              id: 'a1b2c3d4e5',
              fingerprint: 'a9cb494fc70856d4768e2d5a30fb596d',
              source: 'gateway',
              name: 'a1b2c3d4e5',
              location: 'header',
            },
            extra: {
              extendedRequestId: 'Rk3PbEXAMPLEabc=',
              stage: 'prod',
            },
            source: {
              format: 'aws.apigateway',
              name: 'test',
            },
            client: {
              peer_ip: '198.51.100.4',
            },
            auth: {
              present: true,
              scheme: 'api-key',
              attempt: true,
              outcome: 'unknown',
            },
            redacted: ['x-api-key'],
            resource: '/prod/users/991/keys',
            network: {
              id: '198.51.100.0/24',
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
            original: '/prod/users/991/keys',
            path: '/prod/users/991/keys',
          },
          error: {
            message: 'Too Many Requests',
            code: 'THROTTLED',
          },
          '@timestamp': '2024-01-05T10:00:02.345Z',
        },
      ],
      failures: [],
    });
  });

  it('aws.apigateway sample line 4: exact normalised event', () => {
    expect(normalizeSample('aws.apigateway', 4, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            module: 'aws',
            outcome: 'success',
            dataset: 'aws.apigateway',
            original:
              '203.0.113.17 - - [05/Jan/2024:10:00:04 +0000] "GET /pets/{petId} HTTP/1.1" 200 148 c6af9ac6-7b61-11e6-9a41-93e8deadbe01',
            id: 'cdAWRzeFzrgpcK84ETBqfK',
          },
          observer: {
            vendor: 'AWS',
            product: 'API Gateway',
            type: 'api-gateway',
          },
          source: {
            ip: '203.0.113.17',
            address: '203.0.113.17',
          },
          http: {
            version: '1.1',
            request: {
              id: 'c6af9ac6-7b61-11e6-9a41-93e8deadbe01',
              method: 'GET',
            },
            response: {
              status_code: 200,
              bytes: 148,
            },
          },
          url: {
            original: '/pets/{petId}',
            path: '/pets/{petId}',
          },
          gatewatch: {
            route: '/pets/{petId}',
            source: {
              format: 'aws.apigateway',
              name: 'test',
            },
            client: {
              peer_ip: '203.0.113.17',
            },
            resource: '/pets/{petId}',
            network: {
              id: '203.0.113.0/24',
              kind: 'prefix',
            },
          },
          '@timestamp': '2024-01-05T10:00:04.000Z',
        },
      ],
      failures: [],
    });
  });
});
