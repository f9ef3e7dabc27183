import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRuleFiles } from '../parser/index.ts';
import type { RuleIR } from '../parser/ir.ts';
import {
  formatRuleTestReport,
  loadRuleTests,
  parseRuleTests,
  type RuleTestResult,
  runRuleTests,
  sameMetric,
  substitute,
} from './rule-tests.ts';

const RULES_DIR = fileURLToPath(new URL('./rules', import.meta.url));

let rules: RuleIR[];
beforeAll(async () => {
  const loaded = await loadRuleFiles([RULES_DIR]);
  expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  rules = loaded.rules;
});

describe('built-in rule tests', () => {
  let results: RuleTestResult[];
  beforeAll(async () => {
    results = await runRuleTests(rules, loadRuleTests([RULES_DIR]));
  });

  it('all pass', () => {
    const failed = results.filter((r) => !r.passed);
    expect(failed.length, formatRuleTestReport(failed)).toBe(0);
  });

  it('cover every built-in rule with a firing and a non-firing case', () => {
    for (const rule of rules) {
      const mine = results.filter((r) => r.rule === rule.id);
      expect(
        mine.some((r) => r.expected.length > 0),
        `${rule.id}: a case that fires`,
      ).toBe(true);
      expect(
        mine.some((r) => r.expected.length === 0),
        `${rule.id}: a case that must not fire`,
      ).toBe(true);
    }
  });
});

const STUFFING = `
rule: credential-stuffing-single-source
range: { start: -1h, end: +2h }
defaults: { http.request.method: POST, gatewatch.route: /login, http.response.status_code: 401, source.ip: 203.0.113.7, gatewatch.auth.attempt: true, gatewatch.auth.outcome: failure }
cases:
  - name: wrong expectations
    events:
      - { repeat: 30, every: 10s, "@timestamp": +5m, user.name: "user{i%20}" }
    expect:
      - group: { source.ip: 203.0.113.7 }
        metrics: { failures: 25, users: 20 }
      - group: { source.ip: 198.51.100.1 }
  - name: expects silence
    events:
      - { repeat: 30, every: 10s, "@timestamp": +5m, user.name: "user{i%20}" }
    expect: []
`;

describe('failures', () => {
  it('report missing, unexpected and different incidents field by field', async () => {
    const results = await runRuleTests(rules, parseRuleTests(STUFFING, 'inline.yaml'));
    expect(results.map((r) => r.passed)).toEqual([false, false]);
    const [wrong, silent] = results as [RuleTestResult, RuleTestResult];
    expect(wrong.diff.map((d) => d.kind)).toEqual(['different', 'missing']);
    expect(silent.diff.map((d) => d.kind)).toEqual(['unexpected']);
    const report = formatRuleTestReport(results);
    expect(report).toContain('FAIL credential-stuffing-single-source > wrong expectations');
    expect(report).toContain('metrics.failures: expected 25, actual 30');
    expect(report).toContain('- missing incident: group source.ip="198.51.100.1"');
    expect(report).toContain('+ unexpected incident: group source.ip="203.0.113.7"');
    expect(report.trimEnd().split('\n').at(-1)).toBe('0 passed, 2 failed');
  });

  it('turn malformed cases and unknown rules into failing results', async () => {
    const cases = parseRuleTests(
      `
- name: no expect
  rule: scanner-user-agent
  events: []
- name: bad time
  rule: scanner-user-agent
  events: [{ "@timestamp": 5 }]
  expect: []
- name: unknown rule
  rule: no-such-rule
  events: []
  expect: []
`,
      'bad.yaml',
    );
    const results = await runRuleTests(rules, cases);
    expect(results.every((r) => !r.passed)).toBe(true);
    expect(results.map((r) => r.diagnostics.join(' '))).toEqual([
      expect.stringContaining('missing `expect`'),
      expect.stringContaining('not a time'),
      expect.stringContaining('unknown rule `no-such-rule`'),
    ]);
    expect(parseRuleTests('{ not: [yaml', 'x.yaml')[0]!.diagnostics[0]).toContain('not valid YAML');
  });
});

describe('helpers', () => {
  it('substitutes {i} expressions', () => {
    expect(substitute('u{i}-{i%3}-{i/2}-{i*2+1}-{i:03}-{{i}}', 7)).toBe('u7-1-3-15-007-{i}');
    expect(substitute('/v1/orders/{id}', 7)).toBe('/v1/orders/{id}');
  });

  it('compares metrics rounded to the digits given', () => {
    expect(sameMetric(0.333, 1 / 3)).toBe(true);
    expect(sameMetric(0.33, 1 / 3)).toBe(true);
    expect(sameMetric(0.334, 1 / 3)).toBe(false);
    expect(sameMetric(30, 30)).toBe(true);
    expect(sameMetric(30, 30.4)).toBe(false);
    expect(sameMetric(null, undefined)).toBe(true);
  });

  it('expands defaults, repeat and relative times into nested, typed events', () => {
    const [c] = parseRuleTests(
      `
rule: x
at: 2024-05-01T00:00:00Z
defaults: { source: { as: { number: 64500 } }, http.response.status_code: 401 }
cases:
  - name: n
    events:
      - { repeat: 2, every: 1m, "@timestamp": +1h, source.as.number: "{i+1}", user.name: 7 }
    expect: []
`,
      'x.yaml',
    );
    expect(c!.diagnostics).toEqual([]);
    expect(c!.events).toEqual([
      {
        '@timestamp': '2024-05-01T01:00:00.000Z',
        source: { as: { number: 1 } },
        http: { response: { status_code: 401 } },
        user: { name: '7' },
        event: { id: 't0-000000' },
      },
      {
        '@timestamp': '2024-05-01T01:01:00.000Z',
        source: { as: { number: 2 } },
        http: { response: { status_code: 401 } },
        user: { name: '7' },
        event: { id: 't0-000001' },
      },
    ]);
  });
});
