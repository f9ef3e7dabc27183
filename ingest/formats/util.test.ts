import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIsoTime, tokenize } from './util.ts';

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

/** The character-by-character tokenizer tokenize() must agree with (its previous implementation). */
function tokenizeReference(line: string, max = 64, brackets = true): string[] | undefined {
  const out: string[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    if (out.length >= max) return undefined;
    if (c === 34) {
      let j = i + 1;
      let buf = '';
      let start = j;
      for (;;) {
        if (j >= n) return undefined;
        c = line.charCodeAt(j);
        if (c === 34) break;
        if (c === 92 && j + 1 < n) {
          buf += line.slice(start, j);
          const e = line.charCodeAt(j + 1);
          buf += e === 110 ? '\n' : e === 116 ? '\t' : line[j + 1];
          j += 2;
          start = j;
          continue;
        }
        j++;
      }
      out.push(buf + line.slice(start, j));
      i = j + 1;
    } else if (brackets && c === 91) {
      const j = line.indexOf(']', i + 1);
      const next = line.charCodeAt(j + 1);
      if (j >= 0 && (j + 1 >= line.length || next === 32 || next === 9)) {
        out.push(line.slice(i + 1, j));
        i = j + 1;
        continue;
      }
      let k = i + 1;
      while (k < n && line.charCodeAt(k) !== 32 && line.charCodeAt(k) !== 9) k++;
      out.push(line.slice(i, k));
      i = k;
    } else {
      let j = i + 1;
      while (j < n) {
        const d = line.charCodeAt(j);
        if (d === 32 || d === 9) break;
        j++;
      }
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

describe('tokenize', () => {
  const line = fc
    .array(fc.constantFrom('a', 'bc', ' ', '  ', '\t', '"', '\\', '\\"', '[', ']', '-', 'n', 't', '::1'), {
      maxLength: 40,
    })
    .map((parts) => parts.join(''));

  it('splits like the character-by-character reference (quotes, escapes, brackets, tabs)', () => {
    fc.assert(
      fc.property(line, fc.integer({ min: 1, max: 8 }), fc.boolean(), (l, max, brackets) => {
        expect(tokenize(l, max, brackets)).toEqual(tokenizeReference(l, max, brackets));
      }),
      { numRuns: 2000 },
    );
  });
});
