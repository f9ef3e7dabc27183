import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import {
  createIdentityResolver,
  decodeJwtPayload,
  findQueryParam,
  queryPairs,
  queryParamNames,
} from './identity.ts';

const SECRET = 'k';
const fp = (v: string) => createHmac('sha256', SECRET).update(v).digest('hex').slice(0, 32);
const jwt = (payload: object) =>
  `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2lnbmF0dXJl`;

describe('identity', () => {
  const id = createIdentityResolver({ fingerprintSecret: SECRET });

  it('fingerprints an API key header, never keeping the raw value', () => {
    const ev: EventDraft = {};
    id.apply(ev, { headers: { 'x-api-key': 'sk_live_abcdef123456' } });
    expect(ev).toEqual({
      gatewatch: {
        api_key: { fingerprint: fp('sk_live_abcdef123456'), location: 'header' },
        auth: { present: true, scheme: 'api-key' },
      },
    });
    expect(JSON.stringify(ev)).not.toContain('sk_live');
  });

  it('decodes a bearer JWT without verification', () => {
    const token = jwt({ sub: 'user-42', iss: 'https://idp', azp: 'web' });
    const ev: EventDraft = {};
    id.apply(ev, { headers: { authorization: `Bearer ${token}` } });
    expect(ev.gatewatch).toEqual({
      api_key: { fingerprint: fp(token), location: 'header' },
      jwt: { sub: 'user-42', iss: 'https://idp', client_id: 'web' },
      auth: { present: true, scheme: 'bearer' },
    });
  });

  it('never throws on malformed JWTs', () => {
    for (const t of [
      'eyJ.',
      'eyJhbGciOi.!!!.x',
      `eyJhbGciOiJIUzI1NiJ9.${Buffer.from('[1,2]').toString('base64url')}.x`,
      'eyJ'.repeat(9000),
    ]) {
      expect(decodeJwtPayload(t)).toBeUndefined();
      const ev: EventDraft = {};
      expect(() => id.apply(ev, { headers: { authorization: `Bearer ${t}` } })).not.toThrow();
    }
  });

  it('reads keys from the query string and cookies', () => {
    const q: EventDraft = { url: { query: 'a=1&api_key=abc%2Fdef' } };
    id.apply(q, {});
    expect(q.gatewatch?.api_key).toEqual({ fingerprint: fp('abc/def'), location: 'query' });
    const c: EventDraft = {};
    id.apply(c, { headers: { cookie: 'theme=dark; access_token=tok123' } });
    expect(c.gatewatch?.api_key).toEqual({ fingerprint: fp('tok123'), location: 'cookie' });
  });

  it('takes the user name from Basic credentials', () => {
    const ev: EventDraft = {};
    id.apply(ev, { headers: { authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` } });
    expect(ev.user).toEqual({ name: 'alice' });
    expect(ev.gatewatch?.auth).toEqual({ present: true, scheme: 'basic' });
  });

  it('reports no credentials when headers were logged without any', () => {
    const ev: EventDraft = {};
    id.apply(ev, { headers: { accept: '*/*' } });
    expect(ev.gatewatch?.auth).toEqual({ present: false, scheme: 'none' });
  });

  it('without a secret redacts but does not fingerprint', () => {
    const ev: EventDraft = {};
    createIdentityResolver().apply(ev, { headers: { 'x-api-key': 'abc' } });
    expect(ev.gatewatch?.api_key).toEqual({ location: 'header' });
  });
});

describe('query scanning without pairs', () => {
  // query strings built from a small alphabet so that separators, escapes and repeats are common
  const query = fc
    .array(fc.constantFrom('a', 'A', 'k', 'key', '=', '&', '%', '%41', '%ZZ', '+', 'x', ''), {
      maxLength: 40,
    })
    .map((parts) => parts.join(''));
  const names = new Set(['key', 'a', 'a a']);

  it('queryParamNames lists the distinct names of queryPairs, in order, capped', () => {
    fc.assert(
      fc.property(query, fc.integer({ min: 1, max: 6 }), (q, max) => {
        const expected: string[] = [];
        for (const [n] of queryPairs(q)) if (expected.length < max && !expected.includes(n)) expected.push(n);
        expect(queryParamNames(q, max)).toEqual(expected);
      }),
    );
  });

  it('findQueryParam finds the first queryPairs entry with a known name and a value', () => {
    fc.assert(
      fc.property(query, (q) => {
        const expected = queryPairs(q).find(([n, v]) => v !== '' && names.has(n.toLowerCase()));
        expect(findQueryParam(q, names)).toEqual(expected);
      }),
    );
  });

  it('stops where queryPairs stops (256 pairs)', () => {
    const q = `${'x=1&'.repeat(256)}key=v`;
    expect(findQueryParam(q, names)).toBeUndefined();
    expect(queryParamNames(`${'&y'.repeat(300)}&z`, 64)).toEqual(['y']);
  });
});
