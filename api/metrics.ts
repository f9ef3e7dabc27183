/**
 * The shared Prometheus registry, served at GET /metrics. Every Gatewatch process imports the
 * metrics it updates from here, so one scrape sees ingest, queues, rule runs and the API:
 *
 *   import { metrics } from '../api/metrics.ts';
 *   metrics.ingestEvents.inc({ source: 'edge', outcome: 'indexed' }, n);
 *
 * Other modules may register their own with `registry` (use getOrCreate* to stay idempotent
 * when a module is loaded twice, e.g. by tests).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'gatewatch_process_' });

function existing<T extends Metric>(name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

export function getOrCreateCounter<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
) {
  return existing<Counter<L>>(name) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
}

export function getOrCreateGauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
) {
  return existing<Gauge<L>>(name) ?? new Gauge<L>({ name, help, labelNames, registers: [registry] });
}

export function getOrCreateHistogram<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  buckets: number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
) {
  return (
    existing<Histogram<L>>(name) ??
    new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] })
  );
}

export const metrics = {
  /** Events through ingest: outcome = indexed | duplicate | dead_letter | dropped. */
  ingestEvents: getOrCreateCounter('gatewatch_ingest_events_total', 'Events handled by ingest.', [
    'source',
    'outcome',
  ]),
  ingestBytes: getOrCreateCounter('gatewatch_ingest_bytes_total', 'Raw bytes received by ingest sources.', [
    'source',
  ]),
  /** Jobs waiting / active per queue (set by whoever polls the queue). */
  queueDepth: getOrCreateGauge('gatewatch_queue_depth', 'Jobs in a queue by state.', ['queue', 'state']),
  /** Rule partials (docs/partials.md), read from Elasticsearch at each scrape. */
  partialsBytes: getOrCreateGauge(
    'gatewatch_partials_index_bytes',
    'Size of the rule partials index on disk.',
  ),
  partialsDocuments: getOrCreateGauge('gatewatch_partials_documents', 'Rule partial documents by level.', [
    'level',
  ]),
  partialsRuleCells: getOrCreateGauge(
    'gatewatch_partials_rule_cells',
    'Compacted (group, bucket) cells per rule version.',
    ['rule'],
  ),
  partialsRuleBytes: getOrCreateGauge(
    'gatewatch_partials_rule_bytes',
    'Bytes (JSON) of compacted cells per rule version.',
    ['rule'],
  ),
  partialsPending: getOrCreateGauge(
    'gatewatch_partials_pending_cells',
    'Cells in batch documents not compacted yet (all rules).',
  ),
  /** The background build of new rule versions' partials (detections/partials/build.ts). */
  partialsBuildDays: getOrCreateGauge(
    'gatewatch_partials_build_days',
    'Days of a rule version whose partials are built from the stored events, by state (built, to_build: the total to build).',
    ['rule', 'state'],
  ),
  partialsBuildEvents: getOrCreateGauge(
    'gatewatch_partials_build_events',
    'Stored events folded by the background build of a rule version.',
    ['rule'],
  ),
  ruleRunDuration: getOrCreateHistogram(
    'gatewatch_rule_run_duration_seconds',
    'Duration of detection rule runs.',
    ['rule', 'outcome'],
  ),
  /** outcome = ok | degraded | error | skipped. */
  ruleRuns: getOrCreateCounter('gatewatch_rule_runs_total', 'Detection rule runs by outcome.', [
    'rule',
    'outcome',
  ]),
  incidentsCreated: getOrCreateCounter('gatewatch_incidents_created_total', 'Incidents created.', [
    'rule',
    'severity',
  ]),
  httpRequests: getOrCreateCounter('gatewatch_api_requests_total', 'REST API requests.', [
    'method',
    'route',
    'status',
  ]),
  httpDuration: getOrCreateHistogram(
    'gatewatch_api_request_duration_seconds',
    'REST API request duration.',
    ['method', 'route'],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  ),
};
