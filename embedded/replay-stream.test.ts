/**
 * The replay's streaming parts against their reference: rules fed event by event (in any
 * order, through the projections the replay uses, with shared sub-filters) must find exactly
 * what evaluateRule finds over the whole array; the line reader must split lines as
 * node:readline does.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { evaluateRule, projector, ruleFields, ruleStream } from '../detections/engine/evaluate.ts';
import type { SharedFilters } from '../detections/engine/filter.ts';
import { generateEvents, prng } from '../detections/engine/generate.ts';
import { accessor } from '../detections/engine/values.ts';
import { loadRuleFiles } from '../parser/index.ts';
import { INVENTORY_FIELDS, readLines, replayRange } from './replay.ts';
import { columnDecoder, columnEncoder } from './replay-columns.ts';

const H = 3_600_000;
const START = Date.UTC(2025, 2, 1);

describe('rules streamed event by event', () => {
  it('find what evaluateRule finds over all events (built-in pack, shuffled input)', async () => {
    const { rules } = await loadRuleFiles(['detections/rules']);
    const enabled = rules.filter((r) => r.enabled);
    const events = [...generateEvents(20_000, { seed: 11, start: START, spanMs: 48 * H, attackShare: 0.15 })];
    const ts = events.map((e) => Date.parse(e['@timestamp']));
    const bounds = { min: Math.min(...ts), max: Math.max(...ts) };

    // as the replay does: one projection on every field the rules and the inventory read,
    // then each rule keeps its own projection; events in a shuffled order
    const union = projector([...enabled.flatMap(ruleFields), ...INVENTORY_FIELDS]);
    const shared: SharedFilters = new Map();
    const streams = enabled.map((rule) => ruleStream(rule, { project: projector(ruleFields(rule)), shared }));
    // and as the worker thread hands them over: the projections as columns, in batches
    const fields = [...enabled.flatMap(ruleFields), ...INVENTORY_FIELDS];
    const encode = columnEncoder(fields);
    const decode = columnDecoder(fields, INVENTORY_FIELDS);
    const sharedColumns: SharedFilters = new Map();
    const columnStreams = enabled.map((rule) =>
      ruleStream(rule, { project: projector(ruleFields(rule)), shared: sharedColumns }),
    );
    const order = events.map((_, i) => i);
    const random = prng(5);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const i of order) {
      const slim = JSON.parse(JSON.stringify(union(events[i])));
      for (const s of streams) s.add(slim, ts[i]!, events[i]!.event!.id!);
    }
    for (let b = 0; b < order.length; b += 777) {
      const batch = order.slice(b, b + 777);
      const { events: decoded } = decode(encode.encode(batch.map((i) => events[i])));
      batch.forEach((i, k) => {
        for (const s of columnStreams) s.add(decoded[k], ts[i]!, events[i]!.event!.id!);
      });
    }

    let total = 0;
    enabled.forEach((rule, r) => {
      const range = replayRange(rule, bounds);
      const expected = evaluateRule(rule, events, range);
      const got = streams[r]!.finish(range);
      expect(got, rule.id).toEqual(expected);
      expect(columnStreams[r]!.finish(range), `${rule.id} (columns)`).toEqual(expected);
      total += expected.detections.length;
    });
    expect(total).toBeGreaterThan(10);
  });
});

describe('projector', () => {
  const edgeFields = [
    '@timestamp',
    'event.id',
    'source.ip',
    'source.as.number',
    'source.as.organization.name',
    'user.name',
    'user.id',
    'tags',
    'gatewatch.extra.route_name',
    'labels.env',
    'url.path',
  ];
  const edgeEvents: unknown[] = [
    {},
    { '@timestamp': '2025-01-01T00:00:00Z', event: { id: 'x' }, source: { ip: '10.0.0.1', as: null } },
    { source: 'not an object', user: { name: null }, tags: ['a', null, 'b'] },
    { source: { as: { number: [1, 2], organization: 'flat' } }, user: [] },
    { 'user.name': 'dotted-top', user: { id: 7 }, source: { 'as.number': 64500 } },
    { gatewatch: { extra: { route_name: 'r', 'a.b': 1 } }, labels: { env: 'prod' }, url: { path: '/a' } },
  ];

  it('keeps what accessor reads for each field (missing, null, arrays, non-object parents, dotted keys)', () => {
    const fields = edgeFields;
    const events = edgeEvents;
    const project = projector(fields);
    for (const e of events) {
      const p = project(e);
      const viaJson = JSON.parse(JSON.stringify(p));
      for (const f of fields) {
        expect(accessor(f)(p), `${f} of ${JSON.stringify(e)}`).toEqual(accessor(f)(e));
        expect(accessor(f)(viaJson), `${f} of ${JSON.stringify(e)} (JSON)`).toEqual(accessor(f)(e));
      }
    }
  });

  it('columns (the worker thread hand-over) read as the JSON round trip of the projection', () => {
    const events: unknown[] = [
      ...edgeEvents,
      { source: { ip: '10.0.0.1', as: { number: 64500 } }, tags: [], url: { path: '/a', query: '' } },
      { source: { ip: '10.0.0.1', as: { number: 64500 } }, 'url.path': '/dotted', user: { id: Number.NaN } },
      { '@timestamp': 5, event: { id: 1 }, http: { response: { status_code: '200' } } },
      { http: { response: { status_code: 200 } }, gatewatch: { auth: { present: false }, route: '/x' } },
      ...generateEvents(300, { seed: 3, start: START, spanMs: H, attackShare: 0.5 }),
    ];
    const fields = [
      ...edgeFields,
      ...INVENTORY_FIELDS,
      'http.response.status_code',
      'url.query',
      'source.geo',
    ];
    const project = projector(fields);
    const { events: decoded, flat } = columnDecoder(
      fields,
      INVENTORY_FIELDS,
    )(columnEncoder(fields).encode(events));
    // InventoryAccumulator's reader
    const get = (e: Record<string, unknown>, path: string): unknown => {
      if (path in e) return e[path];
      let cur: unknown = e;
      for (const part of path.split('.')) {
        if (cur === null || typeof cur !== 'object') return undefined;
        cur = (cur as Record<string, unknown>)[part];
      }
      return cur;
    };
    events.forEach((e, i) => {
      const viaJson = JSON.parse(JSON.stringify(project(e)));
      for (const f of fields)
        expect(accessor(f)(decoded[i]), `${f} of ${JSON.stringify(e)}`).toEqual(accessor(f)(viaJson));
      for (const f of INVENTORY_FIELDS) expect(flat![i]![f], `${f} (flat)`).toEqual(get(viaJson, f));
    });
  });
});

describe('readLines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatewatch-lines-'));
  const text = 'a\r\nb\n\n\rc\rd\r\r\ne é €\nlast';
  const reference = async () => {
    const out: string[] = [];
    const rl = createInterface({
      input: Readable.from([Buffer.from(text)]),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of rl) if (line.length > 0) out.push(line);
    return out;
  };

  it('splits like node:readline (CRLF, lone CR, blank lines, no final newline), plain and gzip', async () => {
    const plain = join(dir, 'x.log');
    const gz = join(dir, 'x.log.gz');
    writeFileSync(plain, text);
    writeFileSync(gz, gzipSync(text));
    const want = await reference();
    for (const file of [plain, gz]) {
      const got: string[] = [];
      for await (const line of readLines(file)) got.push(line);
      expect(got, file).toEqual(want);
    }
  });

  it('keeps lines whole across read chunks', async () => {
    const file = join(dir, 'big.log');
    const lines = Array.from({ length: 30_000 }, (_, i) => `{"n":${i},"pad":"${'é'.repeat(i % 97)}"}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const got: string[] = [];
    for await (const line of readLines(file)) got.push(line);
    expect(got).toEqual(lines);
  });
});
