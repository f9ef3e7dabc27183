import { describe, expect, it } from 'vitest';
import { parseOk } from '../../parser/test-helpers.ts';
import { mergeRequests, relaxForCorrelation } from './correlate.ts';
import { evaluateRule } from './evaluate.ts';
import { alb, at, T0, waf } from './testing.ts';

describe('merging the records of one request', () => {
  it('by request id, else by address, method and path within the tolerance; each field from the first record that has it', () => {
    const merged = mergeRequests(
      [waf(0, 'BLOCK', 'a', 'r1'), alb(0.4, 403, 'r1'), waf(10, 'ALLOW', 'b'), alb(10.5, 200), alb(30, 200)],
      2000,
    );
    expect(merged).toHaveLength(3);
    const [first, second, third] = merged as Record<string, any>[];
    // The request record's answer and the WAF's verdict, on one event at the earliest time.
    expect(first!.http.response.status_code).toBe(403);
    expect(first!.gatewatch.waf.action).toBe('block');
    expect(first!['@timestamp']).toBe(at(0));
    expect(first!.event.id).toBe('alb-0.4');
    expect(second!.http.response.status_code).toBe(200);
    expect(second!.gatewatch.waf.action).toBe('allow');
    // 20 s later: another request.
    expect(third!.gatewatch.waf).toBeUndefined();
  });

  it('never merges two records of one log, or two records with different request ids', () => {
    expect(mergeRequests([alb(0, 200), alb(0.1, 200)], 2000)).toHaveLength(2);
    expect(mergeRequests([waf(0, 'BLOCK', 'a', 'r1'), alb(0.2, 403, 'r2')], 2000)).toHaveLength(2);
  });

  it('keeps the join keys when relaxing a filter, drops what a partner may bring', () => {
    expect(
      relaxForCorrelation({
        op: 'and',
        args: [
          { op: 'exists', field: 'source.ip' },
          { op: 'cmp', field: 'http.response.status_code', cmp: '==', value: 200 },
          { op: 'not', arg: { op: 'cmp', field: 'gatewatch.waf.action', cmp: '==', value: 'block' } },
        ],
      }),
    ).toEqual({ op: 'and', args: [{ op: 'exists', field: 'source.ip' }, { op: 'true' }, { op: 'true' }] });
  });
});

describe('a rule over a WAF log without statuses and a gateway log without verdicts', () => {
  // The WAF blocked three probes, then allowed one the application answered 200.
  const events = [
    waf(0, 'BLOCK', "q='1"),
    alb(0.3, 403),
    waf(20, 'BLOCK', "q='2"),
    alb(20.2, 403),
    waf(40, 'BLOCK', "q='3"),
    alb(40.1, 403),
    waf(60, 'ALLOW', 'q=%2527'),
    alb(60.4, 200),
  ];
  const rule = (correlate: string) =>
    parseOk(`rule bypass {
  title "Bypass"
  severity high
  ${correlate}
  sequence {
    by source.ip, gatewatch.route
    within 15m
    step blocked = gatewatch.waf.action == "block" repeat >= 3
    step passed = gatewatch.waf.action == "allow" and http.response.status_code >= 200 and http.response.status_code < 300
  }
}
`)[0]!;
  const range = { start: T0 - 60_000, end: T0 + 600_000 };

  it('needs the two logs correlated: "allowed and answered 2xx" holds for no single record', () => {
    expect(evaluateRule(rule(''), events, range).detections).toHaveLength(0);
    const found = evaluateRule(rule('correlate requests within 2s'), events, range).detections;
    expect(found).toHaveLength(1);
    // Three blocked requests, not six records.
    expect(found[0]!.metrics['blocked.count']).toBe(3);
  });
});
