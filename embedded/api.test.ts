/**
 * `gatewatch serve --embedded` end to end without servers: the demo scenario replayed into a
 * temporary SQLite file, the embedded API built over it, and the analyst's path through
 * `app.inject`: list, read, triage, search events, preview a rule.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedServer } from '../cli/commands/serve.ts';
import { loadConfig } from '../core/config/load.ts';
import type { Incident } from '../core/schema/incident.ts';
import { loadRuleFiles } from '../parser/index.ts';
import { buildEmbeddedApp } from './app.ts';
import { replay, replayFiles } from './replay.ts';
import { EmbeddedStore } from './store.ts';

const SCENARIO = 'samples/scenarios/demo';

let dir: string;
let path: string;
let store: EmbeddedStore;
let app: FastifyInstance;
let analyst: { authorization: string };
let admin: { authorization: string };
let bounds: { min: number; max: number };
let config: ReturnType<typeof loadConfig>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatewatch-embedded-api-'));
  path = join(dir, 'gatewatch.sqlite');
  config = loadConfig({ env: {}, file: `${SCENARIO}/gatewatch.yaml` });
  config.detections.rulePaths = ['detections/rules'];
  const { rules } = await loadRuleFiles(config.detections.rulePaths);
  store = new EmbeddedStore(path);
  const result = await replay(replayFiles([SCENARIO]), { config, store, rules });
  expect(result.incidents.length).toBeGreaterThan(5);
  bounds = store.timeBounds()!;
  app = await buildEmbeddedApp({ config, store, path });
  await app.ready();
  analyst = { authorization: `Bearer ${(await app.gatewatch.keys.create('analyst', 'test', 'test')).token}` };
  admin = { authorization: `Bearer ${(await app.gatewatch.keys.create('admin', 'test', 'test')).token}` };
});

afterAll(async () => {
  await app?.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded API', () => {
  it('needs a key and reports readiness of the SQLite file', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/incidents' })).statusCode).toBe(401);
    const bad = await app.inject({
      method: 'GET',
      url: '/api/v1/incidents',
      headers: { authorization: `Bearer gw_0123456789abcdef_${'A'.repeat(43)}` },
    });
    expect(bad.statusCode).toBe(401);
    const ready = await app.inject({ method: 'GET', url: '/health/ready', headers: analyst });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { sqlite: { ok: true } } });
  });

  it('reports rule coverage of the replayed logs', async () => {
    const r = await app.inject({ method: 'GET', url: '/api/v1/rules/coverage', headers: analyst });
    expect(r.statusCode).toBe(200);
    const report = r.json() as {
      events: number;
      summary: string;
      rules: { rule: string; verdict: string }[];
    };
    expect(report.events).toBe(
      Number((store.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n),
    );
    // The demo carries 31 days of history, ASNs, countries and JA3: every rule can fire.
    expect(report.summary).toBe(`all ${report.rules.length} rules can fire on these logs`);
  });

  it('lists incidents in pages whose cursors cover every incident once', async () => {
    const all = store.incidents();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await app.inject({
        method: 'GET',
        url: `/api/v1/incidents?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
        headers: analyst,
      });
      expect(r.statusCode).toBe(200);
      const page = r.json() as { items: Incident[]; next_cursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(7);
      for (const i of page.items) {
        expect(i).not.toHaveProperty('history');
        seen.push(i.id);
      }
      cursor = page.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(all.length);
    expect(seen.length).toBe(all.length);

    const byRule = await app.inject({
      method: 'GET',
      url: '/api/v1/incidents?rule=api-key-new-asn&sort=severity&order=desc',
      headers: analyst,
    });
    const items = (byRule.json() as { items: Incident[] }).items;
    expect(items.length).toBe(all.filter((i) => i.rule.id === 'api-key-new-asn').length);
    expect(items.every((i) => i.rule.id === 'api-key-new-asn')).toBe(true);

    // Entity filter: any role.
    const withIp = all.find((i) => i.entities.ip?.length)!;
    const ip = withIp.entities.ip![0]!;
    const byEntity = await app.inject({
      method: 'GET',
      url: `/api/v1/incidents?entity=${ip}`,
      headers: analyst,
    });
    const ids = (byEntity.json() as { items: Incident[] }).items.map((i) => i.id);
    expect(ids).toContain(withIp.id);
    expect(ids.length).toBe(all.filter((i) => Object.values(i.entities).some((v) => v?.includes(ip))).length);
  });

  it('reads, triages (new → triaged → resolved) and audits an incident', async () => {
    const [first] = (
      (await app.inject({ method: 'GET', url: '/api/v1/incidents?limit=1', headers: analyst })).json() as {
        items: Incident[];
      }
    ).items;
    const id = first!.id;
    const got = await app.inject({ method: 'GET', url: `/api/v1/incidents/${id}`, headers: analyst });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({ id, status: 'new', history: [], acknowledged_at: null });
    expect(
      (await app.inject({ method: 'GET', url: '/api/v1/incidents/nope', headers: analyst })).statusCode,
    ).toBe(404);

    const triaged = await app.inject({
      method: 'PATCH',
      url: `/api/v1/incidents/${id}`,
      headers: analyst,
      payload: { status: 'triaged', assignee: 'alice', note: 'looking' },
    });
    expect(triaged.statusCode).toBe(200);
    const t = triaged.json() as Incident;
    expect(t.status).toBe('triaged');
    expect(t.assignee).toBe('alice');
    expect(t.acknowledged_at).not.toBeNull();
    expect(t.history.map((h) => [h.field, h.from, h.to])).toEqual([
      ['status', 'new', 'triaged'],
      ['assignee', null, 'alice'],
    ]);

    const resolved = await app.inject({
      method: 'PATCH',
      url: `/api/v1/incidents/${id}`,
      headers: analyst,
      payload: { status: 'resolved' },
    });
    expect(resolved.statusCode).toBe(200);
    const r = resolved.json() as Incident;
    expect(r.status).toBe('resolved');
    expect(r.resolved_at).not.toBeNull();
    expect(r.acknowledged_at).toBe(t.acknowledged_at);
    expect(r.history).toHaveLength(3);

    const illegal = await app.inject({
      method: 'PATCH',
      url: `/api/v1/incidents/${id}`,
      headers: analyst,
      payload: { status: 'in_remediation' },
    });
    expect(illegal.statusCode).toBe(409);

    const listed = await app.inject({
      method: 'GET',
      url: '/api/v1/incidents?status=resolved',
      headers: analyst,
    });
    expect((listed.json() as { items: Incident[] }).items.map((i) => i.id)).toEqual([id]);

    const comment = await app.inject({
      method: 'POST',
      url: `/api/v1/incidents/${id}/comments`,
      headers: analyst,
      payload: { text: 'closed after review' },
    });
    expect(comment.statusCode).toBeLessThan(300);

    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() + 86_400_000).toISOString();
    const stats = await app.inject({
      method: 'GET',
      url: `/api/v1/incidents/stats?from=${from}&to=${to}&interval=1h`,
      headers: analyst,
    });
    expect(stats.statusCode).toBe(200);
    expect(stats.json()).toMatchObject({
      total: store.incidents().length,
      acknowledged: 1,
      resolved: 1,
      by_status: { resolved: 1 },
    });
    expect(stats.json().mean_time_to_resolve_ms).toBeGreaterThanOrEqual(0);

    const audit = await app.inject({ method: 'GET', url: `/api/v1/audit?target_id=${id}`, headers: admin });
    expect(audit.statusCode).toBe(200);
    const actions = (audit.json() as { items: { action: string }[] }).items.map((a) => a.action);
    expect(actions.filter((a) => a === 'incident.update')).toHaveLength(2);
  });

  it('searches events with a filter expression, in cursor pages', async () => {
    const expected = Number(
      (
        store.db
          .prepare(
            "SELECT count(*) AS n FROM events WHERE json_extract(doc, '$.http.response.status_code') >= 500",
          )
          .get() as { n: number }
      ).n,
    );
    expect(expected).toBeGreaterThan(0);
    const body = {
      filter: 'http.response.status_code >= 500',
      from: new Date(bounds.min).toISOString(),
      to: new Date(bounds.max + 1).toISOString(),
      limit: Math.max(1, Math.ceil(expected / 3)),
      order: 'asc',
    };
    const ids: string[] = [];
    let last = '';
    let cursor: string | null = null;
    do {
      const r = await app.inject({
        method: 'POST',
        url: '/api/v1/events/search',
        headers: analyst,
        payload: { ...body, ...(cursor ? { cursor } : {}) },
      });
      expect(r.statusCode).toBe(200);
      const page = r.json() as {
        items: {
          '@timestamp': string;
          event: { id: string };
          http: { response: { status_code: number } };
        }[];
        next_cursor: string | null;
      };
      for (const e of page.items) {
        expect(e.http.response.status_code).toBeGreaterThanOrEqual(500);
        expect(e['@timestamp'] >= last).toBe(true);
        last = e['@timestamp'];
        ids.push(e.event.id);
      }
      cursor = page.next_cursor;
    } while (cursor);
    expect(ids.length).toBe(expected);
    expect(new Set(ids).size).toBe(expected);

    const one = await app.inject({ method: 'GET', url: `/api/v1/events/${ids[0]}`, headers: analyst });
    expect(one.statusCode).toBe(200);

    const invalid = await app.inject({
      method: 'POST',
      url: '/api/v1/events/search',
      headers: analyst,
      payload: { ...body, cursor: 'bm90IGEgY3Vyc29y' },
    });
    expect(invalid.statusCode).toBe(400);
  });

  it('previews a rule over stored events without writing incidents', async () => {
    const before = store.incidents().length;
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/rules/preview',
      headers: analyst,
      payload: {
        text: `rule server-errors {
  title "Server errors"
  severity low
  where http.response.status_code >= 500
  incident {
    entities ip: source.ip
    suppress by source.ip for 1d
  }
}
`,
        from: new Date(bounds.max - 20 * 86_400_000).toISOString(),
        to: new Date(bounds.max + 1).toISOString(),
      },
    });
    expect(r.statusCode).toBe(200);
    const preview = r.json() as { incidents: Incident[]; raw_detections: Incident[]; detections: number };
    expect(preview.detections).toBeGreaterThan(0);
    expect(preview.raw_detections).toHaveLength(preview.detections);
    // What the rule would open: one incident per address a day, its repeats suppressed into it,
    // as a replay writes them.
    const ips = new Set(preview.raw_detections.map((i) => i.entities.ip?.[0]));
    expect(preview.incidents.length).toBeLessThan(preview.detections);
    expect(preview.incidents.length).toBeGreaterThanOrEqual(ips.size > 0 ? 1 : 0);
    expect(preview.incidents.reduce((n, i) => n + i.occurrences, 0)).toBe(preview.detections);
    expect(store.incidents().length).toBe(before);
  });

  it('stores a rule through the API and runs it now over the file', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/rules',
      headers: admin,
      payload: {
        text: `rule admin-errors {
  title "Admin route errors"
  severity medium
  where gatewatch.route startswith "/admin" or http.response.status_code >= 500
  incident {
    entities ip: source.ip
  }
}
`,
      },
    });
    expect(created.statusCode).toBe(201);
    const run = await app.inject({ method: 'POST', url: '/api/v1/rules/admin-errors/run', headers: admin });
    expect(run.statusCode).toBe(200);
    expect(run.json()).toMatchObject({ rule_id: 'admin-errors', outcome: 'ok' });
    expect(run.json().incidents_created).toBeGreaterThan(0);
    expect(store.incidents().filter((i) => i.rule.id === 'admin-errors')).toHaveLength(
      run.json().incidents_created,
    );
    const runs = await app.inject({ method: 'GET', url: '/api/v1/rules/admin-errors/runs', headers: admin });
    expect(runs.statusCode).toBe(200);
  });

  it('serves the file over HTTP (gatewatch serve --embedded --db)', async () => {
    const server = await startEmbeddedServer(
      { ...config, api: { ...config.api, host: '127.0.0.1', port: 0 } },
      { db: path, logger: false },
    );
    try {
      const ready = await fetch(`${server.url}/health/ready`, { headers: analyst });
      expect(ready.status).toBe(200);
      const page = (await (
        await fetch(`${server.url}/api/v1/incidents?limit=1`, { headers: analyst })
      ).json()) as {
        items: Incident[];
      };
      expect(page.items).toHaveLength(1);
      const docs = await fetch(`${server.url}/openapi.json`, { headers: analyst });
      expect(docs.status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('rate-limits per key in memory (no Redis)', async () => {
    const memory = new EmbeddedStore(':memory:');
    const limited = await buildEmbeddedApp({
      config: { ...config, api: { ...config.api, rateLimitPerMinute: 2 } },
      store: memory,
    });
    try {
      const headers = {
        authorization: `Bearer ${(await limited.gatewatch.keys.create('viewer', 'rl', 'test')).token}`,
      };
      const codes: number[] = [];
      for (let i = 0; i < 3; i++)
        codes.push((await limited.inject({ method: 'GET', url: '/api/v1/incidents', headers })).statusCode);
      expect(codes).toEqual([200, 200, 429]);
    } finally {
      await limited.close();
      memory.close();
    }
  });
});
