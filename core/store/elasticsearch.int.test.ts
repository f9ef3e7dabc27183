import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationContext } from '../../test/harness/context.ts';
import type { GatewatchEvent } from '../schema/event.ts';
import { bulkWrite, indexNames, probeCapabilities, searchAll } from './elasticsearch.ts';
import { installCoreTemplates } from './templates.ts';

const ctx = integrationContext('store');
const names = indexNames(ctx.prefix);

function event(id: string, ip: string, status: number, ts = '2026-11-23T10:00:00.000Z'): GatewatchEvent {
  return {
    '@timestamp': ts,
    event: { id, dataset: 'test', outcome: status < 400 ? 'success' : 'failure' },
    source: { ip },
    http: { request: { method: 'GET' }, response: { status_code: status } },
    url: { path: '/users/1' },
    gatewatch: { route: '/users/{id}', extra: { tenant: 'acme' } },
  };
}

describe('Elasticsearch store layer (real node)', () => {
  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
  });
  afterAll(() => ctx.cleanup());

  it('installs the events template with explicit mappings derived from the schema', async () => {
    const { index_templates } = await ctx.es.indices.getIndexTemplate({ name: names.eventsTemplate });
    const mappings = index_templates[0]!.index_template.template!.mappings!;
    expect(mappings.dynamic).toBe('strict');
    const props = mappings.properties as Record<
      string,
      { type?: string; properties?: Record<string, { type?: string }> }
    >;
    expect(props.source!.properties!.ip!.type).toBe('ip');
    expect(props['@timestamp']!.type).toBe('date');
    expect(props.http!.properties!.response).toBeDefined();
    expect((props.gatewatch!.properties!.extra as { type: string }).type).toBe('flattened');
  });

  it('bulk-indexes documents into daily indices behind the alias and finds them by exact search', async () => {
    const docs = [
      event('a1', '203.0.113.7', 401),
      event('a2', '203.0.113.7', 200),
      event('a3', '2001:db8::1', 200, '2026-11-24T00:00:01.000Z'),
    ];
    const result = await bulkWrite(
      ctx.es,
      docs.map((doc) => ({
        op: 'create',
        index: names.eventsIndexFor(doc['@timestamp']),
        id: doc.event!.id!,
        doc,
      })),
      { refresh: 'wait_for' },
    );
    expect(result.written).toBe(3);
    expect(result.items.map((i) => i.index)).toEqual([
      `${ctx.prefix}-events-2026.11.23`,
      `${ctx.prefix}-events-2026.11.23`,
      `${ctx.prefix}-events-2026.11.24`,
    ]);

    const byIp = await ctx.es.search<GatewatchEvent>({
      index: names.eventsAlias,
      query: {
        bool: {
          filter: [{ term: { 'source.ip': '203.0.113.7' } }, { term: { 'http.response.status_code': 401 } }],
        },
      },
    });
    expect(byIp.hits.hits.map((h) => h._id)).toEqual(['a1']);

    const inV6Range = await ctx.es.search({
      index: names.eventsAlias,
      query: { term: { 'source.ip': '2001:db8::/32' } },
    });
    expect(inV6Range.hits.hits.map((h) => h._id)).toEqual(['a3']);

    const byExtra = await ctx.es.count({
      index: names.eventsAlias,
      query: { term: { 'gatewatch.extra.tenant': 'acme' } },
    });
    expect(byExtra.count).toBe(3);
  });

  it('reports a partial bulk failure per item, in request order', async () => {
    const good = event('b1', '198.51.100.1', 200);
    const duplicate = event('a1', '203.0.113.7', 401);
    const badType = { ...event('b2', '198.51.100.2', 200), source: { ip: 'not-an-ip' } };
    const unknownField = { ...event('b3', '198.51.100.3', 200), surprise: 'field outside the schema' };
    const index = names.eventsIndexFor(good['@timestamp']);
    const result = await bulkWrite(
      ctx.es,
      [good, duplicate, badType, unknownField].map((doc) => ({
        op: 'create' as const,
        index,
        id: doc.event!.id!,
        doc,
      })),
      { refresh: 'wait_for' },
    );
    expect(result.items.map((i) => [i.id, i.status, i.ok, i.duplicate, i.retryable])).toEqual([
      ['b1', 201, true, false, false],
      ['a1', 409, true, true, false],
      ['b2', 400, false, false, false],
      ['b3', 400, false, false, false],
    ]);
    expect(result.items[2]!.error?.type).toBe('document_parsing_exception');
    expect(result.items[3]!.error?.reason).toMatch(/surprise/);
    expect({ written: result.written, duplicates: result.duplicates, rejected: result.rejected }).toEqual({
      written: 1,
      duplicates: 1,
      rejected: 2,
    });
  });

  it('pages through every hit with point-in-time and search_after', async () => {
    const index = names.eventsIndexFor('2026-11-25T00:00:00.000Z');
    const docs = Array.from({ length: 257 }, (_, i) =>
      event(
        `p${String(i).padStart(4, '0')}`,
        '192.0.2.1',
        200,
        `2026-11-25T00:00:${String(i % 60).padStart(2, '0')}.000Z`,
      ),
    );
    await bulkWrite(
      ctx.es,
      docs.map((doc) => ({ op: 'create', index, id: doc.event!.id!, doc })),
      { refresh: 'wait_for' },
    );
    const ids: string[] = [];
    for await (const hit of searchAll(ctx.es, { index, pageSize: 50, sort: [{ 'event.id': 'asc' }] }))
      ids.push(hit._id!);
    expect(ids).toHaveLength(257);
    expect(ids).toEqual(docs.map((d) => d.event!.id).sort());
  });

  it('probes which optional modules the node has', async () => {
    const caps = await probeCapabilities(ctx.es);
    expect(caps.version).toMatch(/^9\./);
    expect(caps.notes.length).toBe(
      [caps.rootEndpoint, caps.scripting, caps.ingestPipelines].filter((x) => !x).length,
    );
  });
});
