import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

describe('CloudFront format: exact output', () => {
  it('aws.cloudfront sample line 2: exact normalised event', () => {
    expect(normalizeSample('aws.cloudfront', 2, normalizeLine)).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web', 'network'],
            type: ['access'],
            action: 'request',
            outcome: 'success',
            module: 'aws',
            duration: 81000000,
            dataset: 'aws.cloudfront',
            original:
              '2024-01-05\t10:00:00\tAMS1-C1\t2390\t203.0.113.70\tGET\td111111abcdef8.cloudfront.net\t/api/v1/catalog/items/48213\t200\thttps://shop.example.com/\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/120.0.0.0%20Safari/537.36\tlang=en\t[REDACTED]\tMiss\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\tshop.example.com\thttps\t412\t0.081\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t53211\t0.079\tMiss\tapplication/json\t2100\t-\t-',
            id: 'S979kxwMLf6DhnS8farXy7',
          },
          observer: {
            vendor: 'AWS',
            product: 'CloudFront',
            type: 'cdn',
            name: 'd111111abcdef8.cloudfront.net',
          },
          source: {
            ip: '203.0.113.70',
            address: '203.0.113.70',
            port: 53211,
          },
          url: {
            original: '/api/v1/catalog/items/48213?lang=en',
            path: '/api/v1/catalog/items/48213',
            query: 'lang=en',
            domain: 'shop.example.com',
            scheme: 'https',
          },
          http: {
            version: '2',
            request: {
              id: 'SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==',
              method: 'GET',
              bytes: 412,
              referrer: 'https://shop.example.com/',
            },
            response: {
              status_code: 200,
              bytes: 2390,
              mime_type: 'application/json',
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
          tls: {
            version: '1.3',
            cipher: 'TLS_AES_128_GCM_SHA256',
          },
          '@timestamp': '2024-01-05T10:00:00.000Z',
          gatewatch: {
            extra: {
              'x-edge-location': 'AMS1-C1',
              'x-edge-result-type': 'Miss',
              'x-edge-response-result-type': 'Miss',
              'x-edge-detailed-result-type': 'Miss',
              'time-to-first-byte-ms': 79,
            },
            source: {
              format: 'aws.cloudfront',
              name: 'test',
            },
            client: {
              peer_ip: '203.0.113.70',
            },
            query_params: ['lang'],
            redacted: ['cookie'],
            route: '/api/v1/catalog/items/{id}',
            resource: '/api/v1/catalog/items/48213',
            network: {
              id: '203.0.113.0/24',
              kind: 'prefix',
            },
          },
        },
      ],
      failures: [],
    });
  });
});
