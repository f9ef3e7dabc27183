/** Builders for engine tests: IR rules without the parser, events from short specs. */

import { setField } from '../../core/schema/catalogue.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
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
