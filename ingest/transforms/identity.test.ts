import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import {
  createIdentityResolver,
  decodeJwtPayload,
  findQueryParam,
  isPlaceholderSecret,
  keyIdentityString,
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
        api_key: { fingerprint: fp('sk_live_abcdef123456'), location: 'header', source: 'header' },
        auth: { present: true, scheme: 'api-key' },
      },
    });
    expect(JSON.stringify(ev)).not.toContain('sk_live');
  });

  it('decodes a bearer JWT without verification; its subject is the key identity', () => {
    const token = jwt({ sub: 'user-42', iss: 'https://idp', azp: 'web' });
    const ev: EventDraft = {};
    id.apply(ev, { headers: { authorization: `Bearer ${token}` } });
    expect(ev.gatewatch).toEqual({
      api_key: {
        fingerprint: fp(keyIdentityString('jwt', 'user-42', { issuer: 'https://idp' })),
        location: 'header',
        source: 'jwt',
        name: 'user-42',
      },
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
    expect(q.gatewatch?.api_key).toEqual({ fingerprint: fp('abc/def'), location: 'query', source: 'query' });
    const c: EventDraft = {};
    id.apply(c, { headers: { cookie: 'theme=dark; access_token=tok123' } });
    expect(c.gatewatch?.api_key).toEqual({ fingerprint: fp('tok123'), location: 'cookie', source: 'cookie' });
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

  it('Basic credentials identify their user, not each guessed password', () => {
    const basic = (pw: string) => ({
      headers: { authorization: `Basic ${Buffer.from(`alice:${pw}`).toString('base64')}` },
    });
    const a: EventDraft = {};
    const b: EventDraft = {};
    id.apply(a, basic('hunter2'));
    id.apply(b, basic('letmein'));
    expect(a.gatewatch?.api_key).toEqual({
      fingerprint: fp('basic:alice'),
      location: 'header',
      source: 'basic',
      name: 'alice',
    });
    expect(b.gatewatch?.api_key?.fingerprint).toBe(a.gatewatch?.api_key?.fingerprint);
  });

  it('takes the credential the gateway authenticated before the header it logged', () => {
    // Kong logs the apikey header as a placeholder and the credential it matched separately.
    const ev: EventDraft = { gatewatch: { api_key: { id: 'cred-7' }, consumer: 'acme-mobile' } };
    id.apply(ev, { headers: { apikey: 'REDACTED-BY-KONG' } });
    expect(ev.gatewatch?.api_key).toEqual({
      id: 'cred-7',
      fingerprint: fp('gateway:cred-7'),
      location: 'header',
      source: 'gateway',
      name: 'acme-mobile',
    });
  });

  it('never takes a logging placeholder for a key (every consumer would share it)', () => {
    // 60 Kong consumers whose requests carry the same placeholder: 60 identities, not one.
    const fingerprints = new Set<string | undefined>();
    for (let i = 0; i < 60; i++) {
      const ev: EventDraft = { gatewatch: { api_key: { id: `cred-${i}` }, consumer: `c${i}` } };
      id.apply(ev, { headers: { apikey: 'REDACTED-BY-KONG' } });
      fingerprints.add(ev.gatewatch?.api_key?.fingerprint);
    }
    expect(fingerprints.size).toBe(60);
    // Without the gateway's credential, a placeholder gives no key identity at all.
    expect(isPlaceholderSecret('-')).toBe(true);
    for (const placeholder of ['REDACTED-BY-KONG', '********', '[REDACTED]', '<hidden>', 'xxxxxxxx']) {
      expect(isPlaceholderSecret(placeholder)).toBe(true);
      const ev: EventDraft = {};
      id.apply(ev, { headers: { 'x-api-key': placeholder } });
      expect(ev.gatewatch?.api_key?.fingerprint, placeholder).toBeUndefined();
      expect(ev.gatewatch?.auth?.present, placeholder).toBe(true);
    }
    for (const key of [
      'sk_live_4eC39HqLyjWDarjtT1zdp7dc',
      'k-live-0001',
      'hidden123abc',
      'AKIAIOSFODNN7EXAMPLE',
    ])
      expect(isPlaceholderSecret(key), key).toBe(false);
  });

  it('a header value many authenticated users send is no key identity', () => {
    const own = createIdentityResolver({ fingerprintSecret: SECRET });
    const seen: (string | undefined)[] = [];
    for (const user of ['u1', 'u2', 'u3', 'u4', 'u5']) {
      const ev: EventDraft = { user: { id: user } };
      own.apply(ev, { headers: { 'x-api-key': 'mobile-app-build-2291-shared' } });
      seen.push(ev.gatewatch?.api_key?.fingerprint);
    }
    // The first two users' events keep it (nothing says yet that it is shared); from the third on,
    // the value is known to be shared by the fleet.
    expect(seen.slice(2)).toEqual([undefined, undefined, undefined]);
    // A key sent by one user many times stays that user's key.
    for (let i = 0; i < 5; i++) {
      const ev: EventDraft = { user: { id: 'solo' } };
      own.apply(ev, { headers: { 'x-api-key': 'solo-key-12345' } });
      expect(ev.gatewatch?.api_key?.fingerprint).toBe(fp('solo-key-12345'));
    }
  });

  it('without a secret redacts but does not fingerprint', () => {
    const ev: EventDraft = {};
    createIdentityResolver().apply(ev, { headers: { 'x-api-key': 'abcdef12' } });
    expect(ev.gatewatch?.api_key).toEqual({ location: 'header', source: 'header' });
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
