import { describe, expect, it } from 'vitest';
import { parseFilterExpression } from './index.ts';
import type { BaselineRule, FirstSeenRule, SequenceRule, ThresholdRule } from './ir.ts';
import { parse, parseOk, rule } from './test-helpers.ts';

const filterOf = (where: string) => {
  const [r] = parseOk(rule(`  where ${where}`));
  return r!.filter;
};

describe('metadata and schedule', () => {
  it('lowers every metadata clause', () => {
    const [r] = parseOk(`
# comment
rule cred-1 {
  title "Title"
  description "Desc"
  severity critical
  risk 88
  tags ["API2:2023", "T1110.004", "custom"]
  owner "secops"
  enabled false
  schedule every 2m lookback 30m lateness 30s
  where user.name exists
}`);
    expect(r).toMatchObject({
      irVersion: 1,
      id: 'cred-1',
      title: 'Title',
      description: 'Desc',
      severity: 'critical',
      risk: 88,
      tags: ['API2:2023', 'T1110.004', 'custom'],
      owner: 'secops',
      enabled: false,
      kind: 'filter',
      schedule: { intervalMs: 120_000, lookbackMs: 1_800_000, latenessMs: 30_000 },
      source: { file: 'test.gwr', line: 3 },
    });
    expect(r!.version).toMatch(/^[0-9a-f]{16}$/);
  });

  it('defaults risk from severity and lookback from window + interval + lateness', () => {
    const [r] = parseOk(rule('  threshold {\n    window 10m\n    metric n = count()\n    having n > 1\n  }'));
    expect(r!.risk).toBe(21);
    expect(r!.enabled).toBe(true);
    expect(r!.schedule).toEqual({ intervalMs: 300_000, lookbackMs: 960_000, latenessMs: 60_000 });
    expect(r!.output.evidence).toEqual({ sampleSize: 10 });
    expect(r!.output.title.source).toBe('T');
  });

  it('gives an edited rule a new version and an unchanged rule the same one', () => {
    const a = parseOk(rule('  where user.name == "a"'))[0]!;
    const b = parseOk(`# a comment changes nothing\n${rule('  where user.name == "a"')}`)[0]!;
    const c = parseOk(rule('  where user.name == "b"'))[0]!;
    expect(a.version).toBe(b.version);
    expect(a.version).not.toBe(c.version);
  });

  it('changes the version when a macro the rule uses changes', () => {
    const v = (m: string) => parseOk(`macro m = ${m}\n${rule('  where m')}`)[0]!.version;
    expect(v('user.name == "a"')).not.toBe(v('user.name == "b"'));
  });
});

