import { describe, expect, it } from 'vitest';
import type { FilterExpr, Metric } from '../../parser/ir.ts';
import { percentileOf } from './aggregate.ts';
import { compileFilter, evaluateRule } from './evaluate.ts';
import { filterToQuery } from './filter-query.ts';
import { re2ToLucene, Untranslatable } from './lucene-regex.ts';
import {
  baselineRule,
  ev,
  filterRule,
  firstSeenRule,
  sequenceRule,
  template,
  thresholdRule,
} from './testing.ts';
import { detectionId, toIncident } from './types.ts';

const M = 60_000;
const T0 = Date.UTC(2025, 0, 1);
const all = { start: T0 - 30 * 24 * 3600_000, end: T0 + 30 * 24 * 3600_000 };

function f(expr: FilterExpr, fields: Record<string, unknown>): boolean {
  return compileFilter(expr)(ev(T0, fields));
}

describe('filters', () => {
  it('missing fields: predicates false, != and not true', () => {
    expect(f({ op: 'cmp', field: 'user.name', cmp: '==', value: 'a' }, {})).toBe(false);
    expect(f({ op: 'cmp', field: 'user.name', cmp: '!=', value: 'a' }, {})).toBe(true);
    expect(f({ op: 'cmp', field: 'http.response.status_code', cmp: '<', value: 400 }, {})).toBe(false);
    expect(f({ op: 'not', arg: { op: 'exists', field: 'user.name' } }, {})).toBe(true);
    expect(f({ op: 'exists', field: 'user.name' }, { 'user.name': null })).toBe(false);
  });
  it('multi-valued fields: any value; != is none equal', () => {
    const tags = { tags: ['a', 'b'] };
    expect(f({ op: 'cmp', field: 'tags', cmp: '==', value: 'b' }, tags)).toBe(true);
    expect(f({ op: 'cmp', field: 'tags', cmp: '!=', value: 'b' }, tags)).toBe(false);
    expect(f({ op: 'in', field: 'tags', values: ['x', 'a'] }, tags)).toBe(true);
    expect(f({ op: 'exists', field: 'tags' }, { tags: [] })).toBe(false);
  });
  it('case sensitivity, globs, substrings', () => {
    const ua = { 'user_agent.original': 'Mozilla sqlMAP/1.0' };
    expect(
      f({ op: 'contains', field: 'user_agent.original', value: 'sqlmap', caseInsensitive: false }, ua),
    ).toBe(false);
    expect(
      f({ op: 'contains', field: 'user_agent.original', value: 'SQLMAP', caseInsensitive: true }, ua),
    ).toBe(true);
    expect(
      f({ op: 'startswith', field: 'user_agent.original', value: 'moz', caseInsensitive: true }, ua),
    ).toBe(true);
    expect(
      f({ op: 'endswith', field: 'user_agent.original', value: '1.0', caseInsensitive: false }, ua),
    ).toBe(true);
    const route = (r: string) => ({ 'gatewatch.route': r });
    const like = (p: string, ci = false): FilterExpr => ({
      op: 'wildcard',
      field: 'gatewatch.route',
      pattern: p,
      caseInsensitive: ci,
    });
    expect(f(like('/api/*/login'), route('/api/v1/x/login'))).toBe(true);
    expect(f(like('/api/*/login'), route('/api/v1/login/x'))).toBe(false);
    expect(f(like('/a?c'), route('/abc'))).toBe(true);
    expect(f(like('/a?c'), route('/ac'))).toBe(false);
    expect(f(like('*\\*'), route('/x*'))).toBe(true);
    expect(f(like('*\\*'), route('/x'))).toBe(false);
    expect(f(like('/LOGIN', true), route('/login'))).toBe(true);
  });
  it('regex: RE2, unanchored, inline flags', () => {
    const re = (p: string, q: string) =>
      f({ op: 'regex', field: 'url.query', pattern: p }, { 'url.query': q });
    expect(re('(?i)(^|&)token=', 'a=1&TOKEN=2')).toBe(true);
    expect(re('(^|&)token=', 'mytoken=2')).toBe(false);
    expect(re('^\\d+$', '123')).toBe(true);
    expect(re('\\d', 'abc')).toBe(false);
  });
  it('cidr v4, v6 and IPv4-mapped; ip equality canonical', () => {
    const c = (cidrs: string[], ip: string) =>
      f({ op: 'cidr', field: 'source.ip', cidrs }, { 'source.ip': ip });
    expect(c(['10.0.0.0/8'], '10.1.2.3')).toBe(true);
    expect(c(['10.0.0.0/8'], '11.1.2.3')).toBe(false);
    expect(c(['10.0.0.0/8'], '::ffff:10.1.2.3')).toBe(true);
    expect(c(['fc00::/7'], 'fd12::1')).toBe(true);
    expect(c(['fc00::/7'], '2001:db8::1')).toBe(false);
    expect(c(['203.0.113.7/32'], '203.0.113.7')).toBe(true);
    expect(c(['10.0.0.0/8'], 'not-an-ip')).toBe(false);
    expect(
      f(
        { op: 'cmp', field: 'source.ip', cmp: '==', value: '2001:db8::1' },
        { 'source.ip': '2001:0db8:0:0::1' },
      ),
    ).toBe(true);
  });
  it('numbers and dates compare by value', () => {
    expect(
      f(
        { op: 'cmp', field: 'http.response.status_code', cmp: '>=', value: 500 },
        { 'http.response.status_code': 503 },
      ),
    ).toBe(true);
    expect(
      f(
        { op: 'cmp', field: 'event.ingested', cmp: '<', value: '2025-01-02T00:00:00Z' },
        { 'event.ingested': '2025-01-01T23:00:00.000Z' },
      ),
    ).toBe(true);
  });
});

