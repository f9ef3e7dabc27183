/**
 * The REST API's detection and event-search ports (api/ports.ts), implemented with the real
 * engine: the in-process evaluator for rule tests, the Elasticsearch executor for previews and
 * runs, the rule language's filter compiler for event search.
 */
import type { Client } from '@elastic/elasticsearch';
import type {
  DetectionPort,
  EventExtent,
  EventHistogram,
  EventSearchPage,
  EventSearchPort,
  EventSearchRequest,
  PreviewResult,
  RuleDayActivity,
  RuleStatus,
  StoredEvent,
  TimeRange,
} from '../api/ports.ts';
import { InvalidEventCursorError } from '../api/ports.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import type { Incident } from '../core/schema/incident.ts';
import { type estypes, indexNames, isIndexNotFound } from '../core/store/elasticsearch.ts';
import type { FilterExpr, RuleIR } from '../parser/ir.ts';
import { elasticsearchFieldStats, type FieldStats } from './coverage.ts';
import { runRuleOnElasticsearch } from './engine/elasticsearch.ts';
import { compileFilter, evaluateRule } from './engine/evaluate.ts';
import { compileFilterQuery } from './engine/filter-query.ts';
import { toIncident } from './engine/types.ts';
import { previewIncidents } from './incidents/memory-store.ts';
import type { DetectionScheduler, RunRecord } from './scheduler/scheduler.ts';

/** The range covering a set of events, whole days, so every window that holds them is complete. */
function rangeOf(events: GatewatchEvent[]): TimeRange {
  const DAY = 86_400_000;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    const t = Date.parse(e['@timestamp']);
    if (t < min) min = t;
    if (t > max) max = t;
  }
  if (!Number.isFinite(min)) return { start: 0, end: 1 };
  return { start: Math.floor(min / DAY) * DAY, end: (Math.floor(max / DAY) + 1) * DAY };
}

/**
 * A rule test: every rule over the supplied events in process, over whole days around them.
 * The same in the distributed and the embedded mode; nothing is written.
 */
export function testRulesOnEvents(rules: RuleIR[], events: StoredEvent[], now: number): Incident[] {
  const typed = events as unknown as GatewatchEvent[];
  const range = rangeOf(typed);
  return rules.flatMap((rule) =>
    evaluateRule(rule, typed, range).detections.map((d) => toIncident(d, rule, now)),
  );
}

export class EngineDetectionPort implements DetectionPort {
  fieldStats(fields: string[], range?: { from?: number; to?: number }): Promise<FieldStats> {
    return elasticsearchFieldStats(this.es, this.prefix, fields, range);
  }

  private readonly es: Client;
  private readonly prefix: string;
  private readonly scheduler: DetectionScheduler | undefined;
  private readonly maxGroups: number;
  private readonly foldWindowMs: number | undefined;

  private readonly reloadRules: (() => Promise<void>) | undefined;

  constructor(options: {
    es: Client;
    prefix: string;
    scheduler?: DetectionScheduler;
    maxGroups?: number;
    foldWindowMs?: number;
    /** Re-read the rule set after a rule changed through the API. */
    reloadRules?: () => Promise<void>;
  }) {
    this.reloadRules = options.reloadRules;
    this.es = options.es;
    this.prefix = options.prefix;
    this.scheduler = options.scheduler;
    this.maxGroups = options.maxGroups ?? 100_000;
    this.foldWindowMs = options.foldWindowMs;
  }

  async test(rules: RuleIR[], events: StoredEvent[]): Promise<Incident[]> {
    const typed = events as unknown as GatewatchEvent[];
    const range = rangeOf(typed);
    const now = Date.now();
    return rules.flatMap((rule) =>
      evaluateRule(rule, typed, range).detections.map((d) => toIncident(d, rule, now)),
    );
  }

  async preview(rule: RuleIR, range: TimeRange): Promise<PreviewResult> {
    let result: Awaited<ReturnType<typeof runRuleOnElasticsearch>>;
    try {
      result = await runRuleOnElasticsearch(this.es, indexNames(this.prefix).eventsAlias, rule, range, {
        maxGroups: this.maxGroups,
      });
    } catch (err) {
      // Nothing ingested yet: no events index, so nothing to find.
      if (isIndexNotFound(err)) return { incidents: [], raw_detections: [], detections: 0 };
      throw err;
    }
    const now = Date.now();
    const raw = result.detections.map((d) => toIncident(d, rule, now));
    return {
      incidents: await previewIncidents(raw, {
        ...(rule.output.suppress ? { suppressMs: rule.output.suppress.periodMs } : {}),
        ...(this.foldWindowMs !== undefined ? { foldWindowMs: this.foldWindowMs } : {}),
      }),
      raw_detections: raw,
      detections: result.detections.length,
      ...(result.degraded ? { degraded: result.degraded } : {}),
    };
  }

