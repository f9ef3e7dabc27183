/** Builders for engine tests: IR rules without the parser, events from short specs. */

import type { Client } from '@elastic/elasticsearch';
import { setField } from '../../core/schema/catalogue.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { bulkWrite, indexNames } from '../../core/store/elasticsearch.ts';
import type {
  BaselineRule,
  FilterExpr,
  FilterRule,
  FirstSeenRule,
  RuleIR,
  SequenceRule,
  Template,
  ThresholdRule,
} from '../../parser/ir.ts';

export function template(source: string): Template {
  const parts: Template['parts'] = [];
  const re = /\{([^{}]+)\}/g;
  let last = 0;
  for (let m = re.exec(source); m; m = re.exec(source)) {
    if (m.index > last) parts.push({ text: source.slice(last, m.index) });
    parts.push({ ref: m[1]!, kind: 'field' });
    last = m.index + m[0].length;
  }
  if (last < source.length) parts.push({ text: source.slice(last) });
  return { source, parts };
}

type Base = Omit<FilterRule, 'kind'>;

export function base(id: string, filter: FilterExpr = { op: 'true' }): Base {
  return {
    irVersion: 1,
    id,
    version: `v-${id}`,
    title: id,
    description: '',
    severity: 'medium',
    risk: 47,
    tags: [],
    enabled: true,
    schedule: { intervalMs: 300_000, lookbackMs: 3_600_000, latenessMs: 60_000 },
    filter,
    output: { title: template(`${id}`), summary: template(''), entities: [], evidence: { sampleSize: 5 } },
    source: { file: 'test.gwr', line: 1 },
  };
}

export const filterRule = (id: string, filter: FilterExpr): FilterRule => ({
  ...base(id, filter),
  kind: 'filter',
});

export function thresholdRule(id: string, t: ThresholdRule['threshold'], filter?: FilterExpr): ThresholdRule {
  return { ...base(id, filter), kind: 'threshold', threshold: t };
}

export function sequenceRule(id: string, s: SequenceRule['sequence'], filter?: FilterExpr): SequenceRule {
  return { ...base(id, filter), kind: 'sequence', sequence: s };
}

export function firstSeenRule(id: string, f: FirstSeenRule['firstSeen'], filter?: FilterExpr): FirstSeenRule {
  return { ...base(id, filter), kind: 'first_seen', firstSeen: f };
}

export function baselineRule(id: string, b: BaselineRule['baseline'], filter?: FilterExpr): BaselineRule {
  return { ...base(id, filter), kind: 'baseline', baseline: b };
}

let seq = 0;
/** An event at `ts` (ms) with dotted fields. */
export function ev(ts: number, fields: Record<string, unknown> = {}, id?: string): GatewatchEvent {
  const e: Record<string, unknown> = {
    '@timestamp': new Date(ts).toISOString(),
    event: { id: id ?? `e${String(seq++).padStart(8, '0')}` },
  };
  for (const [k, v] of Object.entries(fields)) setField(e, k, v);
  return e as GatewatchEvent;
}

export function resetIds(): void {
  seq = 0;
}

export type { RuleIR };

/** Records of a WAF log (verdicts, no status) and the load balancer behind it (statuses, no verdict). */
export const T0 = Date.parse('2026-03-01T10:00:00Z');
export const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** AWS WAF: the verdict, no status. */
export function waf(s: number, action: 'BLOCK' | 'ALLOW', q: string, requestId?: string): GatewatchEvent {
  return {
    '@timestamp': at(s),
    event: { id: `waf-${s}`, dataset: 'aws.waf' },
    observer: { type: 'waf' },
    source: { ip: '198.51.100.9' },
    url: { path: '/search', query: q },
    http: { request: { method: 'GET', ...(requestId ? { id: requestId } : {}) } },
    gatewatch: { source: { name: 'waf' }, route: '/search', waf: { action: action.toLowerCase() } },
  } as GatewatchEvent;
}

