/**
 * Fuzz: random token soups, random characters, and mutations of real rules. The parser must
 * always return structured results (never throw, never an `internal` diagnostic) and finish
 * quickly. 100k+ cases per run, split over two files so both cores are used
 * (see fuzz-mutation.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRules, parseFilterExpression, parseRules } from './index.ts';

const VOCAB = [
  'rule',
  'r1',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ',',
  ':',
  '=',
  '==',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  '..',
  'title',
  'severity',
  'high',
  'risk',
  '50',
  '-3',
  '1.5',
  '1e999',
  'tags',
  '"API2:2023"',
  'owner',
  'enabled',
  'true',
  'false',
  'schedule',
  'every',
  'lookback',
  'lateness',
  '5m',
  '0s',
  '10ms',
  'where',
  'and',
  'or',
  'not',
  'in',
  'list',
  'file',
  'macro',
  'include',
  '"x.gwr"',
  'source.ip',
  'user.name',
  'http.response.status_code',
  'gatewatch.route',
  'nope.field',
  'like',
  'contains',
  'startswith',
  'endswith',
  'nocase',
  'matches',
  '/a(b/',
  '/^x$/i',
  'cidr',
  '"10.0.0.0/8"',
  'exists',
  'threshold',
  'group',
  'by',
  'window',
  'sliding',
  'tumbling',
  'metric',
  'count',
  'distinct_count',
  'ratio',
  'percentile',
  'having',
  'sequence',
  'within',
  'step',
  'absent',
  'repeat',
  'until',
  'first_seen',
  'values',
  'history',
  'ignore',
  'new',
  'groups',
  'baseline',
  'spike',
  'stddev',
  'min_buckets',
  'incident',
  'summary',
  'entities',
  'suppress',
  'for',
  'evidence',
  'fields',
  '"{source.ip}"',
  '"{"',
  '# c\n',
  '\n',
  "'",
  '&&',
  '"unterminated',
  '\u0000',
  'é',
];

function check(text: string, withFormat = true): void {
  const r = parseRules(text, {
    file: 'fuzz.gwr',
    readInclude: () => ({ file: 'inc.gwr', text }),
    readList: () => undefined,
  });
  for (const d of r.diagnostics) {
    if (d.code === 'internal') throw new Error(`internal error on ${JSON.stringify(text)}: ${d.message}`);
    if (!(d.line >= 1 && d.column >= 1) || typeof d.message !== 'string')
      throw new Error(`bad diagnostic ${JSON.stringify(d)}`);
  }
  if (!withFormat) return;
  const f = formatRules(text);
  if (f.diagnostics.some((d) => d.code === 'internal'))
    throw new Error(`internal error formatting ${JSON.stringify(text)}`);
  // Anything the formatter prints must parse again without syntax errors.
  if (f.text !== undefined && formatRules(f.text).text === undefined)
    throw new Error(`formatted text does not parse: ${JSON.stringify(text)}`);
}

/** Deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fuzz: random input', () => {
  it('token soups and random characters never throw or hang (96k cases)', () => {
    const rand = rng(20260101);
    let slowest = 0;
    for (let i = 0; i < 96_000; i++) {
      let text = '';
      if (i % 4 === 3) {
        const n = Math.floor(rand() * 40);
        for (let j = 0; j < n; j++) text += String.fromCharCode(32 + Math.floor(rand() * 95));
      } else {
        const n = Math.floor(rand() * 16);
        for (let j = 0; j < n; j++) text += `${VOCAB[Math.floor(rand() * VOCAB.length)]} `;
      }
      const t0 = performance.now();
      check(text, i % 4 === 0);
      if (i % 8 === 0) expect(() => parseFilterExpression(text)).not.toThrow();
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(slowest).toBeLessThan(1000);
  });

  it('fast-check strings (unicode, control characters)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60, unit: 'binary' }), (s) => {
        check(s);
        expect(parseFilterExpression(s).diagnostics).toBeDefined();
      }),
      { numRuns: 2000 },
    );
  });
});