  async runNow(ruleId: string): Promise<RunRecord> {
    if (!this.scheduler) throw new Error('no detection scheduler in this process');
    let records: RunRecord[];
    try {
      records = await this.scheduler.runRule(ruleId);
    } catch (err) {
      // A failed run is recorded (outcome "error", with its reason) before the scheduler throws;
      // "run now" answers with that record.
      const [recorded] = await this.runHistory(ruleId, 1);
      if (recorded?.outcome === 'error') return recorded;
      throw err;
    }
    const last = records[records.length - 1];
    if (!last) throw new Error(`unknown rule ${ruleId}`);
    return last;
  }

  async runHistory(ruleId: string, limit: number): Promise<RunRecord[]> {
    const r = await this.es.search<RunRecord>({
      index: indexNames(this.prefix).ruleRuns,
      size: limit,
      query: { term: { rule_id: ruleId } },
      sort: [{ started_at: 'desc' }],
      ignore_unavailable: true,
    });
    return r.hits.hits.map((h) => h._source!);
  }

  async status(ruleId: string): Promise<RuleStatus> {
    const [last] = await this.runHistory(ruleId, 1);
    if (!last) return { degraded: false };
    const degraded = last.outcome === 'degraded' || last.outcome === 'error';
    return {
      degraded,
      ...(degraded ? { reason: last.degraded_reason ?? last.error ?? last.outcome } : {}),
      last_run: last,
    };
  }

  async dailyActivity(range: TimeRange): Promise<RuleDayActivity[]> {
    const r = await this.es.search({
      index: indexNames(this.prefix).ruleRuns,
      size: 0,
      ignore_unavailable: true,
      query: { range: { started_at: { gte: range.start, lt: range.end, format: 'epoch_millis' } } },
      aggs: {
        rules: {
          terms: { field: 'rule_id', size: 10_000 },
          aggs: {
            days: {
              date_histogram: { field: 'started_at', calendar_interval: 'day', min_doc_count: 1 },
              aggs: {
                detections: { sum: { field: 'detections' } },
                failed: { filter: { terms: { outcome: ['error', 'degraded'] } } },
              },
            },
          },
        },
      },
    });
    type Day = {
      key: number;
      doc_count: number;
      detections: { value: number };
      failed: { doc_count: number };
    };
    const rules = (r.aggregations?.rules as { buckets?: { key: string; days: { buckets: Day[] } }[] })
      ?.buckets;
    return (rules ?? []).flatMap((rule) =>
      rule.days.buckets.map((d) => ({
        rule_id: rule.key,
        day: new Date(d.key).toISOString().slice(0, 10),
        runs: d.doc_count,
        detections: Math.round(d.detections.value),
        failed: d.failed.doc_count,
      })),
    );
  }

  async rulesChanged(_ruleId?: string): Promise<void> {
    // This process's scheduler (run now) sees the change at once; detection workers re-read
    // the rule set on their own reload interval.
    await this.reloadRules?.();
  }
}

interface Cursor {
  after: estypes.SortResults;
}

export class ElasticsearchEventSearchPort implements EventSearchPort {
  private readonly es: Client;
  private readonly prefix: string;

  constructor(es: Client, prefix: string) {
    this.es = es;
    this.prefix = prefix;
  }

  private oldest: { at: number; value: Promise<number | undefined> } | undefined;

  /** The oldest stored event (a min aggregation, answered from index metadata), re-read every minute. */
  async earliest(): Promise<number | undefined> {
    const now = Date.now();
    if (!this.oldest || now - this.oldest.at > 60_000) {
      const value = this.es
        .search({
          index: indexNames(this.prefix).eventsAlias,
          size: 0,
          ignore_unavailable: true,
          allow_no_indices: true,
          aggs: { first: { min: { field: '@timestamp' } } },
        })
        .then((r) => {
          const v = (r.aggregations?.first as { value?: number | null } | undefined)?.value;
          return typeof v === 'number' ? v : undefined;
        });
      this.oldest = { at: now, value };
      value.catch(() => {
        this.oldest = undefined;
      });
    }
    return this.oldest.value;
  }

  async search(request: EventSearchRequest): Promise<EventSearchPage> {
    let after: estypes.SortResults | undefined;
    if (request.cursor) {
      try {
        after = (JSON.parse(Buffer.from(request.cursor, 'base64url').toString('utf8')) as Cursor).after;
        if (!Array.isArray(after)) throw new Error('bad cursor');
      } catch {
        throw new InvalidEventCursorError('invalid cursor');
      }
    }
    const compiled = compileFilterQuery(request.filter);
    const recheck = compiled.exact ? undefined : compileFilter(request.filter);
    const events: StoredEvent[] = [];
    let next: estypes.SortResults | undefined = after;
    // When the query is a superset (regexes Lucene cannot express), re-check in process and
    // keep reading until the page is full or the data ends.
    for (let guard = 0; guard < 50 && events.length < request.size; guard++) {
      const response = await this.es.search<StoredEvent>({
        index: indexNames(this.prefix).eventsAlias,
        size: request.size,
        query: {
          bool: {
            filter: [
              compiled.query,
              {
                range: {
                  '@timestamp': { gte: request.range.start, lt: request.range.end, format: 'epoch_millis' },
                },
              },
            ],
          },
        },
        sort: [{ '@timestamp': request.order }, { 'event.id': request.order }],
        ...(next ? { search_after: next } : {}),
        ignore_unavailable: true,
        track_total_hits: false,
      });
      const hits = response.hits.hits;
      for (const h of hits) {
        if (events.length >= request.size) break;
        next = h.sort;
        if (!recheck || recheck(h._source)) events.push(h._source!);
      }
      if (hits.length < request.size) {
        next = undefined;
        break;
      }
    }
    return {
      events,
      next_cursor:
        next && events.length >= request.size
          ? Buffer.from(JSON.stringify({ after: next })).toString('base64url')
          : null,
    };
  }