/** The load balancer behind it: the answer, no verdict. */
export function alb(s: number, status: number, requestId?: string): GatewatchEvent {
  return {
    '@timestamp': at(s),
    event: { id: `alb-${s}`, dataset: 'aws.alb' },
    observer: { type: 'load-balancer' },
    source: { ip: '198.51.100.9' },
    url: { path: '/search' },
    http: {
      request: { method: 'GET', ...(requestId ? { id: requestId } : {}) },
      response: { status_code: status },
    },
    gatewatch: { source: { name: 'alb' }, route: '/search' },
  } as GatewatchEvent;
}

// ---- sequence cases shared by the differential and sequence-state tests ----------------------
const M = 60_000;
export const loginRoute: FilterExpr = {
  op: 'wildcard',
  field: 'gatewatch.route',
  pattern: '*login',
  caseInsensitive: false,
};
export const failedOutcome: FilterExpr = { op: 'cmp', field: 'event.outcome', cmp: '==', value: 'failure' };
export const statusIs = (cmp: '>=' | '<', value: number): FilterExpr => ({
  op: 'cmp',
  field: 'http.response.status_code',
  cmp,
  value,
});
const wafAction = (value: string): FilterExpr => ({
  op: 'cmp',
  field: 'gatewatch.waf.action',
  cmp: '==',
  value,
});

/** Sequence rules covering each construct: repeat with until, an absent gap with a maximum, a trailing absence. */
export function sequenceCases(): SequenceRule[] {
  return [
    sequenceRule('s-ato', {
      by: ['user.name'],
      maxSpanMs: 15 * M,
      steps: [
        {
          name: 'failures',
          filter: { op: 'and', args: [loginRoute, failedOutcome] },
          minCount: 5,
          absent: false,
        },
        {
          name: 'success',
          filter: { op: 'and', args: [loginRoute, statusIs('<', 300)] },
          minCount: 1,
          absent: false,
        },
      ],
      until: { op: 'cmp', field: 'gatewatch.route', cmp: '==', value: '/password/reset' },
    }),
    sequenceRule('s-absent', {
      by: ['source.ip', 'gatewatch.route'],
      maxSpanMs: 10 * M,
      steps: [
        { name: 'blocked', filter: wafAction('block'), minCount: 2, maxCount: 6, absent: false },
        { name: 'no_count', filter: wafAction('count'), minCount: 1, absent: true },
        { name: 'passed', filter: wafAction('allow'), minCount: 1, absent: false },
      ],
    }),
    sequenceRule('s-trailing', {
      by: ['user.name'],
      maxSpanMs: 20 * M,
      steps: [
        {
          name: 'login',
          filter: { op: 'and', args: [loginRoute, statusIs('<', 300)] },
          minCount: 1,
          absent: false,
        },
        { name: 'quiet', filter: { op: 'not', arg: loginRoute }, minCount: 1, absent: true },
      ],
    }),
  ];
}

/**
 * Index `events` into the day indices of `prefix` by event id (5,000 a request) and refresh;
 * returns the documents Elasticsearch rejected or asked to retry (a test expects none).
 */
export async function indexTestEvents(es: Client, prefix: string, events: GatewatchEvent[]): Promise<number> {
  const names = indexNames(prefix);
  let failed = 0;
  for (let i = 0; i < events.length; i += 5000) {
    const res = await bulkWrite(
      es,
      events.slice(i, i + 5000).map((e) => ({
        op: 'create' as const,
        index: names.eventsIndexFor(e['@timestamp']),
        id: String(e.event?.id),
        doc: e,
      })),
    );
    failed += res.rejected + res.retryable;
  }
  await es.indices.refresh({ index: names.eventsPattern });
  return failed;
}

const H = 60 * M;

/** First-seen rules covering each construct: a key with ignored new groups, two fields, no group. */
export function firstSeenCases(): FirstSeenRule[] {
  return [
    firstSeenRule('fs-asn', {
      fields: ['source.as.number'],
      groupBy: ['gatewatch.api_key.fingerprint'],
      historyMs: 24 * H,
      ignoreNewGroups: true,
    }),
    firstSeenRule('fs-route', {
      fields: ['http.request.method', 'gatewatch.route'],
      groupBy: ['user.id'],
      historyMs: 12 * H,
      ignoreNewGroups: false,
    }),
    firstSeenRule('fs-ip-short-history', {
      fields: ['source.ip'],
      groupBy: [],
      historyMs: 2 * H,
      ignoreNewGroups: false,
    }),
  ];
}
