import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import { createAuthClassifier, isAuthEndpointPath } from './auth.ts';

const req = (
  method: string,
  path: string,
  status: number,
  extra: { present?: boolean; keySource?: string; waf?: string; query?: string } = {},
): EventDraft => ({
  url: { path, ...(extra.query ? { query: extra.query } : {}) },
  http: { request: { method }, response: { status_code: status } },
  gatewatch: {
    ...(extra.present !== undefined ? { auth: { present: extra.present } } : {}),
    ...(extra.keySource ? { api_key: { source: extra.keySource } } : {}),
    ...(extra.waf ? { waf: { action: extra.waf } } : {}),
  },
});

describe('authentication attempts', () => {
  const auth = createAuthClassifier();
  const classify = (ev: EventDraft) => {
    auth.apply(ev);
    return ev.gatewatch?.auth;
  };

  it('knows authentication endpoints by their path segments', () => {
    for (const p of [
      '/login',
      '/api/v1/auth/login',
      '/users/sign_in',
      '/oauth2/token',
      '/connect/token',
      '/password/reset',
      '/forgot-password',
      '/api/sessions',
      '/mfa',
    ])
      expect(isAuthEndpointPath(p), p).toBe(true);
    for (const p of ['/api/products', '/users/42/addresses', '/blog/login-tips-2024', '/tokenizer', '/'])
      expect(isAuthEndpointPath(p), p).toBe(false);
  });

  it('a basic-auth 401 on an ordinary GET is a failed attempt (it was invisible before)', () => {
    expect(classify(req('GET', '/basic/reports', 401, { present: true, keySource: 'basic' }))).toEqual({
      present: true,
      attempt: true,
      outcome: 'failure',
    });
    expect(classify(req('GET', '/basic/reports', 200, { present: true, keySource: 'basic' }))?.outcome).toBe(
      'success',
    );
  });

  it('a POST to a login route is an attempt even when the log shows no credentials (they are in the body)', () => {
    expect(classify(req('POST', '/api/login', 401))).toEqual({
      endpoint: true,
      attempt: true,
      outcome: 'failure',
    });
    expect(classify(req('POST', '/api/login', 200))?.outcome).toBe('success');
    // OAuth answers a wrong password with 400 invalid_grant.
    expect(classify(req('POST', '/oauth/token', 400))?.outcome).toBe('failure');
    // Fetching the login form is no attempt.
    expect(classify(req('GET', '/login', 200))).toEqual({ endpoint: true });
  });

  it('off the endpoints, 403 and 404 with credentials are answers to an accepted caller, not failures', () => {
    expect(
      classify(req('GET', '/api/users/7/addresses', 403, { present: true, keySource: 'header' }))?.outcome,
    ).toBe('unknown');
    expect(
      classify(req('GET', '/api/users/7/addresses', 404, { present: true, keySource: 'header' }))?.outcome,
    ).toBe('unknown');
  });

  it('a 401 is an attempt unless the logged headers showed no credentials at all', () => {
    expect(classify(req('GET', '/api/products', 401))?.attempt).toBe(true);
    expect(classify(req('GET', '/api/products', 401, { present: false }))).toEqual({ present: false });
  });

  it('a request the WAF blocked has an unknown outcome: its credentials were never checked', () => {
    expect(classify(req('POST', '/api/login', 403, { waf: 'block' }))?.outcome).toBe('unknown');
  });

  it('GraphQL login mutations count when the operation name is logged', () => {
    expect(classify(req('POST', '/graphql', 200, { query: 'operationName=LoginMutation' }))?.attempt).toBe(
      true,
    );
    expect(classify(req('POST', '/graphql', 200, { query: 'operationName=ListProducts' }))).toBeUndefined();
  });

  it('failure semantics are configurable per source', () => {
    // A form login that redirects on failure too: only a 200 is a success.
    const form = createAuthClassifier({ successStatus: [200], endpoints: ['/account/*/enter'] });
    const a = req('POST', '/account/web/enter', 302);
    form.apply(a);
    expect(a.gatewatch?.auth).toEqual({ endpoint: true, attempt: true, outcome: 'unknown' });
    const b = req('GET', '/api/x', 403, { present: true, keySource: 'basic' });
    createAuthClassifier({ failureStatus: [401, 403] }).apply(b);
    expect(b.gatewatch?.auth?.outcome).toBe('failure');
  });
});
