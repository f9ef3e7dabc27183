import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { InventoryAccumulator } from './accumulator.ts';
import { inventoryPlugin } from './api-plugin.ts';
import { MemorySpecStore } from './specs/registry.ts';
import { MemoryInventoryStore } from './store.ts';
import { event, PETSTORE_V1 } from './testing/fixtures.ts';

async function build() {
  const store = new MemoryInventoryStore();
  const specs = new MemorySpecStore();
  const app = Fastify();
  await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 't', version: '1' } } });
  const seen: string[] = [];
  await app.register(inventoryPlugin, {
    store,
    specs,
    now: () => new Date('2026-01-11T00:00:00Z'),
    authorize: (access) => async () => {
      seen.push(access);
    },
  });
  await app.ready();
  return { app, store, specs, seen };
}

describe('inventory API (embedded stores)', () => {
  it('uploads YAML, lists endpoints with classification filter and cursor pages, exports OpenAPI', async () => {
    const { app, store, seen } = await build();
    const up = await app.inject({
      method: 'POST',
      url: '/inventory/specs?source=pets.yaml',
      headers: { 'content-type': 'application/yaml' },
      payload: PETSTORE_V1,
    });
    expect(up.statusCode).toBe(201);
    expect(seen).toContain('admin');
    const acc = new InventoryAccumulator(store);
    acc.add([
      ...['a', 'b', 'c', 'd', 'e'].map((x, i) =>
        event({ route: `/api/v1/shadow-${x}`, at: `2026-01-10T00:00:0${i}.000Z` }),
      ),
      event({ route: '/api/v1/pets/{id}' }),
      event({ route: '/api/v1/legacy/export' }),
    ]);
    await acc.flush();

    const page1 = await app.inject({ url: '/inventory/endpoints?classification=shadow&limit=3' });
    expect(page1.statusCode).toBe(200);
    const b1 = page1.json();
    expect(b1.items).toHaveLength(3);
    expect(b1.items.every((i: { classification: string }) => i.classification === 'shadow')).toBe(true);
    const page2 = (
      await app.inject({ url: `/inventory/endpoints?classification=shadow&limit=3&cursor=${b1.next_cursor}` })
    ).json();
    expect(page2.items).toHaveLength(2);
    expect(page2.next_cursor).toBeNull();
    const routes = [...b1.items, ...page2.items].map((i: { route: string }) => i.route);
    expect(new Set(routes).size).toBe(5);
    expect(routes[0]).toBe('/api/v1/shadow-e'); // last_seen desc

    const zombie = (await app.inject({ url: '/inventory/endpoints?classification=zombie' })).json();
    expect(zombie.items.map((i: { route: string }) => i.route)).toEqual(['/api/v1/legacy/export']);
    expect((await app.inject({ url: '/inventory/endpoints?cursor=zzz' })).statusCode).toBe(400);

    const findings = (await app.inject({ url: '/inventory/findings?kind=shadow' })).json();
    expect(findings.items).toHaveLength(5);

    const doc = (await app.inject({ url: '/inventory/openapi?host=api.example.com' })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/api/v1/pets/{id}'].get.parameters[0]).toMatchObject({
      name: 'id',
      in: 'path',
      required: true,
    });
    expect(doc.paths['/api/v1/legacy/export'].get.deprecated).toBe(true);

    // the plugin's TypeBox schemas feed @fastify/swagger
    const generated = app.swagger() as { paths: Record<string, unknown> };
    expect(Object.keys(generated.paths)).toEqual(
      expect.arrayContaining([
        '/inventory/endpoints',
        '/inventory/specs',
        '/inventory/findings',
        '/inventory/openapi',
      ]),
    );
    await app.close();
  });

  it('refuses an invalid JSON spec with 400 problem+json pointing at the problem', async () => {
    const { app } = await build();
    const bad = JSON.stringify(
      {
        openapi: '3.1.0',
        info: { title: 'x', version: '1' },
        paths: { '/a/{id}': { get: { responses: { 200: { description: 'ok' } } } } },
      },
      null,
      2,
    );
    const r = await app.inject({
      method: 'POST',
      url: '/inventory/specs',
      headers: { 'content-type': 'application/json' },
      payload: bad,
    });
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
    const body = r.json();
    expect(body).toMatchObject({ status: 400, type: expect.stringContaining('invalid-spec') });
    // `field` is the JSON pointer into the uploaded document.
    expect(body.errors[0].field).toBe('/paths/~1a~1{id}/get');
    expect(body.errors[0].message).toMatch(/"\{id\}".*not declared/);
    expect(body.errors[0].line).toBe(bad.split('\n').findIndex((l) => l.includes('"get"')) + 1);
    await app.close();
  });
});
