import { describe, expect, it } from 'vitest';
import { classifySegment, isDictionarySegment, RouteLearner } from './route.ts';

describe('segment typing', () => {
  it.each([
    ['123', 'id'],
    ['9f2c4e1ab7', 'id'],
    ['5f8d0d55b54764421b7156c3', 'id'],
    ['3fa85f64-5717-4562-b3fc-2c963f66afa6', 'id'],
    ['ord_7Hk29xQ', 'id'],
    ['cus_NffrFeUfNV2Hib', 'id'],
    ['INV-2024-000123', 'id'],
    ['alice@example.com', 'email'],
    ['2024-01-05', 'date'],
    ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln', 'token'],
    ['v2', 'word'],
    ['V10', 'word'],
    ['1.0', 'word'],
    ['users', 'word'],
    ['order-items', 'word'],
    ['userProfile', 'word'],
    ['me', 'word'],
    ['acme', 'string'],
    ['', 'empty'],
  ])('%s → %s', (seg, type) => {
    expect(classifySegment(seg)).toBe(type);
  });
  it('never treats dictionary compounds as parameters', () => {
    expect(isDictionarySegment('password-reset')).toBe(true);
    expect(isDictionarySegment('xkcdqwerty')).toBe(false);
  });
});

describe('RouteLearner', () => {
  it('templates typed segments at once', () => {
    const l = new RouteLearner();
    expect(l.template('/users/123/orders/9f2c4e1ab7')).toBe('/users/{id}/orders/{id}');
    expect(l.template('/api/v2/users/me')).toBe('/api/v2/users/me');
    expect(l.template('/')).toBe('/');
    expect(l.template('/users/alice@example.com')).toBe('/users/{email}');
  });
  it('templates plain-string segments only after enough distinct siblings', () => {
    const l = new RouteLearner({ threshold: 3 });
    expect(l.template('/shops/acme/revenue', 'h')).toBe('/shops/acme/revenue');
    expect(l.template('/shops/globex/revenue', 'h')).toBe('/shops/globex/revenue');
    expect(l.template('/shops/acme/revenue', 'h')).toBe('/shops/acme/revenue');
    expect(l.template('/shops/initech/revenue', 'h')).toBe('/shops/{param}/revenue');
    expect(l.template('/shops/umbrella/revenue', 'h')).toBe('/shops/{param}/revenue');
    // dictionary words stay literal even under a learned position
    expect(l.template('/shops/search/revenue', 'h')).toBe('/shops/search/revenue');
    // other hosts and other depths learn separately
    expect(l.template('/shops/acme/revenue', 'other')).toBe('/shops/acme/revenue');
    expect(l.template('/shops/acme', 'h')).toBe('/shops/acme');
  });
  it('gives typed values at a learned position the same template (one route, one template)', () => {
    const l = new RouteLearner({ threshold: 3 });
    expect(l.template('/users/bob1234/orders', 'h')).toBe('/users/{id}/orders');
    for (const u of ['alice', 'carol', 'dave']) l.template(`/users/${u}/orders`, 'h');
    expect(l.template('/users/erin/orders', 'h')).toBe('/users/{param}/orders');
    expect(l.template('/users/bob1234/orders', 'h')).toBe('/users/{param}/orders');
    expect(l.template('/users/frank@example.com/orders', 'h')).toBe('/users/{param}/orders');
    // typed segments elsewhere keep their own placeholders
    expect(l.template('/items/123/orders', 'h')).toBe('/items/{id}/orders');
  });
  it('is memory-bounded', () => {
    const l = new RouteLearner({ threshold: 1000, maxCandidates: 50 });
    for (let i = 0; i < 10_000; i++)
      l.template(`/p${'x'.repeat(i % 7)}q/zz${String.fromCharCode(97 + (i % 26))}k${i}/a`);
    expect(l.stats().candidates).toBeLessThanOrEqual(50);
  });
  it('caps very deep paths', () => {
    const l = new RouteLearner({ maxSegments: 3 });
    expect(l.template('/a/b/c/d/e')).toBe('/a/b/c/{…}');
  });
});
