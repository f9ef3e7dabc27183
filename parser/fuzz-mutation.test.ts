/** Fuzz by mutating real rules (the built-in pack): deletions, duplications, swaps, junk. */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatRules, parseRules } from './index.ts';

const PACK = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'detections', 'rules');
const common = readFileSync(join(PACK, '_common.gwr'), 'utf8');
const seeds = readdirSync(PACK)
  .filter((f) => f.endsWith('.gwr'))
  .flatMap((f) => readFileSync(join(PACK, f), 'utf8').split(/\n(?=rule )/));

const JUNK = [
  '{',
  '}',
  '(',
  ')',
  '"',
  '/',
  '#',
  '\n',
  ' and ',
  ' or not ',
  '==',
  '=',
  ',',
  '..',
  ' repeat ',
  ' 5m ',
  'é',
  '\t',
];

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

function mutate(text: string, rand: () => number): string {
  let out = text;
  const n = 1 + Math.floor(rand() * 4);
  for (let k = 0; k < n; k++) {
    const a = Math.floor(rand() * (out.length + 1));
    const len = Math.floor(rand() * 12);
    switch (Math.floor(rand() * 5)) {
      case 0:
        out = out.slice(0, a) + out.slice(a + len);
        break;
      case 1:
        out = out.slice(0, a) + JUNK[Math.floor(rand() * JUNK.length)] + out.slice(a);
        break;
      case 2: {
        const b = Math.floor(rand() * out.length);
        out = out.slice(0, a) + out.slice(b, b + len) + out.slice(a);
        break;
      }
      case 3:
        out = out.slice(0, a);
        break;
      default:
        out = out.slice(0, a) + String.fromCharCode(Math.floor(rand() * 128)) + out.slice(a + 1);
    }
  }
  return out;
}

describe('fuzz: mutated rules', () => {
  it('mutations of every built-in rule never throw or hang (3k cases)', () => {
    const rand = rng(7);
    let slowest = 0;
    let withErrors = 0;
    for (let i = 0; i < 3_000; i++) {
      const text = mutate(seeds[i % seeds.length]!, rand);
      const t0 = performance.now();
      const r = parseRules(text, {
        file: 'm.gwr',
        readInclude: (p) => (p === '_common.gwr' ? { file: p, text: common } : undefined),
        readList: (p) => ({ file: p, text: 'sqlmap\n10.0.0.0/8\n' }),
      });
      const internal = r.diagnostics.filter((d) => d.code === 'internal');
      if (internal.length > 0)
        throw new Error(`internal error on ${JSON.stringify(text)}: ${internal[0]!.message}`);
      if (r.diagnostics.some((d) => d.severity === 'error')) withErrors++;
      const f = formatRules(text);
      if (f.text !== undefined) expect(formatRules(f.text).text).toBe(f.text);
      slowest = Math.max(slowest, performance.now() - t0);
    }
    // The mutations really break things (otherwise this test proves nothing).
    expect(withErrors).toBeGreaterThan(1_500);
    expect(slowest).toBeLessThan(1000);
  });
});