describe('filters', () => {
  it('comparisons with typed values', () => {
    expect(filterOf('http.response.status_code >= 500')).toEqual({
      op: 'cmp',
      field: 'http.response.status_code',
      cmp: '>=',
      value: 500,
    });
    expect(filterOf('gatewatch.auth.present == false')).toEqual({
      op: 'cmp',
      field: 'gatewatch.auth.present',
      cmp: '==',
      value: false,
    });
    expect(filterOf('source.ip != "192.0.2.1"')).toMatchObject({ cmp: '!=', value: '192.0.2.1' });
    expect(filterOf('event.outcome == "fail\\"ure"')).toMatchObject({ value: 'fail"ure' });
  });

  it('in, not in, and/or/not with precedence and parentheses', () => {
    expect(filterOf('a.b.c == 1 or user.name == "x"'.replace('a.b.c', 'http.request.bytes'))).toEqual({
      op: 'or',
      args: [
        { op: 'cmp', field: 'http.request.bytes', cmp: '==', value: 1 },
        { op: 'cmp', field: 'user.name', cmp: '==', value: 'x' },
      ],
    });
    expect(filterOf('user.name == "a" or user.id == "b" and not url.path == "/c"')).toEqual({
      op: 'or',
      args: [
        { op: 'cmp', field: 'user.name', cmp: '==', value: 'a' },
        {
          op: 'and',
          args: [
            { op: 'cmp', field: 'user.id', cmp: '==', value: 'b' },
            { op: 'not', arg: { op: 'cmp', field: 'url.path', cmp: '==', value: '/c' } },
          ],
        },
      ],
    });
    expect(
      filterOf('(user.name == "a" or user.id == "b") and http.response.status_code not in (401, 403)'),
    ).toEqual({
      op: 'and',
      args: [
        {
          op: 'or',
          args: [
            { op: 'cmp', field: 'user.name', cmp: '==', value: 'a' },
            { op: 'cmp', field: 'user.id', cmp: '==', value: 'b' },
          ],
        },
        { op: 'not', arg: { op: 'in', field: 'http.response.status_code', values: [401, 403] } },
      ],
    });
  });

  it('wildcards and string operators, with nocase and value lists', () => {
    expect(filterOf('gatewatch.route like "/api/*/login"')).toEqual({
      op: 'wildcard',
      field: 'gatewatch.route',
      pattern: '/api/*/login',
      caseInsensitive: false,
    });
    expect(filterOf('user_agent.original contains ("curl", "python") nocase')).toEqual({
      op: 'or',
      args: [
        { op: 'contains', field: 'user_agent.original', value: 'curl', caseInsensitive: true },
        { op: 'contains', field: 'user_agent.original', value: 'python', caseInsensitive: true },
      ],
    });
    expect(filterOf('url.path startswith "/admin"')).toMatchObject({ op: 'startswith', value: '/admin' });
    expect(filterOf('url.path endswith ".php"')).toMatchObject({ op: 'endswith', value: '.php' });
  });

  it('regex validated by RE2 with flags folded in', () => {
    expect(filterOf('url.query matches /(^|&)api[_-]?key=/i')).toEqual({
      op: 'regex',
      field: 'url.query',
      pattern: '(?i)(^|&)api[_-]?key=',
    });
    expect(filterOf('url.path matches /^\\/v[0-9]+\\//')).toEqual({
      op: 'regex',
      field: 'url.path',
      pattern: '^/v[0-9]+/',
    });
  });

  it('cidr membership, canonicalised', () => {
    expect(filterOf('source.ip cidr ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7")')).toEqual({
      op: 'cidr',
      field: 'source.ip',
      cidrs: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32'],
    });
  });

  it('exists, true, and flattened sub-keys', () => {
    expect(filterOf('gatewatch.extra.tenant exists')).toEqual({
      op: 'exists',
      field: 'gatewatch.extra.tenant',
    });
    expect(parseFilterExpression('true').filter).toEqual({ op: 'true' });
  });

  it('named lists from files and inline, converted to the field type', () => {
    const files = { 'ips.txt': '# bad\n192.0.2.1\n\n 198.51.100.0/24 \n', 'codes.txt': '401\n403\n' };
    const [r] = parseOk(
      `list bad = file("ips.txt")\nlist codes = file("codes.txt")\nlist uas = ["sqlmap", "nikto"]\n${rule(
        '  where source.ip cidr list bad and http.response.status_code in list codes and user_agent.original contains list uas nocase',
      )}`,
      files,
    );
    expect(r!.filter).toEqual({
      op: 'and',
      args: [
        { op: 'cidr', field: 'source.ip', cidrs: ['192.0.2.1/32', '198.51.100.0/24'] },
        { op: 'in', field: 'http.response.status_code', values: [401, 403] },
        {
          op: 'or',
          args: [
            { op: 'contains', field: 'user_agent.original', value: 'sqlmap', caseInsensitive: true },
            { op: 'contains', field: 'user_agent.original', value: 'nikto', caseInsensitive: true },
          ],
        },
      ],
    });
  });

  it('macros expand (nested), includes bring macros and lists', () => {
    const files = {
      'common.gwr':
        'include "deeper.gwr"\nmacro login = http.request.method == "POST" and gatewatch.route like "*/login"',
      'deeper.gwr': 'list nets = ["10.0.0.0/8"]\nmacro internal = source.ip cidr list nets',
    };
    const [r] = parseOk(
      `include "common.gwr"\nmacro fail = login and not internal\n${rule('  where fail')}`,
      files,
    );
    expect(r!.filter).toEqual({
      op: 'and',
      args: [
        { op: 'cmp', field: 'http.request.method', cmp: '==', value: 'POST' },
        { op: 'wildcard', field: 'gatewatch.route', pattern: '*/login', caseInsensitive: false },
        { op: 'not', arg: { op: 'cidr', field: 'source.ip', cidrs: ['10.0.0.0/8'] } },
      ],
    });
  });

  it('soft keywords work as names', () => {
    const [r] = parseOk(`macro window = user.name == "x"\n${rule('  where window and tags == "a"')}`);
    expect(r!.filter).toEqual({
      op: 'and',
      args: [
        { op: 'cmp', field: 'user.name', cmp: '==', value: 'x' },
        { op: 'cmp', field: 'tags', cmp: '==', value: 'a' },
      ],
    });
  });

  it('parseFilterExpression for event search', () => {
    expect(parseFilterExpression('source.ip cidr "10.0.0.0/8" and http.response.status_code == 500')).toEqual(
      {
        filter: {
          op: 'and',
          args: [
            { op: 'cidr', field: 'source.ip', cidrs: ['10.0.0.0/8'] },
            { op: 'cmp', field: 'http.response.status_code', cmp: '==', value: 500 },
          ],
        },
        diagnostics: [],
      },
    );
    const bad = parseFilterExpression('source.ipp == "1.2.3.4" )');
    expect(bad.filter).toBeUndefined();
    expect(bad.diagnostics.map((d) => d.code)).toEqual(['syntax']);
    const unknown = parseFilterExpression('source.ipp == "1.2.3.4"');
    expect(unknown.diagnostics.map((d) => d.hint)).toEqual(['did you mean `source.ip`?']);
    expect(parseFilterExpression('').diagnostics[0]!.message).toBe('empty filter expression');
  });
});

