import { describe, expect, it } from 'vitest';
import {
  keyTime,
  type Lister,
  type ListPage,
  listObjects,
  mayHoldRange,
  partitionSpan,
  startTime,
} from './layouts.ts';

const utc = (s: string) => Date.parse(`${s}Z`);

describe('key layouts', () => {
  it('reads the time in AWS and Azure log object names', () => {
    expect(
      keyTime(
        'AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2026/11/23/123456789012_elasticloadbalancing_eu-west-1_app.api.50dc6c495c0c9188_20261123T1205Z_10.0.1.5_2x9k.log.gz',
      ),
    ).toBe(utc('2026-11-23T12:05:00'));
    expect(
      keyTime(
        'aws-waf-logs-edge/AWSLogs/123456789012/WAFLogs/cloudfront/api-acl/2026/11/23/12/05/123456789012_waflogs_cloudfront_api-acl_20261123T1205Z_4f2a.log.gz',
      ),
    ).toBe(utc('2026-11-23T12:05:00'));
    expect(keyTime('cf/E2QWRUHAPOMQZL.2026-11-23-12.a1b2c3d4.gz')).toBe(utc('2026-11-23T12:00:00'));
    expect(keyTime('waf/2026/11/23/12/waf-stream-1-2026-11-23-12-07-41-0f1e2d3c.gz')).toBe(
      utc('2026-11-23T12:07:41'),
    );
    expect(
      keyTime(
        'resourceId=/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CDN/PROFILES/AFD/y=2026/m=11/d=23/h=12/m=00/PT1H.json',
      ),
    ).toBe(utc('2026-11-23T12:00:00'));
    expect(keyTime('logs/dt=2026-11-23/part-0001.json')).toBe(utc('2026-11-23T00:00:00'));
    expect(keyTime('exports/app.log')).toBeUndefined();
  });

  it('gives the span a partition covers, and none to other paths', () => {
    expect(partitionSpan('AWSLogs/1/elasticloadbalancing/us-east-1/2026/')).toEqual({
      start: utc('2026-01-01T00:00:00'),
      end: utc('2027-01-01T00:00:00'),
    });
    expect(partitionSpan('x/2026/02/')).toEqual({
      start: utc('2026-02-01T00:00:00'),
      end: utc('2026-03-01T00:00:00'),
    });
    expect(partitionSpan('x/y=2026/m=11/d=23/h=07/')).toEqual({
      start: utc('2026-11-23T07:00:00'),
      end: utc('2026-11-23T08:00:00'),
    });
    // account ids and other numbers are not years
    expect(partitionSpan('AWSLogs/123456789012/')).toBeUndefined();
    expect(partitionSpan('builds/1234/')).toBeUndefined();
  });

  it('keeps objects near the range (delivery trails the events) and drops the rest', () => {
    const range = { since: utc('2026-11-23T12:00:00'), until: utc('2026-11-23T13:00:00') };
    expect(mayHoldRange('a/E1.2026-11-23-12.x.gz', range)).toBe(true);
    expect(mayHoldRange('a/E1.2026-11-23-14.x.gz', range)).toBe(true); // within the margin
    expect(mayHoldRange('a/E1.2026-11-23-18.x.gz', range)).toBe(false);
    expect(mayHoldRange('a/E1.2026-11-22-12.x.gz', range)).toBe(false);
    expect(mayHoldRange('a/no-time.log', range)).toBe(true);
    // only the directories give a time: the whole partition counts
    expect(mayHoldRange('logs/2026/11/23/big.log.gz', { since: utc('2026-11-23T20:00:00') })).toBe(true);
    expect(mayHoldRange('logs/2026/11/22/big.log.gz', { since: utc('2026-11-23T20:00:00') })).toBe(false);
  });

  it('lists only the date partitions that overlap the range', async () => {
    const keys = [
      'AWSLogs/1/elb/r/2026/11/22/a_20261122T2355Z_x.log.gz',
      'AWSLogs/1/elb/r/2026/11/23/b_20261123T1205Z_x.log.gz',
      'AWSLogs/1/elb/r/2026/11/24/c_20261124T0005Z_x.log.gz',
      'AWSLogs/1/elb/r/2025/01/01/d_20250101T0000Z_x.log.gz',
    ];
    const listed: string[] = [];
    // A store listing one level per call, as S3 and Azure do with a "/" delimiter.
    const lister: Lister = {
      async *list(prefix, delimited): AsyncIterable<ListPage> {
        listed.push(prefix);
        const under = keys.filter((k) => k.startsWith(prefix));
        if (!delimited) {
          yield { prefixes: [], objects: under.map((key) => ({ key, etag: 'e', size: 1, modified: 0 })) };
          return;
        }
        const prefixes = new Set<string>();
        const objects = [];
        for (const k of under) {
          const rest = k.slice(prefix.length);
          const slash = rest.indexOf('/');
          if (slash >= 0) prefixes.add(prefix + rest.slice(0, slash + 1));
          else objects.push({ key: k, etag: 'e', size: 1, modified: 0 });
        }
        yield { prefixes: [...prefixes].sort(), objects };
      },
    };
    const got: string[] = [];
    for await (const o of listObjects(lister, 'AWSLogs/', {
      since: utc('2026-11-23T10:00:00'),
      until: utc('2026-11-23T13:00:00'),
    }))
      got.push(o.key);
    expect(got).toEqual(['AWSLogs/1/elb/r/2026/11/23/b_20261123T1205Z_x.log.gz']);
    expect(listed).not.toContain('AWSLogs/1/elb/r/2025/');
    expect(listed).not.toContain('AWSLogs/1/elb/r/2026/11/24/');
    // no range: one flat listing
    listed.length = 0;
    const all: string[] = [];
    for await (const o of listObjects(lister, 'AWSLogs/')) all.push(o.key);
    expect([all.length, listed]).toEqual([4, ['AWSLogs/']]);
  });

  it('reads a start setting', () => {
    const now = utc('2026-12-01T00:00:00');
    expect(startTime('beginning', now)).toBeUndefined();
    expect(startTime('now', now)).toBe(now);
    expect(startTime('2026-11-23', now)).toBe(utc('2026-11-23T00:00:00'));
    expect(startTime('2026-11-23T10:00:00Z', now)).toBe(utc('2026-11-23T10:00:00'));
  });
});
