import { beforeAll, describe, expect, it } from 'vitest';
import { sampleLines } from '../ingest/formats/testing/helpers.ts';
import { createNormalizeContext, normalizeLine } from '../ingest/transforms/normalize.ts';
import { loadRuleFiles } from '../parser/index.ts';
import type { RuleIR } from '../parser/ir.ts';
import { coverageReport, fieldStatsOf, neededFields, requiredFields, ruleNeeds } from './coverage.ts';

let rules: RuleIR[];
beforeAll(async () => {
  rules = (await loadRuleFiles(['detections/rules'])).rules;
});

const rule = (id: string) => rules.find((r) => r.id === id)!;

describe('what a rule needs', () => {
  it('reads required fields off filters: and adds, or keeps only what every branch needs, not drops', () => {
    expect([
      ...requiredFields({
        op: 'and',
        args: [
          { op: 'exists', field: 'a' },
          {
            op: 'or',
            args: [
              { op: 'cmp', field: 'b', cmp: '==', value: 1 },
              {
                op: 'and',
                args: [
                  { op: 'exists', field: 'b' },
                  { op: 'exists', field: 'c' },
                ],
              },
            ],
          },
          { op: 'not', arg: { op: 'exists', field: 'd' } },
          { op: 'cmp', field: 'e', cmp: '!=', value: 1 },
        ],
      }),
    ]).toEqual(['a', 'b']);
  });

  it('stuffing needs no usernames (it holds on failure ratios), the ASN rule a network, JA3 a fingerprint', () => {
    expect(ruleNeeds(rule('credential-stuffing-single-source')).fields).not.toContain('user.name');
    expect(ruleNeeds(rule('credential-stuffing-distributed-asn')).fields).toContain('gatewatch.network.id');
    expect(ruleNeeds(rule('credential-stuffing-distributed-asn')).fields).not.toContain('source.as.number');
    expect(ruleNeeds(rule('credential-stuffing-distributed-ja3')).fields).toContain('tls.client.ja3');
    expect(ruleNeeds(rule('server-error-spike-per-route')).history).toEqual({
      ms: 7 * 86_400_000,
      minimumMs: 72 * 600_000,
      kind: 'baseline',
    });
  });
});

describe('coverage of real gateway logs without GeoIP/ASN databases', () => {
  it('says which rules cannot fire, and why', () => {
    const ctx = createNormalizeContext({
      name: 'edge',
      identity: { fingerprintSecret: 'coverage-test-secret' },
    });
    const events = ['nginx.access', 'kong.http_log', 'envoy.access'].flatMap((f) =>
      sampleLines(f).flatMap((l) => {
        const r = normalizeLine(l, ctx);
        return r.ok ? r.events : [];
      }),
    );
    expect(events.length).toBeGreaterThan(5);
    const stats = fieldStatsOf(events, neededFields(rules));
    // The sample lines come from several years; as the logs of one hour:
    stats.span = { start: 0, end: 3_600_000 };
    const report = coverageReport(rules, stats, {
      asnDatabase: false,
      geoipDatabase: false,
    });
    const verdict = (id: string) => report.rules.find((r) => r.rule === id)!;
    expect(verdict('api-key-impossible-travel')).toMatchObject({ verdict: 'cannot fire' });
    expect(verdict('api-key-impossible-travel').reasons.join()).toContain('no country');
    expect(verdict('credential-stuffing-distributed-ja3').reasons.join()).toContain('no TLS fingerprint');
    expect(verdict('server-error-spike-per-route').reasons.join()).toContain('history longer than the data');
    // Networks fall back to address blocks: the network rules keep working without an ASN database.
    expect(verdict('credential-stuffing-distributed-asn').verdict).toBe('can fire');
    expect(report.summary).toMatch(
      new RegExp(`^\\d+ of ${report.rules.length} rules cannot fire on these logs: `),
    );
    expect(report.summary).toContain('no country (2)');
    expect(report.warnings.join()).toContain('no ASN database configured');
  });
});
