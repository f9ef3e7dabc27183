import { readFileSync } from 'node:fs';
import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { FIELDS, getField, kindOf, lookupField, setField } from './catalogue.ts';
import { CATALOGUE_FILE, catalogueJson } from './catalogue-derive.ts';
import { EventSchema, type GatewatchEvent } from './event.ts';
import { eventMappings } from './mapping.ts';

describe('event schema', () => {
  it('derives the flat field catalogue with ECS names and Elasticsearch types', () => {
    expect(FIELDS.get('source.ip')?.type).toBe('ip');
    expect(FIELDS.get('@timestamp')?.type).toBe('date');
    expect(FIELDS.get('http.response.status_code')?.type).toBe('long');
    expect(FIELDS.get('event.category')?.array).toBe(true);
    expect(FIELDS.get('event.original')?.indexed).toBe(false);
    expect(kindOf(FIELDS.get('user_agent.original')!.type)).toBe('string');
    expect(lookupField('gatewatch.extra.tenant')?.type).toBe('keyword');
    expect(lookupField('source.ipp')).toBeUndefined();
  });

  it('catalogue.json is the catalogue event.ts derives (npm run schema:catalogue after changing event.ts)', () => {
    expect(
      readFileSync(CATALOGUE_FILE, 'utf8'),
      'catalogue.json is stale: run npm run schema:catalogue',
    ).toBe(catalogueJson());
  });

  it('derives explicit Elasticsearch mappings, strict at the root', () => {
    const mappings = eventMappings() as { dynamic: string; properties: Record<string, any> };
    expect(mappings.dynamic).toBe('strict');
    expect(mappings.properties.source.properties.ip).toEqual({ type: 'ip' });
    expect(mappings.properties.source.properties.geo.properties.location).toEqual({ type: 'geo_point' });
    expect(mappings.properties.event.properties.original).toEqual({
      type: 'keyword',
      index: false,
      doc_values: false,
    });
    expect(mappings.properties.event.properties.duration).toEqual({ type: 'long' });
    expect(mappings.properties.gatewatch.properties.extra).toEqual({ type: 'flattened', ignore_above: 1024 });
  });

  it('every catalogue field has a mapping at the same path', () => {
    const mappings = eventMappings() as { properties: Record<string, any> };
    for (const [name, info] of FIELDS) {
      const path = name === '@timestamp' ? [name] : name.split('.');
      let node: any = { properties: mappings.properties };
      for (const part of path) node = node?.properties?.[part];
      expect(node?.type, name).toBe(info.type);
    }
  });

  it('validates events against the same definition', () => {
    const good: GatewatchEvent = { '@timestamp': '2026-11-23T10:00:00.000Z', source: { ip: '192.0.2.1' } };
    expect(Value.Check(EventSchema, good)).toBe(true);
    expect(Value.Check(EventSchema, { source: { ip: '192.0.2.1' } })).toBe(false);
    expect(Value.Check(EventSchema, { '@timestamp': 'x', http: { response: { status_code: '200' } } })).toBe(
      false,
    );
  });

  it('reads and writes dotted fields', () => {
    const e: Record<string, unknown> = { '@timestamp': 't' };
    setField(e, 'source.as.number', 64500);
    setField(e, '@timestamp', 'u');
    expect(e).toEqual({ '@timestamp': 'u', source: { as: { number: 64500 } } });
    expect(getField(e, 'source.as.number')).toBe(64500);
    expect(getField({ gatewatch: { extra: { 'a.b': 1 } } }, 'gatewatch.extra.a.b')).toBe(1);
    expect(getField(e, 'source.ip')).toBeUndefined();
  });
});
