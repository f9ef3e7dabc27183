import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { enrichmentWarnings } from './normalize.ts';

describe('start-up warnings about enrichment', () => {
  it('say when no GeoIP or ASN database is configured, and nothing when both are', () => {
    const none = enrichmentWarnings(loadConfig({ env: {} }));
    expect(none).toHaveLength(2);
    expect(none[0]).toContain('ingest.asnDatabase');
    expect(none[1]).toContain('ingest.geoipDatabase');
    const both = loadConfig({
      env: {},
      overrides: { ingest: { asnDatabase: 'asn.mmdb', geoipDatabase: 'city.mmdb' } } as never,
    });
    expect(enrichmentWarnings(both)).toEqual([]);
  });
});
