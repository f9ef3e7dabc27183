import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { normalizeSample } from './testing/helpers.ts';

const GENERIC_MAP = {
  ts: '@timestamp',
  client: '@peer_ip',
  verb: 'http.request.method',
  target: '@target',
  code: 'http.response.status_code',
  took_ms: '@duration_ms',
  agent: 'user_agent.original',
  tenant: 'labels.tenant',
};

describe('generic JSON format: exact output', () => {
  it('generic.json sample line 2: exact normalised event', () => {
    expect(normalizeSample('generic.json', 2, normalizeLine, { fieldMap: GENERIC_MAP })).toEqual({
      ok: true,
      events: [
        {
          event: {
            kind: 'event',
            category: ['web'],
            type: ['access'],
            action: 'request',
            module: 'generic',
            duration: 4000000,
            outcome: 'success',
            dataset: 'generic.json',
            original:
              '{"ts":"05/Jan/2024:10:00:02 +0000","client":"not-an-ip","verb":"DELETE","target":"https://api.example.com/v1/items/77?confirm=yes&password=[REDACTED]","code":204,"took_ms":4,"tenant":"initech"}',
            id: 'QvvnDo3H304hIr9sVTmqUG',
          },
          observer: {
            type: 'api-gateway',
          },
          http: {
            request: {
              method: 'DELETE',
            },
            response: {
              status_code: 204,
            },
          },
          labels: {
            tenant: 'initech',
          },
          url: {
            original: 'https://api.example.com/v1/items/77?confirm=yes&password=[REDACTED]',
            path: '/v1/items/77',
            query: 'confirm=yes&password=[REDACTED]',
            scheme: 'https',
            domain: 'api.example.com',
          },
          '@timestamp': '2024-01-05T10:00:02.000Z',
          gatewatch: {
            source: {
              format: 'generic.json',
              name: 'test',
            },
            query_params: ['confirm', 'password'],
            redacted: ['password'],
            route: '/v1/items/{id}',
            resource: '/v1/items/77',
          },
        },
      ],
      failures: [],
    });
  });
});
