import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import { createRedactor } from './redact.ts';

describe('redaction', () => {
  const r = createRedactor();

  it('knows sensitive names', () => {
    for (const n of [
      'Authorization',
      'Cookie',
      'set-cookie',
      'X-Api-Key',
      'api_key',
      'access_token',
      'password',
      'client_secret',
      'sig',
      'X-Amz-Signature',
      'session_id',
    ]) {
      expect(r.isSensitive(n), n).toBe(true);
    }
    for (const n of ['page', 'author', 'q', 'limit', 'keyword', 'LeakedCredentialCheckResult'])
      expect(r.isSensitive(n), n).toBe(false);
  });

  it('matches query parameter names by word, not by substring', () => {
    for (const n of [
      'token',
      'tokens',
      'access_token',
      'accessToken',
      'id_token',
      'refresh-token',
      'csrftoken',
      'api_key',
      'apikey',
      'apiKey',
      'x-goog-api-key',
      'key',
      'signing_key',
      'password',
      'newPassword',
      'passwordHash',
      'secret',
      'clientSecret',
      'signature',
      'X-Amz-Credential',
      'X-Amz-Security-Token',
      'JSESSIONID',
      'ocp-apim-subscription-key',
    ]) {
      expect(r.isSensitive(n), n).toBe(true);
    }
    for (const n of [
      'tokenize',
      'tokenizer',
      'keyword',
      'keys_only',
      'secretary',
      'obsession',
      'design',
      'side',
    ])
      expect(r.isSensitive(n), n).toBe(false);
  });

  it('keeps a tokenize parameter in clear while redacting a token next to it', () => {
    const ev: EventDraft = {
      url: { original: '/s?tokenize=true&token=abcdefgh', query: 'tokenize=true&token=abcdefgh' },
    };
    const out = r.apply(ev, {}, 'GET /s?tokenize=true&token=abcdefgh');
    expect(ev.url?.query).toBe('tokenize=true&token=[REDACTED]');
    expect(out).toBe('GET /s?tokenize=true&token=[REDACTED]');
    expect(ev.gatewatch?.redacted).toEqual(['token']);
  });

  it('redacts query values in url and the original line, keeping the rest verbatim', () => {
    const line = '1.2.3.4 "GET /p?a=%20x&token=abc&password=hunter2secret HTTP/1.1"';
    const ev: EventDraft = {
      url: {
        original: '/p?a=%20x&token=abc&password=hunter2secret',
        query: 'a=%20x&token=abc&password=hunter2secret',
        path: '/p',
      },
    };
    const out = r.apply(ev, {}, line);
    expect(ev.url).toEqual({
      original: '/p?a=%20x&token=[REDACTED]&password=[REDACTED]',
      query: 'a=%20x&token=[REDACTED]&password=[REDACTED]',
      path: '/p',
    });
    expect(out).toBe('1.2.3.4 "GET /p?a=%20x&token=[REDACTED]&password=[REDACTED] HTTP/1.1"');
    expect(ev.gatewatch).toEqual({
      query_params: ['a', 'token', 'password'],
      redacted: ['token', 'password'],
    });
  });

  it('scrubs header secrets from the original, also JSON-escaped and short ones', () => {
    const line = '{"headers":{"Authorization":"Bearer a/b.c-longtoken","X-Api-Key":"k1"},"other":"k1x"}';
    const out = r.apply(
      {},
      { headers: { authorization: 'Bearer a/b.c-longtoken', 'x-api-key': 'k1' } },
      line,
    );
    expect(out).toBe('{"headers":{"Authorization":"[REDACTED]","X-Api-Key":"[REDACTED]"},"other":"k1x"}');
  });

  it('redacts sensitive keys in gatewatch.extra and the referrer', () => {
    const ev: EventDraft = {
      http: { request: { referrer: 'https://app/cb?code=1&access_token=zzzzzzzz' } },
      gatewatch: {
        extra: { session_token: 'st_abcdef0123456789', nested: { note: 'has st_abcdef0123456789 inside' } },
      },
    };
    const out = r.apply(ev, {}, 'x st_abcdef0123456789 zzzzzzzz');
    expect(ev.http?.request?.referrer).toBe('https://app/cb?code=1&access_token=[REDACTED]');
    expect(ev.gatewatch?.extra).toEqual({
      session_token: '[REDACTED]',
      nested: { note: 'has [REDACTED] inside' },
    });
    expect(out).toBe('x [REDACTED] [REDACTED]');
  });

  it('scrubs URL-encoded cookies logged outside headers', () => {
    const out = r.apply(
      {},
      { cookies: 'sid=s3cr3tValue; theme=dark', secretsInOriginal: ['sid=s3cr3tValue;%20theme=dark'] },
      'a\tsid=s3cr3tValue;%20theme=dark\tb',
    );
    expect(out).toBe('a\t[REDACTED]\tb');
  });
});
