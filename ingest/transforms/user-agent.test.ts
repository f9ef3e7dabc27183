import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import { createUserAgentEnricher, parseUserAgent } from './user-agent.ts';

describe('user agent', () => {
  it('parses browsers with ua-parser-js', () => {
    expect(
      parseUserAgent(
        'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1',
      ),
    ).toEqual({
      name: 'Mobile Safari',
      version: '17.2',
      os: { name: 'iOS', version: '17.2' },
      device: { name: 'iPhone' },
    });
  });
  it('names simple API clients by their product token', () => {
    expect(parseUserAgent('curl/8.4.0')).toEqual({ name: 'curl', version: '8.4.0' });
    expect(parseUserAgent('python-requests/2.31.0')).toEqual({ name: 'python-requests', version: '2.31.0' });
    expect(parseUserAgent('???')).toBeUndefined();
  });
  it('caches results in a bounded LRU and enriches events', () => {
    const ua = createUserAgentEnricher({ cacheSize: 2 });
    const ev: EventDraft = { user_agent: { original: 'okhttp/4.12.0' } };
    ua.apply(ev);
    expect(ev.user_agent).toEqual({ original: 'okhttp/4.12.0', name: 'okhttp', version: '4.12.0' });
    expect(ua.lookup('okhttp/4.12.0')).toBe(ua.lookup('okhttp/4.12.0'));
    for (let i = 0; i < 100; i++) ua.lookup(`client${i}/1.0`);
  });
});
