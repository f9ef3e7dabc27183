/**
 * Incident tables fit the width and keep what tells rows apart visible (issue 19, item 11).
 */
import { describe, expect, it } from 'vitest';
import { makeIncident } from '../api/testing/fixtures.ts';
import { distinctiveUserAgent, entityOf, incidentListTable, incidentTable } from './incident-table.ts';
import { cut, renderTable } from './table.ts';

const NUCLEI =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/105.0.0.0 Safari/537.36 Nuclei - Open-source project (github.com/projectdiscovery/nuclei)';

/** Five api-key-new-asn incidents of two keys, a scanner, a long-titled one. */
function incidents() {
  const asn = [14061, 16509, 15169, 8075, 7922].map((as, n) =>
    makeIncident(n, {
      rule: { id: 'api-key-new-asn', version: '1', title: 'API key from a new ASN', kind: 'first_seen' },
      group: {
        'gatewatch.api_key.fingerprint':
          n === 0 ? '5cdcf9cba60a8125edc3d2c8e6d68e87' : '65dc0e17eeee903c591be1f446242eb1',
        'source.as.number': as,
      },
      title: `API key 65dc0e17eeee903c591be1f446242eb1 used from new network AS${as}`,
    }),
  );
  const scanner = makeIncident(9, {
    rule: { id: 'scanner-user-agent', version: '1', title: 'Scanner', kind: 'threshold' },
    group: { 'source.ip': '159.203.242.46', 'user_agent.original': NUCLEI },
    title: `Scanner ${NUCLEI} from 159.203.242.46`,
  });
  const url = makeIncident(10, {
    rule: { id: 'api-key-in-url', version: '1', title: 'Key in URL', kind: 'match' },
    group: {},
    entities: { api_key: ['74301f88b1bfe435d614ed4ec11a8687'], route: ['/api/v1/reports/daily'] },
  });
  return [...asn, scanner, url];
}

describe('incident tables', () => {
  it('shows the telling part of an entity', () => {
    expect(distinctiveUserAgent(NUCLEI)).toBe('Nuclei');
    expect(distinctiveUserAgent('sqlmap/1.7.2#stable (https://sqlmap.org)')).toBe('sqlmap/1.7.2#stable');
    expect(
      distinctiveUserAgent('Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)'),
    ).toBe('Nmap Scripting Engine');
    const ua =
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15';
    expect(distinctiveUserAgent(ua)).toBe(ua);
    const [first, second] = incidents();
    expect(entityOf(first!)).toBe('key 5cdcf9cb… · AS14061');
    expect(entityOf(second!)).toBe('key 65dc0e17… · AS16509');
    expect(entityOf(incidents()[5]!)).toBe('159.203.242.46 · Nuclei');
    expect(entityOf(incidents()[6]!)).toBe('key 74301f88… · /api/v1/reports/daily');
  });

  for (const width of [80, 100, 120, 160, 240]) {
    it(`fits ${width} columns, every row told apart by what it shows`, () => {
      for (const text of [incidentTable(incidents(), width), incidentListTable(incidents(), width)]) {
        const lines = text.split('\n');
        for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(width);
        // the ASN of every api-key-new-asn row and the scanner's tool stay visible
        for (const as of [14061, 16509, 15169, 8075, 7922]) expect(text).toContain(`AS${as}`);
        expect(text).toContain('Nuclei');
        const rows = lines.slice(1);
        expect(new Set(rows).size).toBe(rows.length);
      }
    });
  }

  it('cuts cells at the end or in the middle', () => {
    expect(cut('abcdefghij', 5)).toBe('abcd…');
    expect(cut('abcdefghij', 5, 'middle')).toBe('ab…ij');
    expect(cut('abc', 5, 'middle')).toBe('abc');
    const text = renderTable(
      [{ header: 'a' }, { header: 'b', shrink: 1, min: 4 }, { header: 'n', right: true }],
      [['x', 'a long value', '7']],
      12,
    );
    expect(text.split('\n')).toEqual(['a  b       n', 'x  a lon…  7']);
  });
});
