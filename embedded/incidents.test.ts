/** SqliteIncidentRepository: the semantics of the Elasticsearch repository over SQLite. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeIncident } from '../api/testing/fixtures.ts';
import type { Incident } from '../core/schema/incident.ts';
import {
  IllegalTransitionError,
  type IncidentQuery,
  InvalidCursorError,
  InvalidQueryError,
} from '../detections/incidents/repository.ts';
import { SqliteIncidentRepository } from './incidents.ts';
import { EmbeddedStore } from './store.ts';

let store: EmbeddedStore;
let repo: SqliteIncidentRepository;
let clock = Date.parse('2026-01-02T00:00:00Z');

async function add(incidents: Incident[]) {
  const writer = store.incidentStore();
  for (const i of incidents) expect(await writer.create(i)).toBe('created');
}

async function all(q: IncidentQuery): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await repo.list({ ...q, ...(cursor ? { cursor } : {}) });
    ids.push(...page.items.map((i) => i.id));
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return ids;
}

beforeEach(() => {
  store = new EmbeddedStore(':memory:');
  repo = new SqliteIncidentRepository(store, { clock: () => new Date(clock) });
});
afterEach(() => store.close());

describe('SqliteIncidentRepository', () => {
  it('sorts by every field with a total order, and cursors survive inserts', async () => {
    await add(Array.from({ length: 30 }, (_, n) => makeIncident(n)));
    const newest = await all({ limit: 4 });
    expect(newest).toEqual(Array.from({ length: 30 }, (_, n) => makeIncident(29 - n).id));
    for (const sort of ['created_at', 'last_seen', 'severity', 'risk'] as const) {
      for (const order of ['asc', 'desc'] as const) {
        const ids = await all({ sort, order, limit: 7 });
        const key = (i: Incident) =>
          [
            sort === 'severity' ? i.severity_rank : sort === 'risk' ? i.risk : i[sort],
            i.created_at,
            i.id,
          ] as const;
        const expected = Array.from({ length: 30 }, (_, n) => makeIncident(n))
          .sort((a, b) => {
            const [x, y] = [key(a), key(b)];
            for (let k = 0; k < 3; k++)
              if (x[k] !== y[k]) return (x[k]! < y[k]! ? -1 : 1) * (order === 'asc' ? 1 : -1);
            return 0;
          })
          .map((i) => i.id);
        expect(ids).toEqual(expected);
      }
    }
    // A page, then newer incidents arrive: the rest of the walk neither repeats nor skips.
    const first = await repo.list({ limit: 10 });
    await add(Array.from({ length: 5 }, (_, n) => makeIncident(100 + n)));
    const rest = await all({ limit: 10, cursor: first.next_cursor! });
    expect([...first.items.map((i) => i.id), ...rest]).toEqual(newest);
    await expect(repo.list({ cursor: 'garbage' })).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(repo.list({ cursor: first.next_cursor!, sort: 'risk' })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
  });

  it('filters by status, severity, rule, entity, tag, assignee, words of the title and time', async () => {
    await add(Array.from({ length: 20 }, (_, n) => makeIncident(n)));
    const ids = (ns: number[]) => ns.map((n) => makeIncident(n).id).reverse();
    const range = (f: (n: number) => boolean) => ids(Array.from({ length: 20 }, (_, n) => n).filter(f));
    expect(await all({ severity: ['critical'] })).toEqual(range((n) => n % 4 === 3));
    expect(await all({ rule: ['rule-1', 'rule-2'] })).toEqual(range((n) => n % 3 !== 0));
    expect(await all({ tags: ['auth'] })).toEqual(range((n) => n % 2 === 0));
    expect(await all({ entity: ['user-3'] })).toEqual(range((n) => n % 7 === 3));
    expect(await all({ entity: ['203.0.113.4', 'user-5'] })).toEqual(range((n) => n === 4 || n % 7 === 5));
    expect(await all({ text: 'CREDENTIAL stuffing' })).toEqual(range((n) => n % 2 === 0));
    expect(await all({ text: 'stuffing scraping' })).toEqual([]);
    expect(await all({ text: 'stuff' })).toEqual([]);
    expect(await all({ from: '2026-01-01T00:05:00Z', to: '2026-01-01T00:07:00.000Z' })).toEqual(
      ids([5, 6, 7]),
    );
    await expect(repo.list({ from: 'yesterday' })).rejects.toBeInstanceOf(InvalidQueryError);

    await repo.triage(makeIncident(2).id, { status: 'triaged', assignee: 'bob', severity: 'critical' }, 'me');
    expect(await all({ status: ['triaged'] })).toEqual(ids([2]));
    expect(await all({ assignee: 'bob' })).toEqual(ids([2]));
    expect(await all({ severity: ['critical'], sort: 'severity' })).toContain(makeIncident(2).id);
  });

  it('triages per TRANSITIONS with history, comments, bulk changes and conflicts with the writer', async () => {
    await add([makeIncident(1), makeIncident(2)]);
    const id = makeIncident(1).id;
    clock += 60_000;
    const t = await repo.updateStatus(id, 'triaged', 'ann', 'mine');
    expect(t).toMatchObject({
      status: 'triaged',
      acknowledged_at: new Date(clock).toISOString(),
      resolved_at: null,
    });
    expect(t.history).toEqual([
      {
        at: new Date(clock).toISOString(),
        by: 'ann',
        field: 'status',
        from: 'new',
        to: 'triaged',
        note: 'mine',
      },
    ]);
    clock += 60_000;
    const r = await repo.updateStatus(id, 'resolved', 'ann');
    expect(r.resolved_at).toBe(new Date(clock).toISOString());
    expect(r.acknowledged_at).toBe(t.acknowledged_at);
    await expect(repo.updateStatus(id, 'in_remediation', 'ann')).rejects.toBeInstanceOf(
      IllegalTransitionError,
    );
    const reopened = await repo.updateStatus(id, 'triaged', 'ann');
    expect(reopened.resolved_at).toBeNull();
    const unchanged = await repo.triage(id, { status: 'triaged' }, 'ann');
    expect(unchanged.history).toHaveLength(3);

    const c = await repo.comment(id, 'hello', 'ann');
    expect((await repo.get(id))!.comments).toEqual([c]);

    // The writer merges a re-detection: triage state stays, the writer's fields land.
    const writer = store.incidentStore();
    const current = (await writer.get(id))!;
    expect(await writer.update(id, { occurrences: 5 }, current.version)).toBe('ok');
    expect(await writer.update(id, { occurrences: 6 }, current.version)).toBe('conflict');
    const merged = (await repo.get(id))!;
    expect(merged).toMatchObject({ occurrences: 5, status: 'triaged', comments: [c] });

    const bulk = await repo.bulkStatus([id, makeIncident(2).id, 'missing', id], 'false_positive', 'ann');
    expect(bulk).toEqual([
      { id, ok: true },
      { id: makeIncident(2).id, ok: true },
      expect.objectContaining({ id: 'missing', ok: false, error: 'not_found' }),
    ]);
    await expect(repo.assign('missing', 'x', 'ann')).rejects.toThrow(/does not exist/);
  });

  it('computes stats with MTTA and MTTR and an epoch-aligned histogram', async () => {
    await add(Array.from({ length: 10 }, (_, n) => makeIncident(n)));
    // created 00:00 … 00:09; acknowledge #1 after 10 min, #2 after 20 min (and resolve it).
    clock = Date.parse(makeIncident(1).created_at) + 10 * 60_000;
    await repo.updateStatus(makeIncident(1).id, 'triaged', 'x');
    clock = Date.parse(makeIncident(2).created_at) + 20 * 60_000;
    await repo.updateStatus(makeIncident(2).id, 'resolved', 'x');
    const s = await repo.stats({ from: '2026-01-01T00:00:00Z', to: '2026-01-01T00:08:00Z', interval: '5m' });
    expect(s.total).toBe(8);
    expect(s.by_status).toEqual({ new: 6, triaged: 1, in_remediation: 0, resolved: 1, false_positive: 0 });
    expect(s.by_severity).toEqual({ low: 2, medium: 2, high: 2, critical: 2 });
    expect(s.by_rule).toEqual([
      { rule_id: 'rule-0', count: 3 },
      { rule_id: 'rule-1', count: 3 },
      { rule_id: 'rule-2', count: 2 },
    ]);
    expect(s.over_time.map((b) => [b.start, b.count])).toEqual([
      ['2026-01-01T00:00:00.000Z', 5],
      ['2026-01-01T00:05:00.000Z', 3],
    ]);
    expect(s.acknowledged).toBe(2);
    expect(s.mean_time_to_acknowledge_ms).toBe(15 * 60_000);
    expect(s.resolved).toBe(1);
    expect(s.mean_time_to_resolve_ms).toBe(20 * 60_000);
    await expect(repo.stats({ from: 'x', to: 'y', interval: '5m' })).rejects.toBeInstanceOf(
      InvalidQueryError,
    );
    await expect(
      repo.stats({ from: '2026-01-01T00:00:00Z', to: '2026-01-01T00:08:00Z', interval: '5s' }),
    ).rejects.toBeInstanceOf(InvalidQueryError);
  });
});
