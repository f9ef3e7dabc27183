import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeLine } from '../transforms/normalize.ts';
import { createSourceParser, FORMATS, formatIds, getFormat, parseLine } from './index.ts';
import { sampleLines, testContext } from './testing/helpers.ts';
import { schemaProblems } from './testing/schema-check.ts';

describe('format registry', () => {
  it('has unique ids and knows every format', () => {
    expect(new Set(formatIds()).size).toBe(FORMATS.length);
    expect(getFormat('aws.waf')?.id).toBe('aws.waf');
    expect(() => createSourceParser({ name: 's', format: 'nope' })).toThrow(/unknown format "nope"/);
  });

  const sp = createSourceParser({ name: 's' });
  const bad: [string, string | Uint8Array, RegExp][] = [
    ['binary garbage', '\u0000\u0001\u0002\u00ff\ufffd\u0003garbage', /no format matched/],
    ['truncated JSON', '{"timestamp":1704448800123,"httpRequest":{"clientIp":"1.2.3.4"', /invalid JSON/],
    ['JSON scalar', '42', /no format matched/],
    ['unknown JSON object', '{"hello":"world"}', /no format matched the JSON record/],
    ['10 MB line', `{"a":"${'x'.repeat(10 * 1024 * 1024)}"}`, /line too long/],
    ['invalid UTF-8 bytes', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /invalid UTF-8/],
    [
      'truncated ALB line',
      'https 2024-01-05T10:00:00.123456Z app/x 1.2.3.4:1 - -1 -1 -1 200 200 1 1 "GET https://h/',
      /aws.alb/,
    ],
    [
      'Kong without request',
      '{"latencies":{},"started_at":1,"client_ip":"1.2.3.4","request":"x"}',
      /no format matched/,
    ],
  ];
  for (const [what, input, reason] of bad) {
    it(`returns a reason, never throws: ${what}`, () => {
      const r = parseLine(sp, input, 0);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    });
  }

  it('skips blank lines and header lines', () => {
    expect(parseLine(sp, '   \r\n', 0)).toMatchObject({ ok: false, skip: true });
    expect(parseLine(sp, '#Version: 1.0', 0)).toMatchObject({
      ok: false,
      skip: true,
      format: 'aws.cloudfront',
    });
  });

  it('splits Kong array batches and Azure/CloudWatch envelopes into records', () => {
    const kong = sampleLines('kong.http_log')[1]!;
    const r = parseLine(sp, kong, 0);
    expect(r.ok && r.records.map((x) => x.format.id)).toEqual(['kong.http_log', 'kong.http_log']);
    const azure = sampleLines('azure.application_gateway');
    const env = `{"records":[${azure[0]},${azure[1]},{"bogus":1}]}`;
    const r2 = parseLine(sp, env, 0);
    expect(r2.ok).toBe(true);
    if (r2.ok) {
      expect(r2.records).toHaveLength(2);
      expect(r2.records[0]!.original).toBe(JSON.stringify(JSON.parse(azure[0]!)));
      expect(r2.failures).toEqual([{ reason: 'no format matched the JSON record', original: '{"bogus":1}' }]);
    }
    const nginx = sampleLines('nginx.access')[0]!;
    const cw = JSON.stringify({
      messageType: 'DATA_MESSAGE',
      logGroup: 'g',
      logEvents: [{ id: '1', timestamp: 1, message: nginx }],
    });
    const r3 = parseLine(sp, cw, 0);
    expect(r3.ok && r3.records[0]!.format.id).toBe('nginx.access');
    expect(r3.ok && r3.records[0]!.original).toBe(nginx);
  });

  it('honours a fixed format (text formats never try JSON)', () => {
    const fixed = createSourceParser({ name: 's', format: 'nginx.access' });
    expect(parseLine(fixed, sampleLines('nginx.access')[0]!, 0).ok).toBe(true);
    expect(parseLine(fixed, '{"a":1}', 0)).toMatchObject({ ok: false, format: 'nginx.access' });
  });

  it('never throws on arbitrary input (property test)', () => {
    const ctx = testContext();
    const all = FORMATS.map((f) =>
      createSourceParser({ name: 's', format: f.id, fieldMap: { a: 'url.path' } }),
    );
    const samples = [
      'aws.waf',
      'aws.alb',
      'nginx.access',
      'kong.http_log',
      'envoy.access',
      'modsecurity.audit',
    ].flatMap(sampleLines);
    const mutated = fc
      .tuple(fc.constantFrom(...samples), fc.nat(), fc.nat(), fc.string({ maxLength: 8 }))
      .map(([s, a, b, ins]) => {
        const i = a % (s.length + 1);
        const j = Math.min(s.length, i + (b % 40));
        return s.slice(0, i) + ins + s.slice(j);
      });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), mutated, fc.string({ unit: 'binary' })), (line) => {
        for (const p of [sp, ...all]) {
          const r = parseLine(p, line, 0);
          expect(typeof r.ok).toBe('boolean');
        }
        const n = normalizeLine(line, ctx);
        if (n.ok) for (const ev of n.events) expect(schemaProblems(ev)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
