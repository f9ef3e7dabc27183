import { describe, expect, it } from 'vitest';
import { Lru } from './lru.ts';

describe('Lru', () => {
  it('answers from the front table and the map alike, bounded', () => {
    const c = new Lru<string, number>(100);
    for (let i = 0; i < 1000; i++) c.set(`key-${i}`, i);
    expect(c.size).toBe(100);
    for (let i = 900; i < 1000; i++) expect(c.get(`key-${i}`)).toBe(i);
    // fresh string objects with equal content hit as well
    expect(c.get(['key', '999'].join('-'))).toBe(999);
    expect(c.get('absent')).toBeUndefined();
  });

  it('never confuses keys that share length and sampled characters', () => {
    const c = new Lru<string, string>(10_000);
    const keys: string[] = [];
    for (let i = 0; i < 5_000; i++)
      keys.push(`Mozilla/5.0 (X11; Linux x86_64) ${String(i).padStart(6, '0')} bench`);
    for (const k of keys) c.set(k, k);
    for (const k of keys) expect(c.get(`${k}`)).toBe(k);
    expect(c.get(keys[0]!.replace('X11', 'X12'))).toBeUndefined();
  });

  it('keeps null (negative) results distinct from absence', () => {
    const c = new Lru<string, string | null>(10);
    c.set('x', null);
    expect(c.get('x')).toBeNull();
    expect(c.get('y')).toBeUndefined();
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1 });
  });
});
