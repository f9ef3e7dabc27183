import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { httpVersion, parseIsoTime } from './util.ts';

/** parseIsoTime as it was before the digit-by-digit fast path: the reference. */
function viaDateParse(s: string): number | undefined {
  if (s.length < 10 || s.charCodeAt(4) !== 45) return undefined;
  let t = s;
  if (t.length > 10 && t.charCodeAt(10) === 32) t = `${t.slice(0, 10)}T${t.slice(11)}`;
  if (t.length > 10) {
    const last = t.charCodeAt(t.length - 1);
    if (!(last === 90 || last === 122 || /[+-]\d\d:?\d\d$/.test(t.slice(-6)))) t += 'Z';
  }
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

const p2 = (n: number) => String(n).padStart(2, '0');

describe('parseIsoTime', () => {
  it('reads the common shapes', () => {
    expect(parseIsoTime('2024-01-05T10:00:00.123456Z')).toBe(Date.UTC(2024, 0, 5, 10, 0, 0, 123));
    expect(parseIsoTime('2024-01-05 10:00:00')).toBe(Date.UTC(2024, 0, 5, 10));
    expect(parseIsoTime('2024-01-05T10:00:00.5+01:30')).toBe(Date.UTC(2024, 0, 5, 8, 30, 0, 500));
    expect(parseIsoTime('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(parseIsoTime('2023-02-29T00:00:00Z')).toBe(viaDateParse('2023-02-29T00:00:00Z'));
    expect(parseIsoTime('0099-01-01T00:00:00Z')).toBe(viaDateParse('0099-01-01T00:00:00Z'));
  });

  it('agrees with Date.parse on generated and malformed timestamps', () => {
    const part = (max: number) =>
      fc.oneof(fc.integer({ min: 0, max }).map(p2), fc.constantFrom('1', 'x9', ''));
    const stamp = fc
      .tuple(
        fc.constantFrom('2024', '1999', '2000', '2100', '1900', '0999', '9999', '20x4'),
        part(13),
        part(32),
        fc.constantFrom('T', ' ', 't', 'X'),
        part(25),
        part(61),
        part(61),
        fc.constantFrom('', '.', '.1', '.12', '.123', '.1234', '.123456789', ',5'),
        fc.constantFrom('', 'Z', 'z', '+00:00', '-05:30', '+0530', '+05', '+24:00', '+05:60', 'Z ', ' '),
      )
      .map(([y, mo, d, sep, h, mi, s, f, z]) => `${y}-${mo}-${d}${sep}${h}:${mi}:${s}${f}${z}`);
    fc.assert(
      fc.property(fc.oneof(stamp, fc.string()), (s) => {
        expect(parseIsoTime(s)).toBe(viaDateParse(s));
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('httpVersion', () => {
  it('keeps the minor version of HTTP/1.x and drops the empty one of HTTP/2 and 3', () => {
    // hydra, siege and nginx's upstream side speak HTTP/1.0: it is not HTTP "1"
    expect(httpVersion('HTTP/1.0')).toBe('1.0');
    expect(httpVersion('1.0')).toBe('1.0');
    expect(httpVersion('HTTP/1.1')).toBe('1.1');
    expect(httpVersion('1.1.0.0')).toBe('1.1');
    expect(httpVersion('HTTP/2.0')).toBe('2');
    expect(httpVersion('2.0.0.0')).toBe('2');
    expect(httpVersion('h2')).toBe('2');
    expect(httpVersion('HTTP/3')).toBe('3');
  });
});
