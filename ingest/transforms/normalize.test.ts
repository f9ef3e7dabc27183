import { describe, expect, it } from 'vitest';
import { sampleLines } from '../formats/testing/helpers.ts';
import { eventId } from './enrich.ts';
import { createNormalizeContext, normalizeLine } from './normalize.ts';

const NOW = () => Date.UTC(2024, 0, 5, 12);

describe('normalizeLine', () => {
  it('gives the same line the same deterministic id, different per source', () => {
    const line = sampleLines('nginx.access')[0]!;
    const a = normalizeLine(line, createNormalizeContext({ name: 'edge' }, { now: NOW }));
    const b = normalizeLine(line, createNormalizeContext({ name: 'edge' }, { now: NOW }));
    const c = normalizeLine(line, createNormalizeContext({ name: 'other' }, { now: NOW }));
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (a.ok && b.ok && c.ok) {
      expect(a.events[0]!.event!.id).toBe(b.events[0]!.event!.id);
      expect(a.events[0]!.event!.id).toBe(eventId('edge', line));
      expect(c.events[0]!.event!.id).not.toBe(a.events[0]!.event!.id);
    }
  });

  it('keys the id with the fingerprint secret when one is configured', () => {
    const line = sampleLines('nginx.access')[0]!;
    const r = normalizeLine(
      line,
      createNormalizeContext({ name: 'edge', identity: { fingerprintSecret: 's' } }, { now: NOW }),
    );
    expect(r.ok && r.events[0]!.event!.id).toBe(eventId('edge', line, 's'));
  });

  it('drops event.original when configured, secrets never stored anywhere', () => {
    const line = sampleLines('aws.waf')[3]!;
    const keep = normalizeLine(line, createNormalizeContext({ name: 's' }, { now: NOW }));
    const drop = normalizeLine(
      line,
      createNormalizeContext({ name: 's', keepOriginal: false }, { now: NOW }),
    );
    expect(keep.ok && keep.events[0]!.event!.original).toContain('[REDACTED]');
    expect(drop.ok && drop.events[0]!.event!.original).toBeUndefined();
    for (const r of [keep, drop]) {
      const text = JSON.stringify(r);
      expect(text).not.toContain('AKx9f2c4e1ab7d3c5e6f7a8b9');
      expect(text).not.toContain('tok_live_1234567890abcdef');
    }
  });

  it('uses the receive time when a record has no timestamp, and tags it', () => {
    const r = normalizeLine(
      '{"code":200,"target":"/x"}',
      createNormalizeContext(
        {
          name: 's',
          format: 'generic.json',
          fieldMap: { code: 'http.response.status_code', target: '@target' },
        },
        { now: NOW },
      ),
    );
    expect(r.ok && r.events[0]).toMatchObject({
      '@timestamp': '2024-01-05T12:00:00.000Z',
      tags: ['_timestamp_fallback'],
    });
  });

  it('resolves the client through per-source trusted proxies', () => {
    const line = sampleLines('nginx.access')[1]!; // peer 10.0.0.5, XFF "198.51.100.7, 10.0.0.5"
    const r = normalizeLine(
      line,
      createNormalizeContext({ name: 's', clientIp: { trustedProxies: ['10.0.0.0/8'] } }, { now: NOW }),
    );
    expect(r.ok && r.events[0]!.source?.ip).toBe('198.51.100.7');
    expect(r.ok && r.events[0]!.gatewatch?.client).toEqual({
      peer_ip: '10.0.0.5',
      forwarded_for: '198.51.100.7, 10.0.0.5',
    });
  });

  it('adds labels and tags of the source', () => {
    const r = normalizeLine(
      sampleLines('nginx.access')[0]!,
      createNormalizeContext({ name: 's', labels: { env: 'prod' }, tags: ['edge'] }, { now: NOW }),
    );
    expect(r.ok && r.events[0]).toMatchObject({ labels: { env: 'prod' }, tags: ['edge'] });
  });

  it('reports dead letters as values', () => {
    const ctx = createNormalizeContext({ name: 's' }, { now: NOW });
    expect(normalizeLine('not a log line', ctx)).toEqual({ ok: false, reason: 'no format matched the line' });
    expect(normalizeLine('', ctx)).toEqual({ ok: true, events: [], failures: [], skipped: 'empty line' });
  });
});
