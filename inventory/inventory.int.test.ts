/** The inventory on real Elasticsearch: concurrent merges, shadow/zombie/orphan findings, spec refusal. */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IntegrationContext, integrationContext } from '../test/harness/context.ts';
import { InventoryAccumulator } from './accumulator.ts';
import { inventoryPlugin } from './api-plugin.ts';
import { ElasticsearchSpecStore } from './specs/registry.ts';
import { endpointId } from './state.ts';
import { ElasticsearchInventoryStore } from './store.ts';
import { event, PETSTORE_V1, PETSTORE_V2 } from './testing/fixtures.ts';

let ctx: IntegrationContext;
let store: ElasticsearchInventoryStore;
let specs: ElasticsearchSpecStore;
let app: FastifyInstance;
let clock = new Date('2025-12-01T00:00:00Z');

beforeAll(async () => {
  ctx = integrationContext('inventory');
  store = new ElasticsearchInventoryStore(ctx.es, ctx.prefix, { refresh: true });
  specs = new ElasticsearchSpecStore(ctx.es, ctx.prefix);
  await store.install();
  await specs.install();
  app = Fastify();
  await app.register(inventoryPlugin, { store, specs, now: () => clock, classifier: { orphanDays: 30 } });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await ctx?.cleanup();
});

describe('inventory on Elasticsearch', () => {
  it('merges concurrent flushes of the same endpoints without losing counts (if_seq_no)', async () => {
    const accs = [
      new InventoryAccumulator(store),
      new InventoryAccumulator(store),
      new InventoryAccumulator(store),
    ];
    accs.forEach((acc, k) => {
      acc.add(
        Array.from({ length: 40 }, (_, i) =>
          event({
            host: 'merge.example',
            route: `/r/${i % 4}`,
            ip: `10.${k}.0.${i}`,
            at: `2026-01-0${k + 1}T00:00:00.000Z`,
          }),
        ),
      );
    });
    await Promise.all(accs.map((a) => a.flush()));
    const e = (await store.get(endpointId('merge.example', 'GET', '/r/0')))!;
    expect(e.requests).toBe(30);
    expect(e.clients_estimate).toBe(30);
    expect(e.first_seen).toBe('2026-01-01T00:00:00.000Z');
    expect(e.last_seen).toBe('2026-01-03T00:00:00.000Z');
  });

  it('refuses an invalid spec with 400 problem+json pointing at the problem', async () => {
    const bad = PETSTORE_V1.replace(
      '    get:\n      operationId: listPets',
      '    get:\n      operationId: listPets\n      deprecated: maybe',
    );
    const r = await app.inject({
      method: 'POST',
      url: '/inventory/specs',
      headers: { 'content-type': 'text/yaml' },
      payload: bad,
    });
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = r.json();
    expect(body).toMatchObject({
      type: expect.stringContaining('invalid-spec'),
      status: 400,
    });
    expect(body.detail).toContain('/paths/~1pets/get/deprecated');
    expect(body.errors).toEqual([
      {
        field: '/paths/~1pets/get/deprecated',
        message: '"deprecated" must be true or false',
        line: bad.split('\n').findIndex((l) => l.includes('deprecated: maybe')) + 1,
        column: 7,
      },
    ]);
    expect((await app.inject({ url: '/inventory/specs' })).json().items).toEqual([]);
  });

  it('finds shadow, zombie (deprecated and removed) and orphan APIs', async () => {
    clock = new Date('2025-12-01T00:00:00Z');
    const v1 = await app.inject({
      method: 'POST',
      url: '/inventory/specs?source=v1.yaml',
      headers: { 'content-type': 'application/yaml' },
      payload: PETSTORE_V1,
    });
    expect(v1.statusCode).toBe(201);
    clock = new Date('2025-12-15T00:00:00Z');
    const v2 = await app.inject({
      method: 'POST',
      url: '/inventory/specs?source=v2.yaml',
      headers: { 'content-type': 'application/yaml' },
      payload: PETSTORE_V2,
    });
    expect(v2.json()).toMatchObject({ created: true, spec: { version: 2, current: true } });

    const acc = new InventoryAccumulator(store);
    acc.add([
      event({ route: '/api/v1/pets', at: '2026-01-10T00:00:00.000Z' }),
      event({ route: '/api/v1/pets/{id}', at: '2026-01-10T00:00:00.000Z' }),
      event({ route: '/api/v1/pets/{id}', method: 'DELETE', status: 204, at: '2026-01-10T00:00:00.000Z' }),
      event({ route: '/api/v1/legacy/export', at: '2026-01-10T00:00:00.000Z' }),
      event({ route: '/api/v1/internal/debug', auth: false, at: '2026-01-10T00:00:00.000Z' }),
      event({ host: 'beta.example.com', route: '/api/v1/pets', at: '2026-01-10T00:00:00.000Z' }),
    ]);
    await acc.flush();
    clock = new Date('2026-01-20T00:00:00Z');

    const findings = (await app.inject({ url: '/inventory/findings' })).json().items as {
      kind: string;
      host: string;
      method: string;
      route: string;
      id: string;
      evidence: { reason?: string };
    }[];
    const of = (kind: string) =>
      findings
        .filter((f) => f.kind === kind && f.host !== 'merge.example')
        .map((f) => `${f.method} ${f.host}${f.route}`)
        .sort();
    expect(of('shadow')).toEqual([
      'GET api.example.com/api/v1/internal/debug',
      'GET beta.example.com/api/v1/pets',
    ]);
    expect(of('zombie')).toEqual([
      'DELETE api.example.com/api/v1/pets/{id}',
      'GET api.example.com/api/v1/legacy/export',
    ]);
    expect(findings.find((f) => f.kind === 'zombie' && f.method === 'DELETE')?.evidence.reason).toBe(
      'removed',
    );
    // spec first imported 2025-12-01: operations without traffic for 30 days are orphans
    expect(of('orphan')).toEqual([
      'GET api.example.com/api/v1/pets/mine',
      'GET api.example.com/api/v1/stores/{storeId}/report',
    ]);

    // deterministic ids: reading again gives the same findings
    const again = (await app.inject({ url: '/inventory/findings' })).json().items as { id: string }[];
    expect(again.map((f) => f.id)).toEqual(findings.map((f) => f.id));

    const shadows = (
      await app.inject({ url: '/inventory/endpoints?classification=shadow&limit=1&host=api.example.com' })
    ).json();
    expect(shadows.items.map((i: { route: string }) => i.route)).toEqual(['/api/v1/internal/debug']);

    // cursor pages over Elasticsearch
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (
        await app.inject({
          url: `/inventory/endpoints?host=api.example.com&sort=route&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        })
      ).json();
      seen.push(...page.items.map((i: { method: string; route: string }) => `${i.method} ${i.route}`));
      cursor = page.next_cursor;
    } while (cursor);
    // sorted by route (ties broken by id), every endpoint exactly once
    expect(seen.map((s) => s.split(' ')[1])).toEqual([
      '/api/v1/internal/debug',
      '/api/v1/legacy/export',
      '/api/v1/pets',
      '/api/v1/pets/{id}',
      '/api/v1/pets/{id}',
    ]);
    expect(new Set(seen).size).toBe(5);
  });
  it('reads one endpoint, one spec and the OpenAPI export, and deletes a spec, on Elasticsearch', async () => {
    const id = endpointId('api.example.com', 'GET', '/api/v1/pets');
    const one = await app.inject({ url: `/inventory/endpoints/${id}` });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id, host: 'api.example.com', method: 'GET', route: '/api/v1/pets' });
    expect((await app.inject({ url: '/inventory/endpoints/no-such-endpoint' })).statusCode).toBe(404);

    const listed = (await app.inject({ url: '/inventory/specs' })).json().items as {
      id: string;
      version: number;
    }[];
    const v1 = listed.find((s) => s.version === 1)!;
    const spec = await app.inject({ url: `/inventory/specs/${v1.id}` });
    expect(spec.statusCode).toBe(200);
    expect(spec.json().operation_list.length).toBeGreaterThan(0);

    const exported = await app.inject({ url: '/inventory/openapi?host=api.example.com' });
    expect(exported.statusCode).toBe(200);
    expect(Object.keys(exported.json().paths)).toContain('/api/v1/pets');

    expect((await app.inject({ method: 'DELETE', url: `/inventory/specs/${v1.id}` })).statusCode).toBe(204);
    expect((await app.inject({ url: `/inventory/specs/${v1.id}` })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/inventory/specs/${v1.id}` })).statusCode).toBe(404);
  });
});
