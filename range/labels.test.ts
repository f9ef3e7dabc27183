import { describe, expect, it } from 'vitest';
import { labelProblems, toLabel } from './labels.ts';

describe('range labels', () => {
  it('writes the documented tool-neutral shape, entities sorted and de-duplicated', () => {
    const l = toLabel(
      {
        id: 'hydra-form-stuffing',
        class: 'credential_stuffing',
        tool: 'hydra 9.4',
        description: 'd',
        ips: new Set(['127.66.1.12', '127.66.1.2', '127.66.1.12']),
        users: ['bob', 'alice', 'bob'],
        routes: ['/api/login'],
        apiKeys: [],
        first: Date.UTC(2026, 0, 1, 10, 0, 0),
        last: Date.UTC(2026, 0, 1, 10, 0, 5),
      },
      50,
    );
    expect(l).toEqual({
      id: 'hydra-form-stuffing',
      class: 'credential_stuffing',
      tool: 'hydra 9.4',
      description: 'd',
      entities: { ip: ['127.66.1.2', '127.66.1.12'], user: ['alice', 'bob'], route: ['/api/login'] },
      start: '2026-01-01T10:00:00.000Z',
      end: '2026-01-01T10:00:05.000Z',
      requests: 50,
    });
    expect(labelProblems(JSON.parse(JSON.stringify(l)))).toEqual([]);
  });

  it('explains what is wrong with a bad label', () => {
    expect(
      labelProblems({
        id: 'x',
        class: 'nope',
        tool: 't',
        description: 'd',
        entities: { host: ['a'] },
        start: 'later',
        end: '2026-01-01T00:00:00Z',
        requests: -1,
      }),
    ).toEqual([
      'class must be one of credential_stuffing, password_spraying, brute_force, account_takeover, bola, forced_browsing, waf_bypass, injection, scraping, stolen_api_key, credential_in_url, server_error_spike, benign',
      'requests must be a non-negative integer',
      'start is not an ISO-8601 time',
      'unknown entity kind host',
    ]);
  });
});
