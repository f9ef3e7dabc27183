/**
 * The routes the console needs, on the embedded store: the demo replayed into a temporary
 * SQLite file and the API over it (same routes as the distributed mode; see
 * api/console-api.int.test.ts for Elasticsearch).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY } from '../api/console.ts';
import { loadConfig } from '../core/config/load.ts';
import type { Incident } from '../core/schema/incident.ts';
import { loadRuleFiles } from '../parser/index.ts';
import { buildEmbeddedApp } from './app.ts';
import { replay, replayFiles } from './replay.ts';
import { EmbeddedStore } from './store.ts';

const SCENARIO = 'samples/scenarios/demo';

let dir: string;
let store: EmbeddedStore;
let app: FastifyInstance;
const auth: Record<string, { authorization: string }> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatewatch-console-api-'));
  const path = join(dir, 'gatewatch.sqlite');
  const config = loadConfig({ env: {}, file: `${SCENARIO}/gatewatch.yaml` });
  const { rules } = await loadRuleFiles(config.detections.rulePaths);
  store = new EmbeddedStore(path);
  await replay(replayFiles([SCENARIO]), { config, store, rules });
  app = await buildEmbeddedApp({ config, store, path });
  await app.ready();
  for (const role of ['viewer', 'analyst', 'admin'] as const) {
    auth[role] = {
      authorization: `Bearer ${(await app.gatewatch.keys.create(role, `test-${role}`, 'test')).token}`,
    };
  }
});

afterAll(async () => {
  await app?.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = (method: 'GET' | 'POST' | 'DELETE', url: string, role: string, payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: auth[role],
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });

const incidentOf = (rule: string) => store.incidents().find((i) => i.rule.id === rule) as Incident;

describe('session', () => {
  it('tells the key its role and what it may do', async () => {
    expect((await call('GET', '/api/v1/session', 'viewer')).json()).toMatchObject({
      name: 'test-viewer',
      role: 'viewer',
      can: { triage: false, admin: false },
    });
    expect((await call('GET', '/api/v1/session', 'analyst')).json().can).toEqual({
      triage: true,
      admin: false,
    });
    expect((await app.inject({ url: '/api/v1/session' })).statusCode).toBe(401);
  });
});

describe('exceptions', () => {
  it("are stored with who and why, refused to viewers, and make the rule's next run skip the entity", async () => {
    const incident = incidentOf('credential-stuffing-single-source');
    const ip = incident.entities.ip![0]!;
    const body = {
      rule_id: incident.rule.id,
      entity: { type: 'ip', value: ip },
      reason: 'pentest from our red team',
      incident_id: incident.id,
    };
    expect((await call('POST', '/api/v1/exceptions', 'viewer', body)).statusCode).toBe(403);
    expect(
      (await call('POST', '/api/v1/exceptions', 'analyst', { ...body, rule_id: 'no-such-rule' })).statusCode,
    ).toBe(404);
    expect(
      (await call('POST', '/api/v1/exceptions', 'analyst', { ...body, expires_at: '2001-01-01T00:00:00Z' }))
        .statusCode,
    ).toBe(400);

    const before = (await call('POST', `/api/v1/rules/${incident.rule.id}/run`, 'admin')).json();
    expect(before).toMatchObject({ outcome: 'ok', incidents_excepted: 0 });
    expect(before.detections).toBeGreaterThan(0);

    const created = await call('POST', '/api/v1/exceptions', 'analyst', body);
    expect(created.statusCode).toBe(201);
    const exception = created.json();
    expect(exception).toMatchObject({
      rule_id: incident.rule.id,
      entity: { type: 'ip', value: ip },
      reason: 'pentest from our red team',
      created_by: expect.stringContaining('test-analyst'),
      expires_at: null,
      active: true,
    });
    const listed = (await call('GET', `/api/v1/exceptions?rule_id=${incident.rule.id}`, 'viewer')).json()
      .items;
    expect(listed.map((e: { id: string }) => e.id)).toEqual([exception.id]);

    const after = (await call('POST', `/api/v1/rules/${incident.rule.id}/run`, 'admin')).json();
    expect(after.incidents_excepted).toBeGreaterThanOrEqual(1);
    expect(after.incidents_updated + after.incidents_created + after.incidents_suppressed).toBe(
      before.incidents_updated +
        before.incidents_created +
        before.incidents_suppressed -
        after.incidents_excepted,
    );

    expect((await call('DELETE', `/api/v1/exceptions/${exception.id}`, 'viewer')).statusCode).toBe(403);
    const lifted = await call('DELETE', `/api/v1/exceptions/${exception.id}`, 'analyst');
    expect(lifted.json()).toMatchObject({
      active: false,
      removed_by: expect.stringContaining('test-analyst'),
    });
    expect(
      (await call('GET', `/api/v1/exceptions?rule_id=${incident.rule.id}&active=true`, 'viewer')).json()
        .items,
    ).toEqual([]);
    const again = (await call('POST', `/api/v1/rules/${incident.rule.id}/run`, 'admin')).json();
    expect(again.incidents_excepted).toBe(0);
    expect(
      (await call('DELETE', '/api/v1/exceptions/00000000-0000-0000-0000-000000000000', 'analyst')).statusCode,
    ).toBe(404);
  });
});

describe('entities', () => {
  it('first and last seen, events over time and the filter that finds them', async () => {
    const incident = incidentOf('credential-stuffing-single-source');
    const ip = incident.entities.ip![0]!;
    const r = await call('GET', `/api/v1/entities/ip/${ip}`, 'viewer');
    expect(r.statusCode).toBe(200);
    const e = r.json();
    const events = store.eventsBetween(0, Number.MAX_SAFE_INTEGER).filter((x) => x.source?.ip === ip);
    expect(e.event_count).toBe(events.length);
    expect(e.filter).toBe(`source.ip == "${ip}"`);
    const times = events.map((x) => Date.parse(x['@timestamp'])).sort((a, b) => a - b);
    expect(e.first_seen).toBe(new Date(times[0]!).toISOString());
    expect(e.last_seen).toBe(new Date(times[times.length - 1]!).toISOString());
    expect(e.activity.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(events.length);
    expect((await call('GET', '/api/v1/entities/asn/not-a-number', 'viewer')).statusCode).toBe(400);
    expect((await call('GET', '/api/v1/entities/planet/earth', 'viewer')).statusCode).toBe(400);
    const nobody = (await call('GET', '/api/v1/entities/user/nobody-at-all', 'viewer')).json();
    expect(nobody).toMatchObject({ event_count: 0, first_seen: null, last_seen: null });
  });
});

describe('incident timeline', () => {
  it("counts what the rule's threshold counts, per window, with the window itself as one bucket", async () => {
    const incident = incidentOf('credential-stuffing-single-source');
    const t = (await call('GET', `/api/v1/incidents/${incident.id}/timeline`, 'viewer')).json();
    expect(t.threshold).toEqual({ metric: 'failures', op: '>=', value: 25 });
    expect(t.interval_ms).toBe(15 * 60_000);
    const own = t.buckets.find((b: { start: string }) => b.start === incident.window.start);
    // The bucket of the incident's own window counts exactly the failures the rule counted.
    expect(own.count).toBe(incident.metrics.failures);
    expect(own.count).toBeGreaterThanOrEqual(25);
    expect(t.query).not.toContain('@timestamp');
    expect((await call('GET', '/api/v1/incidents/nope/timeline', 'viewer')).statusCode).toBe(404);
  });
});

describe('rules', () => {
  it('runs and detections per day, as replays and runs record them', async () => {
    const r = (await call('GET', '/api/v1/rules/activity?days=2', 'viewer')).json();
    const today = r.items.filter((x: { day: string }) => x.day === r.to);
    expect(today.map((x: { rule_id: string }) => x.rule_id)).toContain('credential-stuffing-single-source');
    const row = today.find((x: { rule_id: string }) => x.rule_id === 'credential-stuffing-single-source');
    expect(row.runs).toBeGreaterThanOrEqual(1);
    expect(row.detections).toBeGreaterThan(0);
  });

  it("run the rule's test cases as it is and against draft text", async () => {
    const ok = (await call('GET', '/api/v1/rules/credential-stuffing-single-source/tests', 'viewer')).json();
    expect(ok.items.length).toBeGreaterThan(0);
    expect(ok.failed).toBe(0);
    const draft = (
      await call('GET', '/api/v1/rules/credential-stuffing-single-source/draft', 'viewer')
    ).json();
    expect(draft.text).toMatch(/^include "detections\/rules\/_common.gwr"\n/);
    const valid = (await call('POST', '/api/v1/rules/validate', 'analyst', { text: draft.text })).json();
    expect(valid).toMatchObject({ valid: true, diagnostics: [] });
    const stricter = draft.text.replace('failures >= 25', 'failures >= 10000');
    const r = (
      await call('POST', '/api/v1/rules/credential-stuffing-single-source/tests', 'analyst', {
        text: stricter,
      })
    ).json();
    expect(r.failed).toBeGreaterThan(0);
    expect(
      (
        await call('POST', '/api/v1/rules/credential-stuffing-single-source/tests', 'viewer', {
          text: stricter,
        })
      ).statusCode,
    ).toBe(403);
  });

  it('no ingest queue in the embedded mode', async () => {
    expect((await call('GET', '/api/v1/ingest/queue', 'viewer')).json()).toEqual({ queue: null });
  });

  it('event fields for completion', async () => {
    const fields = (await call('GET', '/api/v1/events/fields', 'viewer')).json().items;
    expect(fields).toContainEqual(expect.objectContaining({ name: 'source.ip', kind: 'ip' }));
    expect(fields.some((f: { name: string }) => f.name === 'event.original')).toBe(false);
  });
});

describe('console files', () => {
  it('served without a key, with a strict CSP, at every console path', async () => {
    for (const url of ['/', '/incidents/abc', '/rules/x', '/entities/ip/1.2.3.4', '/operations']) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/html/);
      expect(r.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
      expect(r.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    }
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/script-src[^;]*unsafe/);
    const script = /src="(\/assets\/[^"]+\.js)"/.exec((await app.inject({ url: '/' })).body)![1]!;
    const asset = await app.inject({ url: script });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
    expect((await app.inject({ url: '/assets/nope.js' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/assets/..%2Fpackage.json' })).statusCode).toBe(404);
    // API paths are not swallowed by the console.
    expect((await app.inject({ url: '/api/v1/nothing-here', headers: auth.viewer })).statusCode).toBe(404);
  });
});
