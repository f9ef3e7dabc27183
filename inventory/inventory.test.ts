import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InventoryAccumulator } from './accumulator.ts';
import { Classifier } from './classify.ts';
import { DistinctSketch, histAdd, histQuantile } from './sketch.ts';
import { SpecInvalidError } from './specs/parse.ts';
import { importSpec, MemorySpecStore } from './specs/registry.ts';
import { endpointId, mergeState } from './state.ts';
import { MemoryInventoryStore } from './store.ts';
import { event, PETSTORE_V1, PETSTORE_V2, SWAGGER_2 } from './testing/fixtures.ts';

describe('sketches', () => {
  it('distinct sketch is exact when small and within 10 % when large, and merges', () => {
    const a = new DistinctSketch();
    const b = new DistinctSketch();
    for (let i = 0; i < 50; i++) a.add(`ip${i}`);
    expect(a.estimate()).toBe(50);
    for (let i = 0; i < 20000; i++) (i % 2 ? a : b).add(`ip${i}`);
    const merged = DistinctSketch.fromJSON(a.toJSON()).merge(DistinctSketch.fromJSON(b.toJSON()));
    expect(Math.abs(merged.estimate() - 20000) / 20000).toBeLessThan(0.1);
  });

  it('histogram median is within 10 %', () => {
    const h = {};
    for (let i = 1; i <= 1001; i++) histAdd(h, i * 10);
    expect(Math.abs(histQuantile(h, 0.5)! - 5010) / 5010).toBeLessThan(0.1);
  });
});

