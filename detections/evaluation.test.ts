import { describe, expect, it } from 'vitest';
import { makeIncident } from '../api/testing/fixtures.ts';
import { type GroundTruthLabel, parseGroundTruth, scoreIncidents } from './evaluation.ts';

const label = (
  id: string,
  cls: string,
  ip: string,
  start = '2026-01-01T00:00:00Z',
  end = '2026-01-01T00:30:00Z',
) => ({ id, class: cls, entities: { ip: [ip] }, start, end }) satisfies GroundTruthLabel;

describe('scoring incidents against tool-neutral ground truth', () => {
  it('counts duplicate incidents for one attack apart from true positives (7 incidents for 3 attacks is not perfect)', () => {
    const labels = [
      label('a', 'credential_stuffing', '203.0.113.1'),
      label('b', 'credential_stuffing', '203.0.113.2'),
      label('c', 'bola', '203.0.113.3'),
    ];
    const inc = (n: number, ip: string) =>
      makeIncident(n, { entities: { ip: [ip] }, entity_key: `ip:${ip}`, rules: ['r'] });
    const incidents = [
      inc(1, '203.0.113.1'),
      inc(2, '203.0.113.1'),
      inc(3, '203.0.113.1'),
      inc(4, '203.0.113.2'),
      inc(5, '203.0.113.2'),
      inc(6, '203.0.113.3'),
      inc(7, '198.51.100.9'),
    ];
    const r = scoreIncidents(labels, incidents);
    expect(r.truePositives).toBe(3);
    expect(r.duplicates).toBe(3);
    expect(r.falsePositives).toBe(1);
    expect(r.precision).toBe(0.75);
    expect(r.recall).toBe(1);
    expect(r.classes.find((c) => c.class === 'credential_stuffing')).toMatchObject({
      attacks: 2,
      found: 2,
      duplicates: 3,
    });
  });

  it("misses attacks out of the incidents' time span, and says which line of a label file is wrong", () => {
    const r = scoreIncidents(
      [label('late', 'scraping', '203.0.113.1', '2026-01-01T05:00:00Z', '2026-01-01T05:10:00Z')],
      [makeIncident(1, { entities: { ip: ['203.0.113.1'] }, entity_key: 'ip:203.0.113.1' })],
    );
    expect(r.classes[0]).toMatchObject({ found: 0, missed: ['late'] });
    expect(() =>
      parseGroundTruth(
        '{"class":"x","entities":{},"start":"2026-01-01","end":"2026-01-01"}\n{"class":1}',
        'l.jsonl',
      ),
    ).toThrow('l.jsonl:2: `class` is missing');
  });
});
