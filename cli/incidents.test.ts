/**
 * `gatewatch incidents …` on the embedded SQLite store (issue 19, item 10); the same cases
 * run on Elasticsearch in incidents.int.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe } from 'vitest';
import { SqliteAuditLog } from '../embedded/api-stores.ts';
import { EmbeddedStore } from '../embedded/store.ts';
import { fixtureIncidents, incidentCommandCases } from './incidents-cases.ts';

const db = join(mkdtempSync(join(tmpdir(), 'gw-incidents-')), 'store.sqlite');

beforeAll(async () => {
  const store = new EmbeddedStore(db);
  try {
    const writer = store.incidentStore();
    for (const incident of fixtureIncidents()) await writer.create(incident);
  } finally {
    store.close();
  }
});

describe('incidents (embedded store)', () => {
  incidentCommandCases(() => ({
    args: ['--embedded', '--db', db],
    env: {},
    async auditActions(id) {
      const store = new EmbeddedStore(db);
      try {
        return (await new SqliteAuditLog(store).list({ target_id: id, size: 100 })).map((e) => e.action);
      } finally {
        store.close();
      }
    },
  }));
});
