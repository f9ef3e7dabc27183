/**
 * `gatewatch status` and GET /api/v1/status on the real servers: what the deployment looks like
 * (queues per source, dead letters per hour, rules late or failing, retention) with a warning and
 * its action for each problem, and a clear one-line verdict when a server does not answer.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../api/testing/harness.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { writeDeadLetters } from '../ingest/sinks/dead-letters.ts';
import { freePort } from '../test/harness/processes.ts';
import type { StatusReport } from './status.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp('status');
  await installCoreTemplates(t.it.es, { prefix: t.it.prefix });
  // Two batches of one source waiting (no worker runs), a dead letter now, a rule far behind
  // its schedule, another whose last run failed.
  await t.producer.enqueue({ source: 'edge-nginx', receivedAt: Date.now() }, ['a', 'b'], 'status-test-1');
  await t.producer.enqueue({ source: 'edge-nginx', receivedAt: Date.now() }, ['c'], 'status-test-2');
  await writeDeadLetters(t.it.es, t.it.prefix, [
    { source: 'edge-nginx', reason: 'unrecognised line', stage: 'parse', raw: 'garbage', at: Date.now() },
  ]);
  await t.redis.hset(
    `${t.it.prefix}:detect:checkpoints`,
    'api-key-new-asn',
    String(Date.now() - 6 * 3_600_000),
  );
  await t.it.es.index({
    index: indexNames(t.it.prefix).ruleRuns,
    id: 'failed-run',
    refresh: true,
    document: {
      id: 'failed-run',
      rule_id: 'api-key-many-ips',
      outcome: 'error',
      finished_at: new Date().toISOString(),
      error: 'search_phase_execution_exception: all shards failed',
    },
  });
  await t.it.es.indices.refresh({ index: `${t.it.prefix}-*` });
});
afterAll(async () => {
  await t?.close();
});

function gatewatch(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['cli/gatewatch.ts', ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      ELASTICSEARCH_URL: t.it.elasticsearchUrl,
      REDIS_URL: t.it.redisUrl,
      GATEWATCH_ELASTICSEARCH__INDEX_PREFIX: t.it.prefix,
      GATEWATCH_REDIS__PREFIX: t.it.prefix,
      GATEWATCH_INGEST__SOURCES: JSON.stringify([{ name: 'edge-nginx', type: 'file', paths: [] }]),
      ...env,
    },
    timeout: 120_000,
  });
}

const components = (r: StatusReport) => r.warnings.map((w) => `${w.component}: ${w.message}`);

describe('deployment status', () => {
  it('gatewatch status --json: queues per source, dead letters, rules late and failing, retention, each warning with its action', () => {
    const run = gatewatch(['status', '--json'], {});
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout) as StatusReport;
    expect(run.status).toBe(report.warnings.some((w) => w.level === 'critical') ? 1 : 0);
    expect(report.elasticsearch).toMatchObject({ reachable: true, nodes: 1 });
    expect(report.elasticsearch.disk).toHaveLength(1);
    expect(report.redis).toMatchObject({ reachable: true, maxmemory_policy: 'noeviction' });
    expect(report.queues.ingest).toMatchObject({ waiting: 2, active: 0 });
    expect(report.sources).toEqual([
      {
        name: 'edge-nginx',
        type: 'file',
        queued_batches: 2,
        lag_seconds: expect.any(Number),
        last_stored_at: null,
      },
    ]);
    expect(report.dead_letters.last_hour).toBe(1);
    expect(report.dead_letters.per_hour.reduce((s, h) => s + h.count, 0)).toBe(1);
    expect(report.rules.enabled).toBeGreaterThan(10);
    expect(report.rules.late.map((r) => r.rule)).toEqual(['api-key-new-asn']);
    expect(report.rules.failing).toEqual([
      expect.objectContaining({
        rule: 'api-key-many-ips',
        outcome: 'error',
        reason: expect.stringContaining('all shards failed'),
      }),
    ]);
    expect(report.retention.last_run).toBeNull();
    expect(components(report)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^dead_letters: 1 records became dead letters in the last hour/),
        expect.stringMatching(/^rules: 1 rules are behind their schedule \(api-key-new-asn by \d+ s\)/),
        expect.stringMatching(/^rules: rule api-key-many-ips: last run error/),
        'retention: the index lifecycle has not run yet',
      ]),
    );
    for (const w of report.warnings) expect(w.action.length).toBeGreaterThan(10);
  });

  it('gatewatch status prints the same as text, warnings last with what to do', () => {
    const run = gatewatch(['status'], {});
    expect(run.stdout).toMatch(/^Gatewatch status at .*: \d+ warnings/);
    expect(run.stdout).toMatch(/\n {2}edge-nginx +file: 2 batches queued, lag/);
    expect(run.stdout).toMatch(/\nWarnings\n/);
    expect(run.stdout).toMatch(
      /dead_letters: 1 records became dead letters in the last hour.*\n {12}→ gatewatch ingest dead-letters list/,
    );
  });

  it('an Elasticsearch that does not answer is a critical warning and exit status 1, not a stack trace', async () => {
    const port = await freePort();
    const run = gatewatch(['status'], { ELASTICSEARCH_URL: `http://127.0.0.1:${port}` });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/Elasticsearch +unreachable: .*\n/);
    expect(run.stdout).toMatch(
      new RegExp(
        `CRITICAL {2}elasticsearch: Elasticsearch at http://127\\.0\\.0\\.1:${port}/? does not answer`,
      ),
    );
    expect(run.stdout).not.toMatch(/\n\s+at /);
  });

  it('GET /api/v1/status answers the same report; GET /api/v1/retention the policy', async () => {
    const res = await t.app.inject({ url: '/api/v1/status', headers: t.auth('viewer') });
    expect(res.statusCode).toBe(200);
    const report = res.json() as StatusReport;
    expect(report.queues.ingest).toMatchObject({ waiting: 2 });
    expect(report.sources[0]).toMatchObject({ name: 'edge-nginx', queued_batches: 2 });
    expect(report.dead_letters.last_hour).toBe(1);
    expect(components(report)).toContain('retention: the index lifecycle has not run yet');
    expect((await t.app.inject({ url: '/api/v1/status' })).statusCode).toBe(401);
    const retention = await t.app.inject({ url: '/api/v1/retention', headers: t.auth('viewer') });
    expect(retention.json()).toMatchObject({
      policy: { events: '30d', incidents: '365d' },
      lifecycle: { enabled: true, interval: '15m' },
      last_run: null,
    });
  });
});
