import { describe, expect, it } from 'vitest';
import { resourceOf } from './resource.ts';

describe('resource', () => {
  it('tells pages of a listing apart, which distinct paths cannot', () => {
    const pages = new Set<string>();
    for (let p = 1; p <= 50; p++)
      pages.add(resourceOf('/api/products', `page=${p}&sort=price&_=${Date.now() + p}`));
    expect(pages.size).toBe(50);
    expect(resourceOf('/api/products', 'page=3&sort=price')).toBe('/api/products?page=3');
  });

  it('keeps position, continuation and object parameters in a canonical order; drops the rest', () => {
    expect(resourceOf('/v1/items', 'limit=100&offset=200')).toBe('/v1/items?offset=200');
    expect(resourceOf('/v1/items', 'cursor=abc&fields=name')).toBe('/v1/items?cursor=abc');
    expect(resourceOf('/item', 'b=1&productId=9&id=4')).toBe('/item?id=4&productId=9');
    expect(resourceOf('/item', 'id=4&productId=9&b=1')).toBe('/item?id=4&productId=9');
    expect(resourceOf('/search', 'q=shoes')).toBe('/search');
    expect(resourceOf('/search', undefined)).toBe('/search');
  });
});

describe('resource after redaction', () => {
  it('pagination tokens survive redaction, so each page stays its own resource', async () => {
    const { createRedactor } = await import('./redact.ts');
    const ev = { url: { path: '/v1/items', query: 'page_token=CAESBggBEAEYAQ&api_key=sk_live_abc123456' } };
    createRedactor().apply(ev, {}, undefined, {});
    expect(ev.url.query).toContain('page_token=CAESBggBEAEYAQ');
    expect(ev.url.query).not.toContain('sk_live_abc123456');
    expect(resourceOf(ev.url.path, ev.url.query)).toBe('/v1/items?page_token=CAESBggBEAEYAQ');
  });
});
