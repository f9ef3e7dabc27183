import { describe, expect, it } from 'vitest';
import { prng } from '../engine/generate.ts';
import { HOUR_MS, type KeyUpsert, mergeKey } from './first-seen-keys.ts';

const DAY = 24 * HOUR_MS;

/** A batch's contribution: a few events of one key at random times over `days`. */
function upsert(r: () => number, days: number): KeyUpsert {
  const hours: Record<string, number> = {};
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < 1 + Math.floor(r() * 4); i++) {
    const t = Math.floor(r() * days * DAY);
    const hour = Math.floor(t / HOUR_MS) * HOUR_MS;
    hours[String(hour)] = Math.min(hours[String(hour)] ?? t, t);
    first = Math.min(first, t);
    last = Math.max(last, hour);
  }
  return { rule: 'r@1', key: '["k"]', group: '[]', values: ['k'], first, last, hours };
}

function apply(ups: KeyUpsert[], keepMs?: number) {
  let doc: ReturnType<typeof mergeKey>;
  for (const u of ups) doc = mergeKey(doc, u, keepMs) ?? doc;
  return doc;
}

describe('merging first-seen key upserts', () => {
  it('gives the same document in any order, with and without dropping old hours', () => {
    const r = prng(4);
    for (let round = 0; round < 50; round++) {
      const ups = Array.from({ length: 12 }, () => upsert(r, 20));
      const shuffled = [...ups].sort(() => r() - 0.5);
      for (const keep of [undefined, 5 * DAY]) expect(apply(shuffled, keep)).toEqual(apply(ups, keep));
    }
  });

  it('an upsert already held (a redelivered batch, a resent record) changes nothing', () => {
    const r = prng(9);
    const ups = Array.from({ length: 8 }, () => upsert(r, 10));
    const doc = apply(ups, 3 * DAY)!;
    for (const u of ups) expect(mergeKey(doc, u, 3 * DAY)).toBeUndefined();
  });

  it('keeps the earliest event of every hour and drops hours that end before the latest hour’s end − keep', () => {
    const u = (t: number): KeyUpsert => ({
      rule: 'r@1',
      key: '["k"]',
      group: '[]',
      values: ['k'],
      first: t,
      last: Math.floor(t / HOUR_MS) * HOUR_MS,
      hours: { [String(Math.floor(t / HOUR_MS) * HOUR_MS)]: t },
    });
    const doc = apply(
      [u(HOUR_MS - 1), u(10), u(5 * HOUR_MS + 7), u(2 * HOUR_MS + 9), u(2 * HOUR_MS + 3), u(2 * HOUR_MS + 5)],
      4 * HOUR_MS,
    )!;
    expect(doc.first).toBe(10);
    expect(doc.last).toBe(5 * HOUR_MS);
    // the hour [0, 1h) ends before 6h − 4h: dropped; [2h, 3h) keeps its earliest event
    expect(doc.hours).toEqual({
      [String(2 * HOUR_MS)]: 2 * HOUR_MS + 3,
      [String(5 * HOUR_MS)]: 5 * HOUR_MS + 7,
    });
    // a later event in an hour the key has changes nothing: no write
    expect(mergeKey(doc, u(5 * HOUR_MS + 99), 4 * HOUR_MS)).toBeUndefined();
    expect(doc.chunk).toBe(0);
  });
});
