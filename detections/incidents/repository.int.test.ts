/**
 * Listing on real Elasticsearch: every sort and order, paged with small pages, returns exactly
 * the order of a plain in-memory sort. Covers the fast paths (severity rank by rank in index
 * order, oldest first through bounded windows) at their edges: rank boundaries, equal
 * timestamps, filters that leave few matches, and incidents older than the extent the
 * repository last measured.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeIncident } from '../../api/testing/fixtures.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { bulkWrite, indexNames } from '../../core/store/elasticsearch.ts';
import { type IntegrationContext, integrationContext } from '../../test/harness/context.ts';
import {
  ElasticsearchIncidentRepository,
  type IncidentQuery,
  type IncidentSortField,
  installIncidentIndex,
} from './repository.ts';

let it: IntegrationContext;
let repo: ElasticsearchIncidentRepository;
const all: Incident[] = [];
const base = Date.parse('2026-03-01T00:00:00Z');

async function store(incidents: Incident[]) {
  const index = indexNames(it.prefix).incidents;
  const r = await bulkWrite(
    it.es,
    incidents.map((doc) => ({ op: 'index' as const, index, id: doc.id, doc })),
  );
  expect(r.rejected + r.retryable).toBe(0);
  await it.es.indices.refresh({ index });
  all.push(...incidents);
}

/** Irregular times (bursts, equal timestamps, long gaps) and uneven severities. */
function incident(n: number): Incident {
  const minute = n < 200 ? n * 3 : n < 260 ? 600 + Math.floor(n / 4) : 5000 + n * 97;
  const at = new Date(base + minute * 60_000).toISOString();
  const severity = (['low', 'low', 'medium', 'high', 'critical', 'low', 'medium'] as const)[n % 7]!;
  return makeIncident(n, {
    severity,
    severity_rank: { low: 1, medium: 2, high: 3, critical: 4 }[severity],
    created_at: at,
    first_seen: at,
    last_seen: new Date(Date.parse(at) + (n % 5) * 60_000).toISOString(),
    status: n % 9 === 0 ? 'triaged' : 'new',
  });
}

beforeAll(async () => {
  it = integrationContext('incident-listing');
  repo = new ElasticsearchIncidentRepository(it.es, it.prefix);
  await installIncidentIndex(it.es, it.prefix);
  await store(Array.from({ length: 320 }, (_, n) => incident(n)));
});
afterAll(async () => {
  await it?.cleanup();
});

function expected(q: IncidentQuery): string[] {
  const sort = q.sort ?? 'created_at';
  const sign = (q.order ?? 'desc') === 'desc' ? -1 : 1;
  const key = (i: Incident): (string | number)[] => {
    const created = Date.parse(i.created_at);
    if (sort === 'severity') return [i.severity_rank, created, i.id];
    if (sort === 'risk') return [i.risk, created, i.id];
    if (sort === 'last_seen') return [Date.parse(i.last_seen), created, i.id];
    return [created, i.id];
  };
  return all
    .filter((i) => !q.status || q.status.includes(i.status))
    .filter((i) => !q.severity || q.severity.includes(i.severity))
    .filter((i) => !q.entity || q.entity.some((e) => i.entities.ip?.includes(e)))
    .sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      for (let k = 0; k < ka.length; k++) {
        if (ka[k]! < kb[k]!) return -sign;
        if (ka[k]! > kb[k]!) return sign;
      }
      return 0;
    })
    .map((i) => i.id);
}

async function pages(q: IncidentQuery): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await repo.list({ ...q, ...(cursor ? { cursor } : {}) });
    expect(page.items.length).toBeLessThanOrEqual(q.limit ?? 50);
    seen.push(...page.items.map((i) => i.id));
    cursor = page.next_cursor;
  } while (cursor);
  return seen;
}

const SORTS: IncidentSortField[] = ['created_at', 'severity', 'risk', 'last_seen'];
const FILTERS: IncidentQuery[] = [
  {},
  { status: ['new'] },
  { severity: ['critical', 'medium'] },
  { severity: ['low'] },
  { entity: ['203.0.113.7'] },
];

describe('listing order on Elasticsearch', () => {
  for (const sort of SORTS) {
    for (const order of ['desc', 'asc'] as const) {
      test(`sort=${sort} order=${order}: pages equal the in-memory order`, async () => {
        for (const filter of FILTERS) {
          for (const limit of [1, 7, 50, 500]) {
            if (limit === 1 && !filter.entity && !filter.severity) continue;
            const q = { ...filter, sort, order, limit };
            expect(await pages(q), JSON.stringify(q)).toEqual(expected(q));
          }
        }
      });
    }
  }

  test('summaries leave out evidence, detection ids, history and comments', async () => {
    const page = await repo.list({ limit: 3 });
    for (const item of page.items) {
      expect(Object.keys(item)).not.toEqual(
        expect.arrayContaining([expect.stringMatching(/^(evidence|detection_ids|history|comments)$/)]),
      );
      expect(item).toHaveProperty('title');
    }
  });

  test('oldest first stays exact when incidents arrive outside the extent measured before', async () => {
    const before = await repo.list({ order: 'asc', limit: 5 });
    expect(before.items.map((i) => i.id)).toEqual(expected({ order: 'asc' }).slice(0, 5));
    // Older than anything stored (the cached extent's minimum) and newer than its maximum.
    const older = makeIncident(900, {
      created_at: '2026-02-01T00:00:00.000Z',
      first_seen: '2026-02-01T00:00:00.000Z',
      last_seen: '2026-02-01T00:00:00.000Z',
    });
    const newer = makeIncident(901, {
      created_at: '2027-01-01T00:00:00.000Z',
      first_seen: '2027-01-01T00:00:00.000Z',
      last_seen: '2027-01-01T00:00:00.000Z',
    });
    await store([older, newer]);
    const q = { order: 'asc', limit: 9 } as const;
    expect(await pages(q)).toEqual(expected(q));
    expect((await repo.list(q)).items[0]!.id).toBe(older.id);
  });

  test('a listing shows each incident as stored now, whoever changed it (held summaries are checked by version)', async () => {
    const first = (await repo.list({ limit: 3 })).items;
    const target = first[1]!;
    // Another API process triages it...
    const other = new ElasticsearchIncidentRepository(it.es, it.prefix);
    await other.assign(target.id, 'alice', 'analyst-2');
    expect((await repo.list({ limit: 3 })).items.find((i) => i.id === target.id)?.assignee).toBe('alice');
    // ...and something outside the API rewrites its title (a re-detection, a restore).
    const index = indexNames(it.prefix).incidents;
    await it.es.update({ index, id: target.id, doc: { title: 'Rewritten elsewhere' }, refresh: true });
    const again = (await repo.list({ limit: 3 })).items;
    expect(again.find((i) => i.id === target.id)).toMatchObject({
      assignee: 'alice',
      title: 'Rewritten elsewhere',
    });
    // Unchanged incidents are listed exactly as before.
    expect(again.filter((i) => i.id !== target.id)).toEqual(first.filter((i) => i.id !== target.id));
    const stored = all.find((i) => i.id === target.id)!;
    stored.assignee = 'alice';
    stored.title = 'Rewritten elsewhere';
  });

  test('a severity cursor with a rank that does not exist is a cursor error', async () => {
    const bad = Buffer.from(JSON.stringify({ s: 'severity', o: 'desc', v: [9, 0, 'x'] })).toString(
      'base64url',
    );
    await expect(repo.list({ sort: 'severity', cursor: bad })).rejects.toThrow(/cursor/);
  });
});