describe('accumulator and state', () => {
  it('folds batches incrementally; merge order does not matter', async () => {
    const store = new MemoryInventoryStore();
    const acc = new InventoryAccumulator(store);
    acc.add([
      event({ route: '/api/v1/pets/{id}', ip: '1.1.1.1', params: ['x'] }),
      event({
        route: '/api/v1/pets/{param}',
        ip: '1.1.1.2',
        status: 404,
        auth: false,
        at: '2026-01-09T00:00:00.000Z',
      }),
    ]);
    await acc.flush();
    acc.add([event({ route: '/api/v1/pets/{id}', ip: '1.1.1.1', status: 200, auth: false, key: 'k1' })]);
    await acc.flush();
    const e = (await store.get(endpointId('api.example.com', 'GET', '/api/v1/pets/{id}')))!;
    expect(e.requests).toBe(3);
    expect(e.clients_estimate).toBe(2);
    expect(e.keys_estimate).toBe(1);
    expect(e.status_classes).toMatchObject({ '2xx': 2, '4xx': 1 });
    expect(e.auth).toMatchObject({ present: 1, absent: 2, anonymous_success: 1 });
    expect(e.first_seen).toBe('2026-01-09T00:00:00.000Z');
    expect(e.params).toEqual(['x']);
    expect(e.route_variants.sort()).toEqual(['/api/v1/pets/{id}', '/api/v1/pets/{param}']);
    expect(e.bytes_p50).toBeGreaterThan(450);
    // JSON round trip of the memory store
    const copy = MemoryInventoryStore.fromJSON(JSON.parse(JSON.stringify(store.toJSON())));
    expect(await copy.get(e.id)).toEqual(e);
  });

  it('mergeState is commutative on counts and sketches', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 60 }),
        async (ips) => {
          const half = Math.floor(ips.length / 2);
          const mk = async (xs: number[]) => {
            const s = new MemoryInventoryStore();
            const acc = new InventoryAccumulator(s);
            acc.add(xs.map((i) => event({ route: '/r', ip: `10.0.0.${i}`, bytes: i })));
            await acc.flush();
            return (await s.get(endpointId('api.example.com', 'GET', '/r')))!;
          };
          const a = await mk(ips.slice(0, half).length ? ips.slice(0, half) : [0]);
          const b = await mk(ips.slice(half));
          const ab = mergeState(a, b);
          const ba = mergeState(b, a);
          expect(ab.requests).toBe(ba.requests);
          expect(ab.clients_estimate).toBe(ba.clients_estimate);
          expect(ab.sketch).toEqual(ba.sketch);
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('specs', () => {
  it('imports OpenAPI 3 with servers base path, versions, idempotent re-import', async () => {
    const specs = new MemorySpecStore();
    const r1 = await importSpec(specs, PETSTORE_V1);
    expect(r1.spec.key).toBe('api.example.com');
    expect(r1.spec.hosts).toEqual(['api.example.com']);
    expect(r1.spec.operations.find((o) => o.operationId === 'getPet')?.fullPaths).toEqual([
      '/api/v1/pets/{petId}',
    ]);
    expect((await importSpec(specs, PETSTORE_V1)).created).toBe(false);
    const r2 = await importSpec(specs, PETSTORE_V2);
    expect(r2.spec.version).toBe(2);
  });

  it('imports Swagger 2 with basePath and host', async () => {
    const specs = new MemorySpecStore();
    const { spec } = await importSpec(specs, SWAGGER_2);
    expect(spec.format).toBe('swagger-2.0');
    expect(spec.hosts).toEqual(['legacy.example.com']);
    expect(spec.operations[0]!.fullPaths).toEqual(['/rest/orders/{id}']);
  });

  it('refuses invalid specs with pointers and YAML line numbers', async () => {
    const bad = PETSTORE_V1.replace(
      '      - { name: petId, in: path, required: true }\n',
      '      - { name: petId, in: path }\n',
    );
    const err = await importSpec(new MemorySpecStore(), bad).catch((e) => e);
    expect(err).toBeInstanceOf(SpecInvalidError);
    const p = (err as SpecInvalidError).problems[0]!;
    expect(p.pointer).toBe('/paths/~1pets~1{petId}/parameters/0/required');
    expect(p.message).toMatch(/required: true/);
    expect(p.line).toBe(bad.split('\n').findIndex((l) => l.includes('name: petId')) + 1);

    const undeclared = PETSTORE_V1.replace(
      `      parameters:
        - { name: storeId, in: path, required: true }
`,
      '',
    );
    const e2 = (await importSpec(new MemorySpecStore(), undeclared).catch((e) => e)) as SpecInvalidError;
    expect(e2.problems[0]!.pointer).toBe('/paths/~1stores~1{storeId}~1report/get');
    expect(e2.problems[0]!.message).toMatch(/storeId/);

    const syntax = (await importSpec(new MemorySpecStore(), 'openapi: 3.0.0\ninfo: [unclosed\n').catch(
      (e) => e,
    )) as SpecInvalidError;
    expect(syntax.problems[0]!.line).toBeGreaterThan(0);

    const version = (await importSpec(new MemorySpecStore(), '{"openapi": 3, "info": {}}').catch(
      (e) => e,
    )) as SpecInvalidError;
    expect(version.problems[0]!.pointer).toBe('/openapi');
    expect(version.problems[0]!.line).toBe(1);
  });
});

describe('classification', () => {
  async function setup() {
    const specs = new MemorySpecStore();
    await importSpec(specs, PETSTORE_V1, { now: new Date('2025-12-01T00:00:00Z') });
    await importSpec(specs, PETSTORE_V2, { now: new Date('2025-12-15T00:00:00Z') });
    const store = new MemoryInventoryStore();
    const acc = new InventoryAccumulator(store);
    const authed = Array.from({ length: 30 }, (_, i) =>
      event({ route: '/api/v1/pets/{id}', ip: `10.0.0.${i}`, params: ['expand'], status: 200 }),
    );
    acc.add([
      ...authed,
      event({ route: '/api/v1/pets/{id}', auth: false, status: 200 }),
      event({ route: '/api/v1/pets/{id}', status: 500 }),
      event({ route: '/api/v1/pets/mine' }),
      event({ route: '/api/v1/pets/{id}', method: 'DELETE', status: 204 }),
      event({ route: '/api/v1/legacy/export' }),
      event({ route: '/api/v1/admin/debug' }),
      event({ route: '/api/v1/pets', method: 'PUT' }),
    ]);
    await acc.flush();
    return { classifier: new Classifier(await specs.list()), store };
  }

  it('classifies documented, exact-before-templated, shadow, zombie (deprecated and removed)', async () => {
    const { classifier, store } = await setup();
    const get = async (m: string, r: string) =>
      classifier.classify((await store.get(endpointId('api.example.com', m, r)))!);
    expect(await get('GET', '/api/v1/pets/mine')).toMatchObject({
      classification: 'documented',
      operation: { operation_id: 'myPets' },
    });
    const pet = await get('GET', '/api/v1/pets/{id}');
    expect(pet).toMatchObject({
      classification: 'documented',
      operation: { operation_id: 'getPet' },
      anonymous_success: true,
    });
    expect(pet.undocumented_params).toEqual(['expand']);
    expect(pet.undocumented_statuses).toEqual(['500']);
    expect(await get('DELETE', '/api/v1/pets/{id}')).toMatchObject({
      classification: 'zombie',
      reason: 'removed',
    });
    expect(await get('GET', '/api/v1/legacy/export')).toMatchObject({
      classification: 'zombie',
      reason: 'deprecated',
    });
    expect(await get('GET', '/api/v1/admin/debug')).toMatchObject({
      classification: 'shadow',
      reason: 'no-operation',
    });
    expect(await get('PUT', '/api/v1/pets')).toMatchObject({
      classification: 'shadow',
      reason: 'method-not-documented',
    });
  });

  it('produces findings with deterministic ids, including orphans', async () => {
    const { classifier, store } = await setup();
    const all = [];
    for await (const e of store.all()) all.push(e);
    const now = new Date('2026-03-01T00:00:00Z');
    const f1 = classifier.findings(all, now);
    const f2 = classifier.findings(all.reverse(), now);
    expect(f1.map((f) => f.id).sort()).toEqual(f2.map((f) => f.id).sort());
    const kinds = (k: string) =>
      f1
        .filter((f) => f.kind === k)
        .map((f) => `${f.method} ${f.route}`)
        .sort();
    expect(kinds('shadow')).toEqual(['GET /api/v1/admin/debug', 'PUT /api/v1/pets']);
    expect(kinds('zombie')).toEqual(['DELETE /api/v1/pets/{id}', 'GET /api/v1/legacy/export']);
    // traffic on 2026-01-10, now 2026-03-01: everything older than 30 days is an orphan
    expect(kinds('orphan')).toContain('GET /api/v1/stores/{storeId}/report');
    expect(kinds('anonymous_success')).toEqual(['GET /api/v1/pets/{id}']);
    const recent = classifier.findings(all, new Date('2026-01-20T00:00:00Z'));
    expect(recent.filter((f) => f.kind === 'orphan').map((f) => f.route)).toEqual([
      '/api/v1/pets',
      '/api/v1/stores/{storeId}/report',
    ]);
  });
});