describe('threshold', () => {
  it('group by, sliding window, every metric function, having', () => {
    const [r] = parseOk(
      rule(`  where http.request.method == "POST"
  threshold {
    group by source.ip, user_agent.original
    window 10m sliding every 2m
    metric n = count()
    metric fails = count(event.outcome == "failure")
    metric users = distinct_count(user.name)
    metric total = sum(http.response.bytes)
    metric mean = avg(http.response.bytes)
    metric lo = min(http.response.bytes)
    metric hi = max(http.response.bytes)
    metric p95 = percentile(gatewatch.upstream_latency_ms, 95)
    metric fr = ratio(event.outcome == "failure")
    metric fr2 = ratio(event.outcome == "failure", http.response.status_code >= 400)
    having (n >= 20 or fails > 10) and not users < 5 and fr2 >= fr
  }`),
    ) as ThresholdRule[];
    expect(r!.kind).toBe('threshold');
    const failure = { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' };
    expect(r!.threshold).toEqual({
      groupBy: ['source.ip', 'user_agent.original'],
      window: { sizeMs: 600_000, mode: 'sliding', slideMs: 120_000 },
      metrics: [
        { name: 'n', fn: 'count' },
        { name: 'fails', fn: 'count', where: failure },
        { name: 'users', fn: 'distinct_count', field: 'user.name' },
        { name: 'total', fn: 'sum', field: 'http.response.bytes' },
        { name: 'mean', fn: 'avg', field: 'http.response.bytes' },
        { name: 'lo', fn: 'min', field: 'http.response.bytes' },
        { name: 'hi', fn: 'max', field: 'http.response.bytes' },
        { name: 'p95', fn: 'percentile', field: 'gatewatch.upstream_latency_ms', p: 95 },
        { name: 'fr', fn: 'ratio', where: failure },
        {
          name: 'fr2',
          fn: 'ratio',
          where: failure,
          of: { op: 'cmp', field: 'http.response.status_code', cmp: '>=', value: 400 },
        },
      ],
      having: {
        op: 'and',
        args: [
          {
            op: 'or',
            args: [
              { op: 'cmp', metric: 'n', cmp: '>=', value: 20 },
              { op: 'cmp', metric: 'fails', cmp: '>', value: 10 },
            ],
          },
          { op: 'not', arg: { op: 'cmp', metric: 'users', cmp: '<', value: 5 } },
          { op: 'cmp_metric', metric: 'fr2', cmp: '>=', other: 'fr' },
        ],
      },
    });
  });

  it('tumbling is the default and can be written', () => {
    for (const w of ['window 5m', 'window 5m tumbling']) {
      const [r] = parseOk(
        rule(`  threshold {\n    ${w}\n    metric n = count()\n    having n > 1\n  }`),
      ) as ThresholdRule[];
      expect(r!.threshold.window).toEqual({ sizeMs: 300_000, mode: 'tumbling' });
      expect(r!.threshold.groupBy).toEqual([]);
    }
  });
});

describe('sequence', () => {
  it('steps with repetition, absence, until, join keys and span', () => {
    const [r] = parseOk(
      rule(`  sequence {
    by user.name, source.ip
    within 10m
    step fails = event.outcome == "failure" repeat >= 20
    step ok = event.outcome == "success"
    step no_logout = absent event.action == "logout"
    step burst = http.request.method == "DELETE" repeat 2..5
    step three = http.request.method == "PUT" repeat 3
    until event.action == "password-reset"
  }
  incident {
    title "{fails.count} failures for {user.name} until {match.end}"
  }`),
    ) as SequenceRule[];
    expect(r!.sequence).toEqual({
      by: ['user.name', 'source.ip'],
      maxSpanMs: 600_000,
      steps: [
        {
          name: 'fails',
          filter: { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' },
          minCount: 20,
          absent: false,
        },
        {
          name: 'ok',
          filter: { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'success' },
          minCount: 1,
          absent: false,
        },
        {
          name: 'no_logout',
          filter: { op: 'cmp', field: 'event.action', cmp: '==', value: 'logout' },
          minCount: 0,
          absent: true,
        },
        { name: 'burst', filter: expect.anything(), minCount: 2, maxCount: 5, absent: false },
        { name: 'three', filter: expect.anything(), minCount: 3, maxCount: 3, absent: false },
      ],
      until: { op: 'cmp', field: 'event.action', cmp: '==', value: 'password-reset' },
    });
    expect(r!.output.title.parts).toEqual([
      { ref: 'fails.count', kind: 'builtin' },
      { text: ' failures for ' },
      { ref: 'user.name', kind: 'field' },
      { text: ' until ' },
      { ref: 'match.end', kind: 'builtin' },
    ]);
    expect(r!.schedule.lookbackMs).toBe(600_000 + 300_000 + 60_000);
  });
});

describe('first_seen and baseline', () => {
  it('first_seen tuple with group and history', () => {
    const [r] = parseOk(
      rule(`  first_seen {
    values source.as.number, source.geo.country_iso_code
    by gatewatch.api_key.fingerprint
    history 30d
    ignore new groups
  }`),
    ) as FirstSeenRule[];
    expect(r!.firstSeen).toEqual({
      fields: ['source.as.number', 'source.geo.country_iso_code'],
      groupBy: ['gatewatch.api_key.fingerprint'],
      historyMs: 30 * 86_400_000,
      ignoreNewGroups: true,
    });
  });

  it('baseline with ratio and stddev comparisons', () => {
    const [r] = parseOk(
      rule(`  baseline {
    group by gatewatch.route
    metric errors = count()
    window 10m
    history 7d
    spike stddev >= 3.5
    min_buckets 24
    having errors >= 20
  }
  incident {
    summary "{errors} vs {baseline.mean}"
  }`),
    ) as BaselineRule[];
    expect(r!.baseline).toEqual({
      groupBy: ['gatewatch.route'],
      metric: { name: 'errors', fn: 'count' },
      windowMs: 600_000,
      historyMs: 7 * 86_400_000,
      comparison: { kind: 'stddev', min: 3.5 },
      minHistoryBuckets: 24,
      having: { op: 'cmp', metric: 'errors', cmp: '>=', value: 20 },
    });
    const [r2] = parseOk(
      rule('  baseline {\n    metric n = count()\n    window 1h\n    history 2d\n    spike ratio >= 3\n  }'),
    ) as BaselineRule[];
    expect(r2!.baseline.comparison).toEqual({ kind: 'ratio', min: 3 });
    expect(r2!.baseline.minHistoryBuckets).toBe(1);
  });
});

describe('output', () => {
  it('templates, entities, suppression and evidence', () => {
    const [r] = parseOk(
      rule(`  threshold {
    group by source.ip, user.name
    window 5m
    metric n = count()
    having n > 3
  }
  incident {
    title "Many from {source.ip} ({{literal}})"
    summary "{n} events for {user.name} in [{window.start}, {window.end})"
    entities ip: source.ip, user: user.name
    suppress by source.ip for 1h
    evidence 25 fields url.path, event.original
  }`),
    );
    expect(r!.output).toEqual({
      title: {
        source: 'Many from {source.ip} ({{literal}})',
        parts: [{ text: 'Many from ' }, { ref: 'source.ip', kind: 'field' }, { text: ' ({literal})' }],
      },
      summary: {
        source: '{n} events for {user.name} in [{window.start}, {window.end})',
        parts: [
          { ref: 'n', kind: 'metric' },
          { text: ' events for ' },
          { ref: 'user.name', kind: 'field' },
          { text: ' in [' },
          { ref: 'window.start', kind: 'builtin' },
          { text: ', ' },
          { ref: 'window.end', kind: 'builtin' },
          { text: ')' },
        ],
      },
      entities: [
        { role: 'ip', field: 'source.ip' },
        { role: 'user', field: 'user.name' },
      ],
      suppress: { keyFields: ['source.ip'], periodMs: 3_600_000 },
      evidence: { sampleSize: 25, fields: ['url.path', 'event.original'] },
    });
  });

  it('suppression key defaults to the rule keys', () => {
    const [r] = parseOk(
      rule(
        '  threshold {\n    group by user.name\n    window 5m\n    metric n = count()\n    having n > 3\n  }\n  incident {\n    suppress for 30m\n  }',
      ),
    );
    expect(r!.output.suppress).toEqual({ keyFields: ['user.name'], periodMs: 1_800_000 });
  });
});

describe('files', () => {
  it('several rules per file, all lowered; IR is JSON-serialisable', () => {
    const text = `${rule('  where user.name == "a"', 'one')}\n${rule('  where user.name == "b"', 'two')}`;
    const rules = parseOk(text);
    expect(rules.map((r) => r.id)).toEqual(['one', 'two']);
    expect(JSON.parse(JSON.stringify(rules))).toEqual(rules);
  });

  it('no rules are lowered from a file with errors, but all errors are reported', () => {
    const r = parse(
      `${rule('  where user.nam == "a"', 'one')}\n${rule('  where user.name == 1', 'two')}\n${rule('  where user.name == "ok"', 'three')}`,
    );
    expect(r.diagnostics.map((d) => d.code)).toEqual(['unknown-field', 'type-mismatch']);
    expect(r.rules.map((x) => x.id)).toEqual(['three']);
  });
});
