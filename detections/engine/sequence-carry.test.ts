/**
 * The sequence state carried between runs (kinds/sequence.ts, matchSequence), without
 * Elasticsearch: over random events cut into random consecutive ranges, matching each range's
 * candidates after the state kept at its start — the state encoded and decoded as it is stored —
 * gives exactly the detections of one pass over the whole span. Rules with repeat and maximum
 * counts, `until`, an absent step between steps and a trailing absent step.
 */
import { describe, expect, it } from 'vitest';
import type { FilterExpr, SequenceRule } from '../../parser/ir.ts';
import { decodeState, encodeState } from '../partials/sequence-state.ts';
import { prng } from './generate.ts';
import { matchSequence, type SequenceCarry } from './kinds/sequence.ts';
import type { SeqEvent } from './sequence.ts';
import { sequenceRule } from './testing.ts';

const M = 60_000;
const is = (value: string): FilterExpr => ({ op: 'cmp', field: 'k', cmp: '==', value });

const rules: SequenceRule[] = [
  sequenceRule('repeat-then', {
    by: ['u'],
    maxSpanMs: 15 * M,
    steps: [
      { name: 'a', filter: is('a'), minCount: 4, absent: false },
      { name: 'b', filter: is('b'), minCount: 1, absent: false },
    ],
    until: is('r'),
  }),
  sequenceRule('bounded-gap', {
    by: ['u'],
    maxSpanMs: 10 * M,
    steps: [
      { name: 'a', filter: is('a'), minCount: 2, maxCount: 4, absent: false },
      { name: 'no_c', filter: is('c'), minCount: 1, absent: true },
      { name: 'b', filter: is('b'), minCount: 1, absent: false },
    ],
  }),
  sequenceRule('trailing', {
    by: ['u'],
    maxSpanMs: 10 * M,
    steps: [
      { name: 'b', filter: is('b'), minCount: 1, absent: false },
      { name: 'no_c', filter: is('c'), minCount: 1, absent: true },
    ],
  }),
];

function events(seed: number, n: number, span: number): SeqEvent[] {
  const r = prng(seed);
  const out: SeqEvent[] = [];
  for (let i = 0; i < n; i++) {
    const ts = Math.floor(r() * span);
    const k = ['a', 'a', 'a', 'b', 'c', 'r'][Math.floor(r() * 6)]!;
    const u = ['u0', 'u0', 'u1', 'u2', 'u3'][Math.floor(r() * 5)]!;
    out.push({
      ts,
      id: `e${String(i).padStart(5, '0')}`,
      event: { k, u, '@timestamp': new Date(ts).toISOString() },
    });
  }
  return out.sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : 1));
}

const ids = (ds: { id: string; eventCount: number; metrics: Record<string, number | null> }[]) =>
  ds.map((d) => ({ id: d.id, n: d.eventCount, metrics: d.metrics })).sort((a, b) => (a.id < b.id ? -1 : 1));

describe('sequence state carried across runs', () => {
  for (const rule of rules)
    it(`${rule.id}: consecutive runs with the state equal one pass`, () => {
      let total = 0;
      for (let seed = 1; seed <= 30; seed++) {
        const span = 3 * 60 * M;
        const all = events(seed, 400, span);
        const onePass = matchSequence(rule, all, span, undefined, false).detections;
        const r = prng(seed * 7);
        let state: SequenceCarry | undefined;
        let from = 0;
        /** Where the next run starts reading: its range start, or earlier after a state without events. */
        let read = 0;
        const found: typeof onePass = [];
        while (from < span) {
          // ranges from a few seconds to 40 minutes, so matches and absences straddle them
          const to = Math.min(span, from + 1 + Math.floor(r() * 40 * M));
          const mine = all.filter((e) => e.ts >= read && e.ts < to);
          const res = matchSequence(rule, mine, to, state, true);
          found.push(...res.detections);
          // through the stored form, with its events or (past the size cap) without them: then
          // the next run re-reads from one `within` before its start or the earliest pending end
          const keep = r() < 0.7;
          state = decodeState(JSON.parse(JSON.stringify(encodeState(res.next!, keep))), to);
          read = to;
          if (!keep) {
            let low = to - rule.sequence.maxSpanMs;
            for (const p of state.partitions.values())
              if (p.pending) low = Math.min(low, p.pending.ts - rule.sequence.maxSpanMs);
            read = low + 1;
          }
          from = to;
        }
        expect(ids(found), `${rule.id} seed ${seed}`).toEqual(ids(onePass));
        total += onePass.length;
      }
      expect(total).toBeGreaterThan(100);
    });
});
