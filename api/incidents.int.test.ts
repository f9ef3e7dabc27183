import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeIncident, startTestApp, storeIncidents, type TestApp } from './testing/harness.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp('api-incidents');
  await storeIncidents(
    t,
    Array.from({ length: 60 }, (_, i) => makeIncident(i)),
  );
});
afterAll(async () => {
  await t?.close();
});

const get = (url: string, role: 'viewer' | 'analyst' | 'admin' | 'ingest' = 'viewer') =>
  t.app.inject({ method: 'GET', url, headers: t.auth(role) });

describe('listing', () => {
  test('newest first by default, summaries without history', async () => {
    const r = await get('/api/v1/incidents?limit=5');
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.items.map((i: { id: string }) => i.id)).toEqual([
      'inc-0000059',
      'inc-0000058',
      'inc-0000057',
      'inc-0000056',
      'inc-0000055',
    ]);
    expect(body.items[0].history).toBeUndefined();
    expect(body.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test('filters: status, severity, rule, entity, tag, text, time range', async () => {
    const ids = async (qs: string) =>
      ((await get(`/api/v1/incidents?limit=500&${qs}`)).json().items as { id: string }[])
        .map((i) => i.id)
        .sort();
    expect(await ids('severity=critical&severity=high')).toHaveLength(30);
    expect(await ids('rule=rule-1')).toHaveLength(20);
    expect(await ids('entity=203.0.113.7')).toEqual(['inc-0000007']);
    expect(await ids('entity=user-3')).toHaveLength(9);
    expect(await ids('tag=scraping')).toHaveLength(30);
    expect(await ids('q=credential%20stuffing')).toHaveLength(30);
    expect(await ids('from=2026-01-01T00:10:00Z&to=2026-01-01T00:12:00Z')).toEqual([
      'inc-0000010',
      'inc-0000011',
      'inc-0000012',
    ]);
    expect(await ids('status=resolved')).toEqual([]);
  });

  test('sorting by severity then newest, ascending', async () => {
    const r = await get('/api/v1/incidents?sort=severity&order=asc&limit=3');
    expect(r.json().items.map((i: { severity: string }) => i.severity)).toEqual(['low', 'low', 'low']);
    expect(r.json().items[0].id).toBe('inc-0000000');
  });

  test('cursor pages cover every incident exactly once while new incidents arrive', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let inserted = 1000;
    do {
      const page = await get(`/api/v1/incidents?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.statusCode).toBe(200);
      const body = page.json();
      seen.push(...body.items.map((i: { id: string }) => i.id));
      cursor = body.next_cursor;
      // Newer incidents (and one created "in the past" relative to the page) arrive concurrently.
      await storeIncidents(t, [makeIncident(inserted++), makeIncident(inserted++)]);
    } while (cursor);
    const original = Array.from({ length: 60 }, (_, i) => makeIncident(i).id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => original.includes(id))).toEqual([...original].reverse());
  });

  test('a cursor from a different sort, or garbage, is a 400 problem', async () => {
    const first = (await get('/api/v1/incidents?limit=2')).json().next_cursor;
    const r = await get(`/api/v1/incidents?sort=risk&cursor=${first}`);
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.json()).toMatchObject({ status: 400, type: 'urn:gatewatch:problem:invalid-cursor' });
    expect((await get('/api/v1/incidents?cursor=bm90LWpzb24')).statusCode).toBe(400);
  });

  test('validation errors list the failing fields', async () => {
    const r = await get('/api/v1/incidents?status=open&limit=0&colour=red');
    expect(r.statusCode).toBe(400);
    const body = r.json();
    expect(body).toMatchObject({
      type: 'urn:gatewatch:problem:validation',
      title: 'Bad Request',
      status: 400,
    });
    expect(body.instance).toBe('/api/v1/incidents');
    const fields = body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['/querystring/colour', '/querystring/limit']));
    expect(fields.some((f: string) => f.startsWith('/querystring/status'))).toBe(true);
  });
});

describe('one incident and triage', () => {
  test('get returns evidence and history; unknown id is 404 problem', async () => {
    const r = await get('/api/v1/incidents/inc-0000003');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ id: 'inc-0000003', evidence: { event_ids: ['e1', 'e2'] }, history: [] });
    const missing = await get('/api/v1/incidents/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ status: 404, type: 'urn:gatewatch:problem:incident-not-found' });
  });

  test('status changes: transition checks, history, acknowledged_at and resolved_at, audit', async () => {
    const patch = (body: Record<string, unknown>, role: 'analyst' | 'viewer' = 'analyst') =>
      t.app.inject({
        method: 'PATCH',
        url: '/api/v1/incidents/inc-0000004',
        headers: t.auth(role),
        payload: body,
      });
    const triaged = await patch({ status: 'triaged', assignee: 'alice', note: 'looking' });
    expect(triaged.statusCode).toBe(200);
    const a = triaged.json();
    expect(a.status).toBe('triaged');
    expect(a.assignee).toBe('alice');
    expect(a.acknowledged_at).toEqual(expect.any(String));
    expect(a.resolved_at).toBeNull();
    expect(a.history).toHaveLength(2);
    expect(a.history[0]).toMatchObject({ field: 'status', from: 'new', to: 'triaged', note: 'looking' });
    expect(a.history[0].by).toContain('test-analyst');

    const resolved = (await patch({ status: 'resolved', severity: 'critical' })).json();
    expect(resolved.resolved_at).toEqual(expect.any(String));
    expect(resolved.acknowledged_at).toBe(a.acknowledged_at);
    expect(resolved.severity_rank).toBe(4);

    const illegal = await patch({ status: 'in_remediation' });
    expect(illegal.statusCode).toBe(409);
    expect(illegal.json()).toMatchObject({ type: 'urn:gatewatch:problem:illegal-transition', status: 409 });
    expect(illegal.json().detail).toContain('resolved cannot move to in_remediation');

    const reopened = (await patch({ status: 'triaged' })).json();
    expect(reopened.resolved_at).toBeNull();

    expect((await patch({ status: 'triaged' }, 'viewer')).statusCode).toBe(403);
    expect((await patch({})).statusCode).toBe(400);
    expect((await patch({ status: 'closed' })).statusCode).toBe(400);

    await t.it.es.indices.refresh({ index: `${t.it.prefix}-audit` });
    const audit = await t.app.inject({
      method: 'GET',
      url: '/api/v1/audit?target_id=inc-0000004',
      headers: t.auth('admin'),
    });
    expect(audit.json().items.map((e: { action: string }) => e.action)).toEqual([
      'incident.update',
      'incident.update',
      'incident.update',
    ]);
    expect(audit.json().items[0].actor).toContain('test-analyst');
  });

  test('comments', async () => {
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/incidents/inc-0000005/comments',
      headers: t.auth('analyst'),
      payload: { text: 'blocked at the WAF' },
    });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ text: 'blocked at the WAF', id: expect.any(String) });
    const inc = (await get('/api/v1/incidents/inc-0000005')).json();
    expect(inc.comments).toHaveLength(1);
    const missing = await t.app.inject({
      method: 'POST',
      url: '/api/v1/incidents/nope/comments',
      headers: t.auth('analyst'),
      payload: { text: 'x' },
    });
    expect(missing.statusCode).toBe(404);
  });

  test('bulk status change reports each incident', async () => {
    await t.repo.updateStatus('inc-0000006', 'false_positive', 'test');
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/incidents/bulk/status',
      headers: t.auth('analyst'),
      payload: { ids: ['inc-0000006', 'inc-0000008', 'inc-0000009', 'missing'], status: 'in_remediation' },
    });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ updated: 2, failed: 2 });
    expect(body.results).toEqual([
      expect.objectContaining({ id: 'inc-0000006', ok: false, error: 'illegal_transition' }),
      { id: 'inc-0000008', ok: true },
      { id: 'inc-0000009', ok: true },
      expect.objectContaining({ id: 'missing', ok: false, error: 'not_found' }),
    ]);
    const listed = (await get('/api/v1/incidents?status=in_remediation&limit=100'))
      .json()
      .items.map((i: { id: string }) => i.id);
    expect(listed.sort()).toEqual(['inc-0000008', 'inc-0000009']);
  });
});

describe('statistics', () => {
  test('counts by status, severity, rule and over time; MTTA and MTTR', async () => {
    await storeIncidents(t, [
      makeIncident(5000, {
        created_at: '2025-06-01T00:00:00.000Z',
        acknowledged_at: '2025-06-01T00:10:00.000Z',
        resolved_at: '2025-06-01T01:00:00.000Z',
        status: 'resolved',
        severity: 'high',
        severity_rank: 3,
      }),
      makeIncident(5001, {
        created_at: '2025-06-01T02:00:00.000Z',
        acknowledged_at: '2025-06-01T02:30:00.000Z',
        status: 'triaged',
        severity: 'high',
        severity_rank: 3,
      }),
      makeIncident(5002, { created_at: '2025-06-01T05:00:00.000Z', severity: 'low', severity_rank: 1 }),
    ]);
    const r = await get(
      '/api/v1/incidents/stats?from=2025-06-01T00:00:00Z&to=2025-06-01T06:00:00Z&interval=1h',
    );
    expect(r.statusCode).toBe(200);
    const s = r.json();
    expect(s.total).toBe(3);
    expect(s.by_status).toMatchObject({ new: 1, triaged: 1, resolved: 1, false_positive: 0 });
    expect(s.by_severity).toMatchObject({ high: 2, low: 1, critical: 0 });
    expect(s.over_time).toHaveLength(6);
    expect(s.over_time.map((b: { count: number }) => b.count)).toEqual([1, 0, 1, 0, 0, 1]);
    expect(s.over_time[0].by_severity.high).toBe(1);
    expect(s.mean_time_to_acknowledge_ms).toBe(20 * 60_000);
    expect(s.acknowledged).toBe(2);
    expect(s.mean_time_to_resolve_ms).toBe(60 * 60_000);
    expect(s.resolved).toBe(1);
    expect(s.by_rule.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(3);

    const bad = await get(
      '/api/v1/incidents/stats?from=2025-06-01T00:00:00Z&to=2025-07-01T00:00:00Z&interval=1m',
    );
    expect(bad.statusCode).toBe(400);
  });
});

describe('authentication', () => {
  test('no key, a malformed key, a wrong secret and a revoked key are 401 problems', async () => {
    const noKey = await t.app.inject({ method: 'GET', url: '/api/v1/incidents' });
    expect(noKey.statusCode).toBe(401);
    expect(noKey.headers['www-authenticate']).toContain('Bearer');
    expect(noKey.json()).toMatchObject({ status: 401, type: 'urn:gatewatch:problem:unauthenticated' });
    const bad = (authorization: string) =>
      t.app.inject({ method: 'GET', url: '/api/v1/incidents', headers: { authorization } });
    expect((await bad('Bearer nonsense')).statusCode).toBe(401);
    const wrongSecret = t.tokens.viewer.slice(0, -4) + 'AAAA';
    expect((await bad(`Bearer ${wrongSecret}`)).statusCode).toBe(401);
    const { token, key } = await t.app.gatewatch.keys.create('viewer', 'short-lived', 'test');
    expect((await bad(`Bearer ${token}`)).statusCode).toBe(200);
    await t.app.gatewatch.keys.revoke(key.id, 'test');
    expect((await bad(`Bearer ${token}`)).statusCode).toBe(401);
  });
});
