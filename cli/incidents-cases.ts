/**
 * `gatewatch incidents list|show|triage|comment` run as processes against one store: the same
 * cases for the embedded SQLite store (cli/incidents.test.ts) and for Elasticsearch
 * (cli/incidents.int.test.ts). The store holds makeIncident(0 … 11) (api/testing/fixtures.ts).
 */
import { userInfo } from 'node:os';
import { expect, it } from 'vitest';
import { makeIncident } from '../api/testing/fixtures.ts';
import type { Incident } from '../core/schema/incident.ts';
import { EXIT } from './errors.ts';
import { type CliOptions, runCli } from './test-helpers.ts';

export const FIXTURE_COUNT = 12;
export const fixtureIncidents = (): Incident[] =>
  Array.from({ length: FIXTURE_COUNT }, (_, n) => makeIncident(n));

export interface IncidentStoreUnderTest {
  /** Flags that pick the store (`--embedded --db f`, or none). */
  args: string[];
  env: CliOptions['env'];
  /** The audit entries the store recorded for an incident (action names). */
  auditActions(incidentId: string): Promise<string[]>;
}

export function incidentCommandCases(store: () => IncidentStoreUnderTest): void {
  const cli = (args: string[]) => runCli([...args, ...store().args], { env: store().env });
  const ok = (args: string[]) => {
    const r = cli(args);
    expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const oneLineError = (args: string[], code: number, pattern: RegExp) => {
    const r = cli(args);
    expect(r.status, r.stderr).toBe(code);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  };

  it('list: a table with the entity, filters, JSON as the API returns it, pages', () => {
    const table = ok(['incidents', 'list']).stdout.trimEnd().split('\n');
    expect(table[0]).toMatch(/^id\s+severity\s+status\s+rule\s+entity\s+last seen\s+events/);
    expect(table).toHaveLength(1 + FIXTURE_COUNT);
    expect(table[1]).toMatch(/^inc-0000011\s+critical\s+new\s+rule-2\s+203\.0\.113\.11\s/);

    const critical = JSON.parse(ok(['incidents', 'list', '--severity', 'critical,high', '--json']).stdout);
    expect(critical.items.map((i: Incident) => i.id).sort()).toEqual(
      fixtureIncidents()
        .filter((i) => i.severity === 'critical' || i.severity === 'high')
        .map((i) => i.id)
        .sort(),
    );
    expect(critical).toHaveProperty('next_cursor', null);
    const byRule = JSON.parse(
      ok(['incidents', 'list', '--rule', 'rule-1', '--entity', '203.0.113.4', '--json']).stdout,
    );
    expect(byRule.items.map((i: Incident) => i.id)).toEqual(['inc-0000004']);

    const first = ok(['incidents', 'list', '--limit', '5', '--sort', 'created_at', '--order', 'asc']);
    const cursor = /--cursor (\S+)/.exec(first.stderr)?.[1];
    expect(cursor, first.stderr).toBeDefined();
    const second = JSON.parse(
      ok([
        'incidents',
        'list',
        '--limit',
        '5',
        '--sort',
        'created_at',
        '--order',
        'asc',
        '--cursor',
        cursor!,
        '--json',
      ]).stdout,
    );
    expect(second.items.map((i: Incident) => i.id)).toEqual([5, 6, 7, 8, 9].map((n) => makeIncident(n).id));
  });

  it('list: a bad filter value is one line naming the allowed values', () => {
    oneLineError(
      ['incidents', 'list', '--severity', 'urgent'],
      EXIT.usage,
      /--severity: "urgent" is not one of low, medium, high, critical/,
    );
    oneLineError(
      ['incidents', 'list', '--sort', 'title'],
      EXIT.usage,
      /--sort: "title" is not one of created_at/,
    );
  });

  it('show: the incident in full, by id or unique prefix', () => {
    const text = ok(['incidents', 'show', 'inc-0000003']).stdout;
    expect(text).toMatch(/^Scraping of \/users by client 3\n/);
    expect(text).toMatch(/id:\s+inc-0000003/);
    expect(text).toContain('query: source.ip == "203.0.113.1"');
    const json = JSON.parse(ok(['incidents', 'show', 'inc-0000003', '--json']).stdout);
    expect(json).toMatchObject({ id: 'inc-0000003', evidence: { event_ids: ['e1', 'e2'] }, history: [] });
    oneLineError(['incidents', 'show', 'inc-000000'], EXIT.usage, /"inc-000000" is ambiguous: inc-0000000, /);
    oneLineError(['incidents', 'show', 'inc-9999'], EXIT.failure, /no incident inc-9999/);
  });

  it('triage and comment: recorded in history, comments and the audit log', async () => {
    const changed = ok([
      'incidents',
      'triage',
      'inc-0000002',
      '--status',
      'triaged',
      '--assignee',
      'alice',
      '--note',
      'on it',
    ]);
    expect(changed.stdout).toMatch(/inc-0000002 .*: status new → triaged, assignee — → alice/);
    ok(['incidents', 'comment', 'inc-0000002', 'seen', 'from', 'the', 'SOC']);
    const after = JSON.parse(ok(['incidents', 'show', 'inc-0000002', '--json']).stdout) as Incident;
    const me = `cli:${userInfo().username}`;
    expect(after).toMatchObject({ status: 'triaged', assignee: 'alice' });
    expect(after.history).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ by: me, field: 'status', from: 'new', to: 'triaged', note: 'on it' }),
      ]),
    );
    expect(after.comments).toEqual([expect.objectContaining({ by: me, text: 'seen from the SOC' })]);
    expect((await store().auditActions('inc-0000002')).sort()).toEqual([
      'incident.comment',
      'incident.update',
    ]);

    const filtered = JSON.parse(ok(['incidents', 'list', '--status', 'triaged', '--json']).stdout);
    expect(filtered.items.map((i: Incident) => i.id)).toEqual(['inc-0000002']);
    oneLineError(
      ['incidents', 'triage', 'inc-0000002', '--status', 'new'],
      EXIT.failure,
      /cannot move to new \(allowed: /,
    );
    oneLineError(['incidents', 'triage', 'inc-0000002'], EXIT.usage, /give --status, --severity, --assignee/);
  });
}