  async histogram(filter: FilterExpr, range: TimeRange, intervalMs: number): Promise<EventHistogram> {
    const compiled = compileFilterQuery(filter);
    if (!compiled.exact) return histogramByReading(this, filter, range, intervalMs);
    const r = await this.es.search({
      index: indexNames(this.prefix).eventsAlias,
      size: 0,
      track_total_hits: true,
      ignore_unavailable: true,
      query: {
        bool: {
          filter: [
            compiled.query,
            { range: { '@timestamp': { gte: range.start, lt: range.end, format: 'epoch_millis' } } },
          ],
        },
      },
      aggs: {
        h: {
          date_histogram: {
            field: '@timestamp',
            fixed_interval: `${intervalMs}ms`,
            offset: `${((range.start % intervalMs) + intervalMs) % intervalMs}ms`,
            min_doc_count: 0,
            extended_bounds: { min: range.start, max: range.end - 1 },
          },
        },
      },
    });
    const counts = new Map(
      ((r.aggregations?.h as { buckets?: { key: number; doc_count: number }[] })?.buckets ?? []).map((b) => [
        b.key,
        b.doc_count,
      ]),
    );
    const total = typeof r.hits.total === 'number' ? r.hits.total : (r.hits.total?.value ?? 0);
    return { buckets: emptyBuckets(range, intervalMs, counts), total, exact: true };
  }

  async extent(filter: FilterExpr): Promise<EventExtent> {
    const compiled = compileFilterQuery(filter);
    const r = await this.es.search({
      index: indexNames(this.prefix).eventsAlias,
      size: 0,
      track_total_hits: true,
      ignore_unavailable: true,
      query: compiled.query,
      aggs: { first: { min: { field: '@timestamp' } }, last: { max: { field: '@timestamp' } } },
    });
    const value = (name: string) =>
      (r.aggregations?.[name] as { value: number | null } | undefined)?.value ?? null;
    const total = typeof r.hits.total === 'number' ? r.hits.total : (r.hits.total?.value ?? 0);
    return { first: value('first'), last: value('last'), total };
  }

  async get(id: string): Promise<StoredEvent | undefined> {
    const r = await this.es.search<StoredEvent>({
      index: indexNames(this.prefix).eventsAlias,
      size: 1,
      query: { term: { 'event.id': id } },
      ignore_unavailable: true,
    });
    return r.hits.hits[0]?._source;
  }
}

/** The start of the bucket holding `t`: buckets start at the range's start. */
export function bucketStart(t: number, range: TimeRange, intervalMs: number): number {
  return range.start + Math.floor((t - range.start) / intervalMs) * intervalMs;
}

/** Every bucket of the range (the first starts at the range's start), with its count. */
export function emptyBuckets(
  range: TimeRange,
  intervalMs: number,
  counts: Map<number, number>,
): EventHistogram['buckets'] {
  const out: EventHistogram['buckets'] = [];
  for (let t = range.start; t < range.end; t += intervalMs) out.push({ start: t, count: counts.get(t) ?? 0 });
  return out;
}

/** Most events read to bucket a filter that has to be checked event by event. */
export const HISTOGRAM_READ_LIMIT = 50_000;

/**
 * A histogram by reading the matching events page by page (filters the store cannot express
 * exactly, checked by the search itself); an upper bound past HISTOGRAM_READ_LIMIT events.
 */
export async function histogramByReading(
  port: EventSearchPort,
  filter: FilterExpr,
  range: TimeRange,
  intervalMs: number,
): Promise<EventHistogram> {
  const counts = new Map<number, number>();
  let total = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await port.search({
      filter,
      range,
      size: 1000,
      order: 'asc',
      ...(cursor ? { cursor } : {}),
    });
    for (const e of page.events) {
      const bucket = bucketStart(Date.parse(String(e['@timestamp'])), range, intervalMs);
      counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
      total++;
    }
    if (!page.next_cursor || total >= HISTOGRAM_READ_LIMIT) {
      return { buckets: emptyBuckets(range, intervalMs, counts), total, exact: !page.next_cursor };
    }
    cursor = page.next_cursor;
  }
}
