import { Reader } from 'maxmind';
import { describe, expect, it, vi } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import { createGeoEnricher } from './geo.ts';
import { writeMmdb } from './testing/mmdb-writer.ts';

const city = writeMmdb(
  [
    {
      network: '203.0.113.0/24',
      data: {
        country: { iso_code: 'NL', names: { en: 'Netherlands' }, geoname_id: 2750405 },
        subdivisions: [{ iso_code: 'NH', names: { en: 'North Holland' }, geoname_id: 2749879 }],
        city: { names: { en: 'Amsterdam' }, geoname_id: 2759794 },
        location: { latitude: 52.3759, longitude: 4.8975, accuracy_radius: 20 },
      },
    },
    {
      network: '198.51.100.0/25',
      data: { country: { iso_code: 'DE', names: { en: 'Germany' }, geoname_id: 2921044 } },
    },
    {
      network: '2001:db8:beef::/48',
      data: {
        country: { iso_code: 'US', names: { en: 'United States' }, geoname_id: 6252001 },
        location: { latitude: 37.751, longitude: -97.822 },
      },
    },
  ],
  { databaseType: 'GeoLite2-City' },
);
const asn = writeMmdb(
  [
    {
      network: '203.0.113.0/24',
      data: { autonomous_system_number: 64500, autonomous_system_organization: 'Example Hosting BV' },
    },
    {
      network: '2001:db8::/32',
      data: { autonomous_system_number: 64501, autonomous_system_organization: 'Doc Net' },
    },
  ],
  { databaseType: 'GeoLite2-ASN' },
);

describe('MMDB test writer', () => {
  it('produces databases the real maxmind Reader reads', () => {
    const r = new Reader<Record<string, unknown>>(city);
    expect(r.metadata.databaseType).toBe('GeoLite2-City');
    expect(r.get('203.0.113.9')).toMatchObject({
      country: { iso_code: 'NL' },
      city: { names: { en: 'Amsterdam' } },
    });
    expect(r.get('198.51.100.127')).toMatchObject({ country: { iso_code: 'DE' } });
    expect(r.get('198.51.100.128')).toBeNull();
    expect(r.get('2001:db8:beef:1::5')).toMatchObject({ country: { iso_code: 'US' } });
    expect(r.get('192.0.2.1')).toBeNull();
  });
});

describe('GeoIP / ASN enrichment', () => {
  it('fills source.geo and source.as through the maxmind Reader', () => {
    const geo = createGeoEnricher({ cityDatabase: city, asnDatabase: asn });
    const ev: EventDraft = { source: { ip: '203.0.113.45' } };
    geo.apply(ev);
    expect(ev.source).toEqual({
      ip: '203.0.113.45',
      geo: {
        country_iso_code: 'NL',
        country_name: 'Netherlands',
        region_name: 'North Holland',
        city_name: 'Amsterdam',
        location: { lat: 52.3759, lon: 4.8975 },
      },
      as: { number: 64500, organization: { name: 'Example Hosting BV' } },
    });
  });

  it('keeps a country the source reported and looks up IPv6', () => {
    const geo = createGeoEnricher({ cityDatabase: city, asnDatabase: asn });
    const ev: EventDraft = { source: { ip: '2001:db8:beef::77', geo: { country_iso_code: 'CA' } } };
    geo.apply(ev);
    expect(ev.source?.geo).toEqual({
      country_iso_code: 'CA',
      country_name: 'United States',
      location: { lat: 37.751, lon: -97.822 },
    });
    expect(ev.source?.as).toEqual({ number: 64501, organization: { name: 'Doc Net' } });
  });

  it('caches lookups and ignores unknown or invalid addresses', () => {
    const geo = createGeoEnricher({ cityDatabase: city });
    expect(geo.city('192.0.2.1')).toBeUndefined();
    expect(geo.city('not-an-ip')).toBeUndefined();
    const a = geo.city('203.0.113.1');
    expect(geo.city('203.0.113.1')).toBe(a);
    const ev: EventDraft = { source: { ip: '192.0.2.1' } };
    geo.apply(ev);
    expect(ev.source).toEqual({ ip: '192.0.2.1' });
  });

  it('skips enrichment with one clear message when a database is missing or corrupt', () => {
    const log = vi.fn();
    const geo = createGeoEnricher({
      cityDatabase: '/nonexistent/GeoLite2-City.mmdb',
      asnDatabase: Buffer.from('garbage'),
      log,
    });
    expect(geo.hasCity).toBe(false);
    expect(geo.hasAsn).toBe(false);
    createGeoEnricher({ cityDatabase: '/nonexistent/GeoLite2-City.mmdb', log });
    expect(log).toHaveBeenCalledTimes(2);
    expect(log.mock.calls[0]![0]).toMatch(
      /GeoIP database \/nonexistent\/GeoLite2-City.mmdb cannot be used .*skipped/,
    );
    const ev: EventDraft = { source: { ip: '203.0.113.45' } };
    geo.apply(ev);
    expect(ev.source).toEqual({ ip: '203.0.113.45' });
  });
});
