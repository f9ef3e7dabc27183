/** Reading Elasticsearch's disk watermarks the way it does: ratios, percentages, free bytes, headroom. */
import { describe, expect, it } from 'vitest';
import { freeBelow, parseBytes, parseWatermark } from './store-health.ts';

const GIB = 1024 ** 3;

describe('disk watermarks', () => {
  it('parses percentages, ratios and byte sizes; -1 is none', () => {
    expect(parseWatermark('85%')).toEqual({ ratio: 0.85 });
    expect(parseWatermark('0.9')).toEqual({ ratio: 0.9 });
    expect(parseWatermark('500mb')).toEqual({ bytes: 500 * 1024 ** 2 });
    expect(parseWatermark('100GB')).toEqual({ bytes: 100 * GIB });
    expect(parseWatermark('-1')).toBeUndefined();
    expect(parseBytes('1.5g')).toBe(1.5 * GIB);
    expect(parseBytes('12')).toBe(12);
    expect(parseBytes('a lot')).toBeUndefined();
  });

  it('a ratio leaves its share of the disk free, capped by the max headroom; bytes are the free space itself', () => {
    // 1 TiB disk: 10 % is 102.4 GiB, capped at 100 GiB of headroom.
    expect(freeBelow('90%', '100gb', 1024 * GIB)).toBe(100 * GIB);
    // 100 GiB disk: 10 % (10 GiB) is under the cap.
    expect(freeBelow('90%', '150gb', 100 * GIB)).toBeCloseTo(10 * GIB, 0);
    expect(freeBelow('90%', '-1', 100 * GIB)).toBeCloseTo(10 * GIB, 0);
    expect(freeBelow('16mb', '150gb', 64 * 1024 ** 2)).toBe(16 * 1024 ** 2);
  });
});
