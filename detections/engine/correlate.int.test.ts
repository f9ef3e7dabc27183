/**
 * Correlated rules on Elasticsearch: the executor fetches the records a merged event can come
 * from and evaluates them in the worker; it finds what the in-process evaluator finds, from a WAF
 * log without statuses and a load-balancer log without verdicts in one index.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bulkWrite } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { parseOk } from '../../parser/test-helpers.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { runRuleOnElasticsearch } from './elasticsearch.ts';
import { evaluateRule } from './evaluate.ts';
import { alb, T0, waf } from './testing.ts';

const ctx = integrationContext('engine-corr');
beforeAll(() => installCoreTemplates(ctx.es, { prefix: ctx.prefix }));
afterAll(() => ctx.cleanup());

it('a correlated sequence finds the same detections on both backends', async () => {
  const events = [
    waf(0, 'BLOCK', "q='1"),
    alb(0.3, 403),
    waf(20, 'BLOCK', "q='2"),
    alb(20.2, 403),
    waf(40, 'BLOCK', "q='3"),
    alb(40.1, 403),
    waf(60, 'ALLOW', 'q=%2527'),
    alb(60.4, 200),
    // another client: blocked once, then a 200 — not enough blocks
    { ...waf(100, 'BLOCK', 'x'), source: { ip: '203.0.113.4' }, event: { id: 'w2', dataset: 'aws.waf' } },
    { ...alb(101, 200), source: { ip: '203.0.113.4' }, event: { id: 'a2', dataset: 'aws.alb' } },
  ];
  const index = `${ctx.prefix}-events-corr`;
  await bulkWrite(
    ctx.es,
    events.map((e) => ({ op: 'create' as const, index, id: String(e.event?.id), doc: e })),
    { refresh: 'wait_for' },
  );
  const [rule] = parseOk(`rule bypass {
  title "Bypass"
  severity high
  correlate requests within 2s
  where source.ip exists
  sequence {
    by source.ip, gatewatch.route
    within 15m
    step blocked = gatewatch.waf.action == "block" repeat >= 3
    step passed = gatewatch.waf.action == "allow" and http.response.status_code >= 200 and http.response.status_code < 300
  }
}
`);
  const range = { start: T0 - 60_000, end: T0 + 600_000 };
  const local = evaluateRule(rule!, events, range).detections;
  const remote = (await runRuleOnElasticsearch(ctx.es, index, rule!, range)).detections;
  expect(local).toHaveLength(1);
  expect(remote).toEqual(local);
});
