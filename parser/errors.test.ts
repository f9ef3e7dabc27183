import { describe, expect, it } from 'vitest';
import { formatDiagnostic, formatRules, parseRules } from './index.ts';
import { errorsOf, parse, rule } from './test-helpers.ts';

const thr = (body: string) => rule(`  threshold {\n${body}\n  }`);

describe('error messages', () => {
  it('unknown field with a suggestion from the schema', () => {
    expect(errorsOf(rule('  where source.ipp == "1.2.3.4" and client.ip exists'))).toMatchInlineSnapshot(`
      "test.gwr:4:9: error: unknown field \`source.ipp\` [unknown-field]
      4 |   where source.ipp == "1.2.3.4" and client.ip exists
        |         ^^^^^^^^^^
        = hint: did you mean \`source.ip\`?
      test.gwr:4:37: error: unknown field \`client.ip\` [unknown-field]
      4 |   where source.ipp == "1.2.3.4" and client.ip exists
        |                                     ^^^^^^^^^
        = hint: did you mean \`source.ip\`?"
    `);
  });

  it('type errors: string vs number, CIDR on a non-ip field, distinct count on a non-aggregatable field', () => {
    expect(
      errorsOf(
        thr(`    window 5m
    metric u = distinct_count(source.geo.location)
    metric s = sum(user.name)
    having u > 1 and s > 1`).replace(
          '  threshold',
          '  where http.response.status_code == "401" and user.name cidr "10.0.0.0/8" and url.path < 3\n  threshold',
        ),
      ),
    ).toMatchInlineSnapshot(`
      "test.gwr:4:38: error: the string "401" does not fit field \`http.response.status_code\`, which is a number [type-mismatch]
      4 |   where http.response.status_code == "401" and user.name cidr "10.0.0.0/8" and url.path < 3
        |                                      ^^^^^
        = hint: remove the quotes: 401
      test.gwr:4:48: error: \`cidr\` needs an ip field; \`user.name\` is a string (keyword) [type-mismatch]
      4 |   where http.response.status_code == "401" and user.name cidr "10.0.0.0/8" and url.path < 3
        |                                                ^^^^^^^^^^^^^^^^^^^^^^^^^^^
        = hint: ip fields: \`source.ip\`, \`destination.ip\`, \`gatewatch.client.peer_ip\`
      test.gwr:4:80: error: \`<\` needs a number or date field; \`url.path\` is a string (keyword) [type-mismatch]
      4 |   where http.response.status_code == "401" and user.name cidr "10.0.0.0/8" and url.path < 3
        |                                                                                ^^^^^^^^^^^^
        = hint: use \`==\`, \`in\`, \`like\` or \`startswith\`
      test.gwr:7:31: error: distinct count on a geo_point field (\`source.geo.location\`) is not supported [type-mismatch]
      7 |     metric u = distinct_count(source.geo.location)
        |                               ^^^^^^^^^^^^^^^^^^^
        = hint: count distinct values of a keyword, number, ip or boolean field
      test.gwr:8:20: error: \`sum\` needs a number field; \`user.name\` is a string (keyword) [type-mismatch]
      8 |     metric s = sum(user.name)
        |                    ^^^^^^^^^"
    `);
  });

  it('look-back shorter than the window or the sequence span', () => {
    expect(
      errorsOf(
        `${rule('  schedule every 1m lookback 5m\n  threshold {\n    window 10m\n    metric n = count()\n    having n > 1\n  }', 'a')}\n${rule(
          '  schedule lookback 20m\n  sequence {\n    by user.name\n    within 30m\n    step a = event.outcome == "failure"\n    step b = event.outcome == "success"\n  }',
          'b',
        )}`,
      ),
    ).toMatchInlineSnapshot(`
      "test.gwr:4:30: error: lookback 5m is shorter than the window 10m [lookback-too-short]
      4 |   schedule every 1m lookback 5m
        |                              ^^
        = hint: use \`lookback 12m\` (window + every + lateness), or leave it out to get that default
      test.gwr:15:21: error: lookback 20m is shorter than the sequence span (\`within\`) 30m [lookback-too-short]
      15 |   schedule lookback 20m
         |                     ^^^
        = hint: use \`lookback 36m\` (sequence span (\`within\`) + every + lateness), or leave it out to get that default"
    `);
  });

  it('look-back that does not cover window + interval + lateness is a warning', () => {
    const r = parse(
      rule(
        '  schedule every 5m lookback 12m\n  threshold {\n    window 10m\n    metric n = count()\n    having n > 1\n  }',
      ),
    );
    expect(r.diagnostics.map((d) => [d.severity, d.code])).toEqual([['warning', 'lookback-short']]);
    expect(r.rules).toHaveLength(1);
  });

  it('unknown list and macro, duplicate rule id', () => {
    expect(
      errorsOf(`list bad_ips = ["192.0.2.1"]
macro login_failure = event.outcome == "failure"
${rule('  where source.ip cidr list bad_ip and login_failur', 'dup')}
${rule('  where user.name exists', 'dup')}`),
    ).toMatchInlineSnapshot(`
      "test.gwr:6:29: error: unknown list \`bad_ip\` [unknown-list]
      6 |   where source.ip cidr list bad_ip and login_failur
        |                             ^^^^^^
        = hint: did you mean \`bad_ips\`?
      test.gwr:6:40: error: unknown macro \`login_failur\` [unknown-macro]
      6 |   where source.ip cidr list bad_ip and login_failur
        |                                        ^^^^^^^^^^^^
        = hint: did you mean \`login_failure\`?
      test.gwr:9:6: error: duplicate rule id \`dup\` (first defined at line 3) [duplicate-rule-id]
      9 | rule dup {
        |      ^^^
        = hint: rule ids must be unique across all rule files"
    `);
  });

  it('unsupported regex syntax is rejected with the RE2 reason', () => {
    expect(errorsOf(rule('  where url.path matches /^(?=admin)/'))).toMatchInlineSnapshot(`
      "test.gwr:4:9: error: invalid or unsupported regular expression: error parsing regexp: invalid or unsupported Perl syntax: \`(?=\` [invalid-regex]
      4 |   where url.path matches /^(?=admin)/
        |         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
        = hint: regexes use RE2 syntax (linear time): no backreferences, lookahead or lookbehind"
    `);
  });

  it('syntax errors: all of them, with recovery, and hints', () => {
    expect(
      errorsOf(`rule a {
  title "A"
  severity low
  where http.request.method = "GET"
}
rule b {
  title "B"
  severity low
  schedule every five
  where user.name == "x"
}
rule c {
  titel "C"
}
`),
    ).toMatchInlineSnapshot(`
      "test.gwr:4:29: error: expected a rule clause or \`}\` but found \`=\` [syntax]
      4 |   where http.request.method = "GET"
        |                             ^
        = hint: compare with \`==\`
      test.gwr:9:18: error: expected a duration such as \`5m\` but found \`five\` [syntax]
      9 |   schedule every five
        |                  ^^^^
        = hint: durations are a whole number and a unit: ms, s, m, h, d, w (e.g. \`15m\`)
      test.gwr:13:3: error: expected a rule clause or \`}\` but found \`titel\` [syntax]
      13 |   titel "C"
         |   ^^^^^
        = hint: did you mean \`title\`?"
    `);
  });

  it('lexer errors point at the character', () => {
    expect(errorsOf(rule("  where user.name == 'x' && user.id exists"))).toContain(
      "test.gwr:4:22: error: unexpected character `'` [syntax]",
    );
    expect(errorsOf(rule("  where user.name == 'x' && user.id exists"))).toContain(
      '= hint: strings use double quotes: "..."',
    );
  });

  it('semantic checks on windows, sequences, baselines, templates, entities, tags', () => {
    const text = `rule a {
  title "A {nope}"
  severity low
  tags ["API11:2023", "T99"]
  threshold {
    group by user.name
    window 10m sliding every 3m
    metric n = count()
    having n > 1
  }
  incident {
    entities ip: source.ip, person: user.name
  }
}
rule b {
  title "B"
  severity low
  sequence {
    by event.category
    within 5m
    step gone = absent user.name exists
    step x = user.name exists repeat 0
  }
}
rule c {
  title "C"
  severity low
  baseline {
    metric n = count()
    window 10m sliding every 5m
    history 25m
    spike ratio >= 2
  }
}`;
    expect(
      parse(text).diagnostics.map((d) => `${d.line}:${d.column} ${d.code}: ${d.message}`),
    ).toMatchInlineSnapshot(`
      [
        "2:9 invalid-template: template placeholder \`{nope}\` is not defined here",
        "4:9 invalid-tag: \`API11:2023\` is not an OWASP API Security Top 10 (2023) id",
        "4:23 invalid-tag: \`T99\` is not a MITRE ATT&CK technique id",
        "7:30 invalid-window: the window (10m) must be a whole multiple of the slide (3m)",
        "12:18 not-a-key: an entity field \`source.ip\` is not a key of this threshold rule",
        "12:29 invalid-entity: unknown entity role \`person\`",
        "19:8 multi-valued-key: field \`event.category\` is multi-valued and cannot be used in sequence \`by\`",
        "21:10 invalid-step: a sequence cannot start with an \`absent\` step",
        "22:38 invalid-step: repeat count must be an integer from 1 to 1000",
        "30:5 invalid-window: baseline windows are tumbling; \`sliding\` is not allowed here",
        "31:13 invalid-window: history (25m) must be a whole multiple of the window (10m), at least twice it",
      ]
    `);
  });

  it('include and list problems', () => {
    const r = parseRules(
      `include "missing.gwr"\ninclude "rules.gwr"\ninclude "self.gwr"\nlist l = file("nope.txt")\nlist nums = ["a"]\n${rule('  where http.response.status_code in list nums')}`,
      {
        file: 'main.gwr',
        readInclude: (p) =>
          p === 'rules.gwr'
            ? { file: p, text: rule('  where user.name exists', 'x') }
            : p === 'self.gwr'
              ? { file: p, text: 'include "self.gwr"' }
              : undefined,
        readList: () => undefined,
      },
    );
    expect(r.diagnostics.map((d) => `${d.file}:${d.line} ${d.code}`)).toEqual([
      'main.gwr:1 include-not-found',
      'main.gwr:2 include-has-rules',
      'main.gwr:4 list-not-found',
      'main.gwr:9 type-mismatch',
      'self.gwr:1 include-cycle',
    ]);
    expect(r.rules).toEqual([]);
  });

  it('formatDiagnostic has file:line:col, excerpt with caret, hint', () => {
    const [d] = parse(rule('  severity hihg')).diagnostics.filter((x) => x.code === 'invalid-severity');
    expect(formatDiagnostic(d!)).toMatchInlineSnapshot(`
      "test.gwr:4:12: error: unknown severity \`hihg\` [invalid-severity]
      4 |   severity hihg
        |            ^^^^
        = hint: did you mean \`high\`? (low, medium, high, critical)"
    `);
  });

  it('formatRules refuses files with syntax errors', () => {
    expect(formatRules('rule {').text).toBeUndefined();
    expect(formatRules('rule x { title "a" }').text).toBe('rule x {\n  title "a"\n}\n');
  });

  describe('one error per mistake, at the mistake, with a fix (issue 19, item 20)', () => {
    const threshold = [
      '  threshold {',
      '    group by source.ip',
      '    window 5m',
      '    metric n = count()',
      '    having n > 10',
    ];

    it('a block left open: reported where its `}` is missing, not at the next clause', () => {
      const text = [
        'rule a {',
        '  title "T"',
        '  severity low',
        ...threshold,
        '  incident {',
        '    title "x"',
        '  }',
        '}',
      ].join('\n');
      expect(errorsOf(text)).toMatchInlineSnapshot(`
        "test.gwr:8:18: error: missing \`}\` to close \`threshold {\` (line 4) [syntax]
        8 |     having n > 10
          |                  ^
          = hint: add \`}\` after line 8"
      `);
    });

    it('a block left open before the rule’s `}`: the `}` indented like the rule belongs to it', () => {
      const text = [
        'rule a {',
        '  title "T"',
        '  severity low',
        ...threshold,
        '}',
        '',
        rule('  where source.ip exists', 'b'),
      ].join('\n');
      expect(errorsOf(text)).toMatchInlineSnapshot(`
        "test.gwr:8:18: error: missing \`}\` to close \`threshold {\` (line 4) [syntax]
        8 |     having n > 10
          |                  ^
          = hint: add \`}\` before line 9"
      `);
    });

    it('an incident block left open before the next rule', () => {
      const text = [
        'rule a {',
        '  title "T"',
        '  severity low',
        ...threshold,
        '  }',
        '  incident {',
        '    title "x"',
        '',
        rule('  where source.ip exists', 'b'),
      ].join('\n');
      expect(errorsOf(text)).toMatchInlineSnapshot(`
        "test.gwr:11:14: error: missing \`}\` to close \`incident {\` (line 10) [syntax]
        11 |     title "x"
           |              ^
          = hint: add \`}\` after line 11"
      `);
    });

    it('a misspelled block keyword: one error, not again at the `}` its block leaves over', () => {
      expect(
        errorsOf(rule(['  treshold {', ...threshold.slice(1), '  }'].join('\n'))),
      ).toMatchInlineSnapshot(`
        "test.gwr:4:3: error: expected a rule clause or \`}\` but found \`treshold\` [syntax]
        4 |   treshold {
          |   ^^^^^^^^
          = hint: did you mean \`threshold\`?"
      `);
    });

    it('a misspelled metric keyword: not also "unknown metric"', () => {
      expect(
        errorsOf(
          rule([...threshold.slice(0, 3), '    metrc n = count()', '    having n > 10', '  }'].join('\n')),
        ),
      ).toMatchInlineSnapshot(`
          "test.gwr:7:5: error: expected a threshold clause or \`}\` but found \`metrc\` [syntax]
          7 |     metrc n = count()
            |     ^^^^^
            = hint: did you mean \`metric\`?"
        `);
    });

    it('upper-case operators: each one, with the word to write', () => {
      expect(
        errorsOf(rule('  where http.response.status_code >= 500 AND source.ip exists OR user.name exists')),
      ).toMatchInlineSnapshot(`
          "test.gwr:4:42: error: \`AND\` is not a keyword: keywords and operators are written in lower case [syntax]
          4 |   where http.response.status_code >= 500 AND source.ip exists OR user.name exists
            |                                          ^^^
            = hint: write \`and\`
          test.gwr:4:63: error: \`OR\` is not a keyword: keywords and operators are written in lower case [syntax]
          4 |   where http.response.status_code >= 500 AND source.ip exists OR user.name exists
            |                                                               ^^
            = hint: write \`or\`"
        `);
    });

    it('a string compared with a number field: a fix; a field cut short: the field it begins', () => {
      expect(errorsOf(rule('  where http.response.status_code > "abc"'))).toMatchInlineSnapshot(`
        "test.gwr:4:37: error: the string "abc" does not fit field \`http.response.status_code\`, which is a number [type-mismatch]
        4 |   where http.response.status_code > "abc"
          |                                     ^^^^^
          = hint: \`http.response.status_code\` holds numbers: compare it with a number, without quotes (e.g. 404)"
      `);
      expect(errorsOf(rule('  where http.response.status > 499'))).toMatchInlineSnapshot(`
        "test.gwr:4:9: error: unknown field \`http.response.status\` [unknown-field]
        4 |   where http.response.status > 499
          |         ^^^^^^^^^^^^^^^^^^^^
          = hint: did you mean \`http.response.status_code\`?"
      `);
    });
  });
});