describe('filter queries and regex translation', () => {
  it('!= is must_not term (matches missing)', () => {
    expect(filterToQuery({ op: 'cmp', field: 'user.name', cmp: '!=', value: 'a' })).toEqual({
      bool: { must_not: [{ term: { 'user.name': { value: 'a' } } }] },
    });
  });
  it('translates common RE2 to Lucene', () => {
    expect(re2ToLucene('(?i)(^|&)token=')).toEqual({
      regexp: '((token\\=.*|.*\\&token\\=.*))',
      caseInsensitive: true,
    });
    expect(re2ToLucene('^/v[0-9]+/users/\\d+$').regexp).toBe('(\\/v[0-9]+\\/users\\/[0-9]+)');
    expect(() => re2ToLucene('a\\bb')).toThrow(Untranslatable);
  });
});

const count = (name = 'n'): Metric => ({ name, fn: 'count' });

describe('threshold', () => {
  const rule = thresholdRule('t', {
    groupBy: ['source.ip'],
    window: { sizeMs: 10 * M, mode: 'tumbling' },
    metrics: [count()],
    having: { op: 'cmp', metric: 'n', cmp: '>=', value: 3 },
  });
  it('an event at the window end belongs to the next window', () => {
    const ip = { 'source.ip': '1.2.3.4' };
    const events = [ev(T0, ip), ev(T0 + 5 * M, ip), ev(T0 + 10 * M - 1, ip), ev(T0 + 10 * M, ip)];
    const r = evaluateRule(rule, events, all);
    expect(r.detections).toHaveLength(1);
    expect(r.detections[0]!.window).toEqual({ start: T0, end: T0 + 10 * M });
    expect(r.detections[0]!.eventCount).toBe(3);
    const events2 = [ev(T0 + M, ip), ev(T0 + 5 * M, ip), ev(T0 + 10 * M, ip)];
    expect(evaluateRule(rule, events2, all).detections).toHaveLength(0);
  });
  it('groups lacking a key are ignored; only windows inside the range', () => {
    const events = [ev(T0), ev(T0 + 1), ev(T0 + 2)];
    expect(evaluateRule(rule, events, all).detections).toHaveLength(0);
    const ip = { 'source.ip': '1.2.3.4' };
    const e3 = [ev(T0, ip), ev(T0 + 1, ip), ev(T0 + 2, ip)];
    expect(evaluateRule(rule, e3, { start: T0 + 1, end: T0 + 20 * M }).detections).toHaveLength(0);
    expect(evaluateRule(rule, e3, { start: T0, end: T0 + 10 * M - 1 }).detections).toHaveLength(0);
    expect(evaluateRule(rule, e3, { start: T0, end: T0 + 10 * M }).detections).toHaveLength(1);
  });
  it('sliding windows: each event in size/slide windows', () => {
    const sliding = thresholdRule('s', {
      groupBy: [],
      window: { sizeMs: 10 * M, mode: 'sliding', slideMs: 5 * M },
      metrics: [count()],
      having: { op: 'cmp', metric: 'n', cmp: '>=', value: 2 },
    });
    const events = [ev(T0 + 6 * M), ev(T0 + 9 * M)];
    const ds = evaluateRule(sliding, events, all).detections;
    expect(ds.map((d) => d.window.start)).toEqual([T0, T0 + 5 * M]);
    expect(new Set(ds.map((d) => d.id)).size).toBe(2);
  });
  it('every metric', () => {
    const m: Metric[] = [
      count(),
      {
        name: 'fails',
        fn: 'count',
        where: { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' },
      },
      { name: 'paths', fn: 'distinct_count', field: 'url.path' },
      { name: 'bytes', fn: 'sum', field: 'http.response.bytes' },
      { name: 'avg', fn: 'avg', field: 'http.response.bytes' },
      { name: 'min', fn: 'min', field: 'http.response.bytes' },
      { name: 'max', fn: 'max', field: 'http.response.bytes' },
      { name: 'p50', fn: 'percentile', field: 'http.response.bytes', p: 50 },
      { name: 'p90', fn: 'percentile', field: 'http.response.bytes', p: 90 },
      {
        name: 'share',
        fn: 'ratio',
        where: { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' },
      },
      { name: 'none', fn: 'ratio', where: { op: 'true' }, of: { op: 'exists', field: 'user.name' } },
      { name: 'lat', fn: 'avg', field: 'gatewatch.upstream_latency_ms' },
    ];
    const r = thresholdRule('m', {
      groupBy: [],
      window: { sizeMs: 10 * M, mode: 'tumbling' },
      metrics: m,
      having: { op: 'cmp_metric', metric: 'n', cmp: '>', other: 'fails' },
    });
    const events = [
      ev(T0, { 'url.path': '/a', 'http.response.bytes': 10, 'event.outcome': 'failure' }),
      ev(T0 + 1, { 'url.path': '/a', 'http.response.bytes': 20 }),
      ev(T0 + 2, { 'url.path': '/b', 'http.response.bytes': 30 }),
      ev(T0 + 3, { 'url.path': '/c', 'http.response.bytes': 40, 'event.outcome': 'failure' }),
      ev(T0 + 4, {}),
    ];
    const [d] = evaluateRule(r, events, all).detections;
    expect(d!.metrics).toEqual({
      n: 5,
      fails: 2,
      paths: 3,
      bytes: 100,
      avg: 25,
      min: 10,
      max: 40,
      p50: 25,
      p90: 37,
      share: 0.4,
      none: null,
      lat: null,
    });
    // comparisons with null are false, not() negates
    const h = thresholdRule('h', {
      groupBy: [],
      window: { sizeMs: 10 * M, mode: 'tumbling' },
      metrics: m,
      having: { op: 'not', arg: { op: 'cmp', metric: 'none', cmp: '>', value: 0 } },
    });
    expect(evaluateRule(h, events, all).detections).toHaveLength(1);
  });
  it('R-7 percentile', () => {
    const hist = new Map<number, number>([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
    expect(percentileOf(hist, 50)).toBe(2.5);
    expect(percentileOf(hist, 100)).toBe(4);
    expect(percentileOf(new Map([[7, 3]]), 99)).toBe(7);
  });
  it('renders templates, entities, samples, identity and incident', () => {
    const r = thresholdRule('render', {
      groupBy: ['source.ip'],
      window: { sizeMs: 10 * M, mode: 'tumbling' },
      metrics: [count(), { name: 'avg', fn: 'avg', field: 'http.response.bytes' }],
      having: { op: 'cmp', metric: 'n', cmp: '>=', value: 1 },
    });
    r.output = {
      ...r.output,
      title: template('Heavy {source.ip}: {n} req avg {avg} from {window.start} ({rule.id}) {user.name}'),
      entities: [{ role: 'ip', field: 'source.ip' }],
      evidence: { sampleSize: 2 },
      suppress: { keyFields: ['source.ip'], periodMs: 3600_000 },
    };
    const ip = { 'source.ip': '::ffff:1.2.3.4', 'http.response.bytes': 1 };
    const events = [
      ev(T0 + 2, ip, 'c'),
      ev(T0 + 1, ip, 'b'),
      ev(T0 + 1, { ...ip, 'http.response.bytes': 2 }, 'a'),
    ];
    const [d] = evaluateRule(r, events, all).detections;
    expect(d!.title).toBe('Heavy 1.2.3.4: 3 req avg 1.333 from 2025-01-01T00:00:00.000Z (render) (none)');
    expect(d!.sampleEventIds).toEqual(['a', 'b']);
    expect(d!.entities).toEqual({ ip: ['1.2.3.4'] });
    expect(d!.groupKey).toBe('["1.2.3.4"]');
    expect(d!.id).toBe(detectionId('render', 'v-render', '["1.2.3.4"]', T0));
    expect(d!.evidenceQuery).toContain('source.ip == "1.2.3.4"');
    const inc = toIncident(d!, r, T0);
    expect(inc).toMatchObject({
      id: d!.id,
      status: 'new',
      severity_rank: 2,
      event_count: 3,
      history: [],
      comments: [],
    });
    expect(inc.suppression_key).toBe(JSON.stringify(['render', ['1.2.3.4']]));
  });
});

describe('sequence', () => {
  const fail: FilterExpr = { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' };
  const ok: FilterExpr = { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'success' };
  const reset: FilterExpr = { op: 'cmp', field: 'url.path', cmp: '==', value: '/reset' };
  const u = (o: string, extra: Record<string, unknown> = {}) => ({
    'user.name': 'bob',
    'event.outcome': o,
    ...extra,
  });
  const ato = (min: number, max?: number) =>
    sequenceRule('ato', {
      by: ['user.name'],
      maxSpanMs: 15 * M,
      steps: [
        {
          name: 'failures',
          filter: fail,
          minCount: min,
          ...(max !== undefined ? { maxCount: max } : {}),
          absent: false,
        },
        { name: 'success', filter: ok, minCount: 1, absent: false },
      ],
      until: reset,
    });
  it('repetition, span and non-overlap', () => {
    const events = [
      ev(T0, u('failure')),
      ev(T0 + M, u('failure')),
      ev(T0 + 2 * M, u('failure')),
      ev(T0 + 3 * M, u('success')),
      ev(T0 + 4 * M, u('success')),
    ];
    const ds = evaluateRule(ato(3), events, all).detections;
    expect(ds).toHaveLength(1);
    expect(ds[0]!.eventCount).toBe(4);
    expect(ds[0]!.metrics['failures.count']).toBe(3);
    expect(evaluateRule(ato(4), events, all).detections).toHaveLength(0);
    // span: last - first must be < within
    const far = [ev(T0, u('failure')), ev(T0 + 15 * M, u('success'))];
    expect(evaluateRule(ato(1), far, all).detections).toHaveLength(0);
    const near = [ev(T0, u('failure')), ev(T0 + 15 * M - 1, u('success'))];
    expect(evaluateRule(ato(1), near, all).detections).toHaveLength(1);
  });
  it('until cancels; maximum counts', () => {
    const events = [
      ev(T0, u('failure')),
      ev(T0 + M, u('x', { 'url.path': '/reset' })),
      ev(T0 + 2 * M, u('success')),
    ];
    expect(evaluateRule(ato(1), events, all).detections).toHaveLength(0);
    const many = [
      ev(T0, u('failure')),
      ev(T0 + M, u('failure')),
      ev(T0 + 2 * M, u('failure')),
      ev(T0 + 3 * M, u('success')),
    ];
    expect(evaluateRule(ato(1, 2), many, all).detections).toHaveLength(0);
    expect(evaluateRule(ato(1, 3), many, all).detections).toHaveLength(1);
  });
  it('absent step between and trailing', () => {
    const created: FilterExpr = { op: 'cmp', field: 'event.action', cmp: '==', value: 'created' };
    const rotated: FilterExpr = { op: 'cmp', field: 'event.action', cmp: '==', value: 'rotated' };
    const used: FilterExpr = { op: 'cmp', field: 'event.action', cmp: '==', value: 'used' };
    const k = (a: string) => ({ 'gatewatch.api_key.fingerprint': 'k1', 'event.action': a });
    const r = sequenceRule('key', {
      by: ['gatewatch.api_key.fingerprint'],
      maxSpanMs: 60 * M,
      steps: [
        { name: 'created', filter: created, minCount: 1, absent: false },
        { name: 'no_rot', filter: rotated, minCount: 1, absent: true },
        { name: 'used', filter: used, minCount: 1, absent: false },
      ],
    });
    expect(evaluateRule(r, [ev(T0, k('created')), ev(T0 + M, k('used'))], all).detections).toHaveLength(1);
    expect(
      evaluateRule(r, [ev(T0, k('created')), ev(T0 + M, k('rotated')), ev(T0 + 2 * M, k('used'))], all)
        .detections,
    ).toHaveLength(0);
    const trailing = sequenceRule('silence', {
      by: ['user.name'],
      maxSpanMs: 10 * M,
      steps: [
        { name: 'login', filter: ok, minCount: 1, absent: false },
        { name: 'none', filter: { op: 'true' }, minCount: 1, absent: true },
      ],
    });
    const events = [ev(T0, u('success')), ev(T0 + 30 * M, u('success')), ev(T0 + 35 * M, u('failure'))];
    expect(evaluateRule(trailing, events, all).detections).toHaveLength(1);
    // not decided before the watermark passes match end + span
    expect(evaluateRule(trailing, events, { start: T0 - M, end: T0 + 10 * M - 1 }).detections).toHaveLength(
      0,
    );
    expect(evaluateRule(trailing, events, { start: T0 - M, end: T0 + 10 * M }).detections).toHaveLength(1);
  });
});

describe('first_seen', () => {
  const D = 24 * 3600_000;
  const r = (ignoreNewGroups: boolean) =>
    firstSeenRule('fs', {
      fields: ['source.as.number'],
      groupBy: ['gatewatch.api_key.fingerprint'],
      historyMs: 7 * D,
      ignoreNewGroups,
    });
  const k = (asn: number, key = 'k') => ({ 'gatewatch.api_key.fingerprint': key, 'source.as.number': asn });
  it('new within history; only the first new event fires', () => {
    const events = [
      ev(T0 - 3 * D, k(1)),
      ev(T0 + 1, k(1)),
      ev(T0 + 2, k(2)),
      ev(T0 + 3, k(2)),
      ev(T0 - 8 * D, k(3)),
      ev(T0 + 4, k(3)),
    ];
    const ds = evaluateRule(r(false), events, { start: T0, end: T0 + D }).detections;
    expect(ds.map((d) => d.group['source.as.number'])).toEqual([2, 3]);
  });
  it('ignore new groups', () => {
    const events = [ev(T0 + 1, k(1, 'fresh')), ev(T0 - D, k(1, 'old')), ev(T0 + 2, k(2, 'old'))];
    const ds = evaluateRule(r(true), events, { start: T0, end: T0 + D }).detections;
    expect(ds.map((d) => d.group['gatewatch.api_key.fingerprint'])).toEqual(['old']);
    expect(evaluateRule(r(false), events, { start: T0, end: T0 + D }).detections).toHaveLength(2);
  });
});

describe('baseline', () => {
  const W = 10 * M;
  const mk = (kind: 'ratio' | 'stddev', min: number, minHistoryBuckets = 1) =>
    baselineRule('b', {
      groupBy: ['gatewatch.route'],
      metric: count('errors'),
      windowMs: W,
      historyMs: 4 * W,
      comparison: { kind, min },
      minHistoryBuckets,
    });
  const r = { 'gatewatch.route': '/x' };
  // history: 2 events in each of 2 of the 4 buckets (mean over 4 buckets = 1), current: 5
  const events = [
    ev(T0 - 4 * W, r),
    ev(T0 - 4 * W + 1, r),
    ev(T0 - W, r),
    ev(T0 - W + 1, r),
    ...[0, 1, 2, 3, 4].map((i) => ev(T0 + i, r)),
  ];
  const range = { start: T0, end: T0 + W };
  it('ratio against the mean, empty count buckets are 0', () => {
    const [d] = evaluateRule(mk('ratio', 5), events, range).detections;
    expect(d!.metrics).toMatchObject({ errors: 5, 'baseline.mean': 1, 'baseline.buckets': 2 });
    expect(evaluateRule(mk('ratio', 5.01), events, range).detections).toHaveLength(0);
    expect(evaluateRule(mk('ratio', 2, 3), events, range).detections).toHaveLength(0);
  });
  it('stddev (population)', () => {
    // history values 2,0,0,2 → mean 1, stddev 1 → z = 4
    expect(evaluateRule(mk('stddev', 4), events, range).detections).toHaveLength(1);
    expect(evaluateRule(mk('stddev', 4.01), events, range).detections).toHaveLength(0);
  });
});

describe('filter rules', () => {
  it('one detection per matching event in range', () => {
    const rule = filterRule('f', {
      op: 'cmp',
      field: 'gatewatch.api_key.location',
      cmp: '==',
      value: 'query',
    });
    rule.output = { ...rule.output, title: template('key in {url.path}') };
    const events = [
      ev(T0, { 'gatewatch.api_key.location': 'query', 'url.path': '/p' }),
      ev(T0 + 1, {}),
      ev(T0 + M, { 'gatewatch.api_key.location': 'query' }),
    ];
    const ds = evaluateRule(rule, events, { start: T0, end: T0 + M }).detections;
    expect(ds).toHaveLength(1);
    expect(ds[0]!.title).toBe('key in /p');
  });
});

describe('globs', () => {
  it('match literal characters that are special only inside a class or only to RegExp', async () => {
    const { globToRegExp } = await import('./filter.ts');
    expect(globToRegExp('*/reset-password').test('/api/reset-password')).toBe(true);
    expect(globToRegExp('a-b/c.d(e)*').test('a-b/c.d(e)f')).toBe(true);
    expect(globToRegExp('a-b').test('axb')).toBe(false);
  });
});
