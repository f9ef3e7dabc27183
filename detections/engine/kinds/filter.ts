/**
 * Filter rules: one detection per matching event. In process: a scan of the range. On
 * Elasticsearch: a sorted search_after over the matching events (post-filtered with re2js when
 * the query is a superset).
 */
import type { FilterRule, RuleIR } from '../../../parser/ir.ts';
import { and, hitId, hitTs, type Query, type Run, timeRange } from '../es/run.ts';
import { ruleFields } from '../evaluate.ts';
import { compileFilter } from '../filter.ts';
import { type PreparedEvents, scan } from '../in-process.ts';
import { eventDetection } from '../render.ts';
import type { Detection, TimeRange } from '../types.ts';

export function evaluateFilter(rule: FilterRule, p: PreparedEvents, range: TimeRange): Detection[] {
  const out: Detection[] = [];
  scan(p, compileFilter(rule.filter), range.start, range.end, (i) => {
    out.push(eventDetection(rule, { ts: p.ts[i]!, id: p.ids[i]!, fields: p.events[i] }));
  });
  return out;
}

export async function filterOnElasticsearch(
  run: Run,
  rule: RuleIR,
  query: Query,
  exact: boolean,
  range: TimeRange,
): Promise<Detection[]> {
  const out: Detection[] = [];
  const pred = exact ? undefined : compileFilter(rule.filter);
  const max = run.limits.maxDetections;
  const fields = ruleFields(rule);
  for await (const hit of run.hits(
    and(query, timeRange(range)),
    exact ? max + 1 : run.limits.maxEvents,
    fields,
  )) {
    const event = hit._source;
    if (pred && !pred(event)) continue;
    if (out.length >= max) {
      run.degrade(`more than ${max} matching events: only the first ${max} became detections`);
      break;
    }
    out.push(eventDetection(rule, { ts: hitTs(hit), id: hitId(hit), fields: event }));
    if (run.overBudget()) break;
  }
  return out;
}
