import { describe, expect, it } from 'vitest';
import { formatIds } from '../formats/index.ts';
import { sampleLines } from '../formats/testing/helpers.ts';
import { eventId } from './enrich.ts';
import { createNormalizeContext, normalizeLine, normalizeLines } from './normalize.ts';
import { createScrubber } from './scrub.ts';

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

describe('normalizeLines (a batch, parsed grouped by format)', () => {
  it('gives exactly what normalizeLine gives line by line, in input order', () => {
    // Every sample line of every format, interleaved line by line, plus lines that fail,
    // are skipped, or carry several records; CloudFront's #Fields header must still apply to
    // the CloudFront lines after it although other formats come in between.
    const byFormat = formatIds()
      .filter((id) => id !== 'generic.json')
      .map((id) => sampleLines(id));
    const lines: string[] = [];
    for (let i = 0; byFormat.some((ls) => i < ls.length); i++)
      for (const ls of byFormat) if (i < ls.length) lines.push(ls[i]!);
    // A second #Fields header with another field order, other formats in between, then a
    // CloudFront line in that order: parsed right only if the header is applied before it.
    const kong = sampleLines('kong.http_log')[0]!;
    const nginx = sampleLines('nginx.access')[0]!;
    lines.push(
      '#Fields: date time cs-method cs-uri-stem c-ip cs(Host) sc-status sc-bytes time-taken cs-protocol',
      nginx,
      '2024-01-05\t10:05:00\tPOST\t/reordered/fields\t198.51.100.9\td1.cloudfront.net\t204\t0\t0.010\thttps',
      kong,
      '#Fields: date time c-ip cs-method cs(Host) cs-uri-stem sc-status sc-bytes time-taken cs-protocol',
      '2024-01-05\t10:06:00\t198.51.100.10\tDELETE\td1.cloudfront.net\t/second/layout\t410\t0\t0.010\thttps',
    );
    lines.push('', 'not a log line', '{"truncated": ', `[${kong}, 42]`);
    const config = { name: 'mixed', identity: { fingerprintSecret: 'secret-for-tests' } };
    const one = createNormalizeContext(config, { now: NOW });
    const expected = lines.map((l) => normalizeLine(l, one));
    const actual = normalizeLines(lines, createNormalizeContext(config, { now: NOW }));
    expect(actual).toEqual(expected);
    expect(actual.filter((r) => r.ok && r.events.length > 0).length).toBeGreaterThan(50);
    expect(actual.filter((r) => !r.ok).length).toBeGreaterThanOrEqual(2);
    const paths = actual.flatMap((r) =>
      r.ok ? r.events.map((e) => `${e.http?.request?.method} ${e.url?.path}`) : [],
    );
    expect(paths).toContain('POST /reordered/fields');
    expect(paths).toContain('DELETE /second/layout');
  });

  it('gives the same events, ids included, whether a receiver scrubbed the line before queueing it or the normaliser does', () => {
    const secret = 'ids-across-paths-secret';
    const config = { name: 'edge', identity: { fingerprintSecret: secret } };
    const receiver = createScrubber({ fingerprintSecret: secret });
    const lines = formatIds()
      .filter((id) => id !== 'generic.json')
      .flatMap((id) => sampleLines(id));
    // in one context each, in order (formats keep state: CloudFront #Fields, route templates)
    const direct = normalizeLines(lines, createNormalizeContext(config, { now: NOW }));
    const queued = normalizeLines(
      lines.map((l) => receiver(l)),
      createNormalizeContext(config, { now: NOW }),
      { scrubbed: true },
    );
    expect(queued).toEqual(direct);
    const fingerprints = direct.flatMap((r) =>
      r.ok ? r.events.map((e) => e.gatewatch?.api_key?.fingerprint).filter((f) => f !== undefined) : [],
    );
    expect(fingerprints.length).toBeGreaterThan(5);
  });

  it('keeps one id for a resent record and distinct ids for records that differ only in a secret', () => {
    const ctx = createNormalizeContext(
      { name: 'edge', identity: { fingerprintSecret: 'k'.repeat(16) } },
      { now: NOW },
    );
    const line = (key: string) =>
      `203.0.113.9 - - [05/Jan/2024:10:00:00 +0000] "GET /v1/orders?api_key=${key} HTTP/1.1" 401 12 "-" "curl/8.5"`;
    const id = (l: string) => {
      const r = normalizeLine(l, ctx);
      if (!r.ok) throw new Error(r.reason);
      return r.events[0]!.event!.id!;
    };
    expect(id(line('key-aaaaaaaa'))).toBe(id(line('key-aaaaaaaa')));
    expect(id(line('key-aaaaaaaa'))).not.toBe(id(line('key-bbbbbbbb')));
  });
});
