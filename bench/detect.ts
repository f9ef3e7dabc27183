/**
 * bench:detect — the built-in rule pack on Elasticsearch and in process.
 *
 *   node bench/detect.ts [--events 1000000] [--days 8] [--local true] [--full true]
 *
 * --full false skips the run over the whole range (only the scheduled run is timed).
 *
 * Generates seeded events (detections/engine/generate.ts), indexes them into a real
 * Elasticsearch (ELASTICSEARCH_URL, else one started like the test harness), then times one run
 * of the whole pack and of each rule, split into Elasticsearch time and worker time, next to
 * ceilings measured in the same run on the same index: a bare count and a single composite
 * aggregation (gatewatch.route × 10 min, doc counts only) paged to the end. With --events above 1M
 * it measures 1M first, then adds events up to the target and measures again (growth).
 *
 * Besides that one run over the whole range (what a backfill or a single catch-up step covering
 * days would cost), it times one scheduled run of the pack at the end of the data: each rule over
 * the range the scheduler gives it in steady state, [end − interval − look-back, end), with all
 * the generated events (their history) in the index.
 *
 * ES is the wall time spent waiting for Elasticsearch (transfer and JSON included), took the sum
 * of Elasticsearch's own `took` over the aggregation and sample searches (sorted event reads of
 * filter and sequence rules are not included), worker the rest of the run, cells the (group,
 * bucket) cells threshold and baseline rules read from aggregations (what their cost follows).
 */
import { parseArgs } from 'node:util';
import { Client } from '@elastic/elasticsearch';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { bulkWrite, indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { runRuleOnElasticsearch } from '../detections/engine/elasticsearch.ts';
import { evaluateRule } from '../detections/engine/evaluate.ts';
import { generateEvents } from '../detections/engine/generate.ts';
import { loadRuleFiles } from '../parser/index.ts';
import { startElasticsearch } from '../test/harness/elasticsearch.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '8' },
    local: { type: 'string', default: 'true' },
    full: { type: 'string', default: 'true' },
  },
});
const target = Number(values.events);
const DAY = 86_400_000;
const spanMs = Number(values.days) * DAY;
const START = Date.UTC(2025, 5, 1);
const range = { start: START + DAY, end: START + spanMs };
const prefix = `bench-detect-${process.pid}`;
const names = indexNames(prefix);

let stop: (() => Promise<void>) | undefined;
let esUrl = process.env.ELASTICSEARCH_URL;
if (!esUrl) {
  const node = await startElasticsearch({ heapMb: 2048 });
  stop = () => node.dispose();
  esUrl = node.url;
}
// an interrupted run still stops the node it started (finally blocks do not run on signals)
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void (stop?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
const es = new Client({ node: esUrl, requestTimeout: 600_000, maxRetries: 0 });
const { rules, diagnostics } = await loadRuleFiles(['detections/rules']);
if (diagnostics.some((d) => d.severity === 'error')) throw new Error('built-in pack has errors');
const enabled = rules.filter((r) => r.enabled);

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Index events [from, to) of a generation of `total` (timestamps spread over the span). */
async function indexRange(total: number, seed: number): Promise<number> {
  const t = performance.now();
  let batch: GatewatchEvent[] = [];
  const inflight: Promise<unknown>[] = [];
  const flush = async () => {
    const docs = batch;
    batch = [];
    const p = bulkWrite(
      es,
      docs.map((e) => ({
        op: 'create' as const,
        index: names.eventsIndexFor(e['@timestamp']),
        id: String(e.event?.id),
        doc: e,
      })),
    ).then((r) => {
      if (r.rejected + r.retryable > 0)
        throw new Error(`bulk: ${r.rejected} rejected, ${r.retryable} retryable`);
    });
    inflight.push(p);
    if (inflight.length >= 2) await inflight.shift();
  };
  for (const e of generateEvents(total, { seed, start: START, spanMs, attackShare: 0.05 })) {
    batch.push(e);
    if (batch.length >= 5000) await flush();
  }
  if (batch.length) await flush();
  await Promise.all(inflight);
  await es.indices.refresh({ index: names.eventsPattern });
  return performance.now() - t;
}

async function ceilings(): Promise<{ countMs: number; compositeMs: number; docs: number }> {
  const q = { range: { '@timestamp': { gte: range.start, lt: range.end, format: 'epoch_millis' } } };
  let t = performance.now();
  const c = await es.count({ index: names.eventsAlias, query: q });
  const countMs = performance.now() - t;
  t = performance.now();
  let after: Record<string, unknown> | undefined;
  for (;;) {
    const res = await es.search({
      index: names.eventsAlias,
      size: 0,
      query: q,
      aggs: {
        g: {
          composite: {
            size: 1000,
            sources: [
              { k: { terms: { field: 'gatewatch.route' } } },
              { t: { date_histogram: { field: '@timestamp', fixed_interval: '10m' } } },
            ],
            ...(after ? { after: after as never } : {}),
          },
        },
      },
    });
    const g = res.aggregations?.g as { buckets: unknown[]; after_key?: Record<string, unknown> };
    if (g.buckets.length === 0 || !g.after_key) break;
    after = g.after_key;
  }
  return { countMs, compositeMs: performance.now() - t, docs: c.count };
}

/** One steady-state run of every rule: the range the scheduler gives it between two ticks. */
async function scheduledRun(): Promise<{
  esMs: number;
  tookMs: number;
  workerMs: number;
  rows: { id: string; ms: number }[];
}> {
  let esMs = 0;
  let tookMs = 0;
  let workerMs = 0;
  const rows: { id: string; ms: number }[] = [];
  for (const rule of enabled) {
    const { intervalMs, lookbackMs } = rule.schedule;
    const runRange = { start: range.end - intervalMs - lookbackMs, end: range.end };
    const r = await runRuleOnElasticsearch(es, names.eventsAlias, rule, runRange, { maxEvents: 5_000_000 });
    esMs += r.timing.esMs;
    tookMs += r.timing.tookMs ?? 0;
    workerMs += r.timing.workerMs;
    rows.push({ id: rule.id, ms: r.timing.esMs + r.timing.workerMs });
  }
  return { esMs, tookMs, workerMs, rows };
}

interface Row {
  id: string;
  kind: string;
  detections: number;
  esMs: number;
  tookMs: number;
  workerMs: number;
  cells: number;
  degraded?: string;
  localMs?: number;
  localDetections?: number;
}

async function measure(
  total: number,
  events?: GatewatchEvent[],
): Promise<{
  rows: Row[];
  ceil: Awaited<ReturnType<typeof ceilings>>;
  sched: Awaited<ReturnType<typeof scheduledRun>>;
}> {
  const ceil = await ceilings();
  const rows: Row[] = [];
  for (const rule of values.full === 'false' ? [] : enabled) {
    const r = await runRuleOnElasticsearch(es, names.eventsAlias, rule, range, { maxEvents: 5_000_000 });
    const row: Row = {
      id: rule.id,
      kind: rule.kind,
      detections: r.detections.length,
      esMs: r.timing.esMs,
      tookMs: r.timing.tookMs ?? 0,
      workerMs: r.timing.workerMs,
      cells: r.cells,
      ...(r.degraded ? { degraded: r.degraded.reason } : {}),
    };
    if (events) {
      const t = performance.now();
      const local = evaluateRule(rule, events, range);
      row.localMs = performance.now() - t;
      row.localDetections = local.detections.length;
    }
    rows.push(row);
  }
  console.log(
    `\n== ${total.toLocaleString()} events (${ceil.docs.toLocaleString()} in the evaluated range) ==`,
  );
  console.log(
    `ceiling: count ${fmt(ceil.countMs)}; one composite (gatewatch.route × 10m, doc counts) paged to the end ${fmt(ceil.compositeMs)}`,
  );
  console.log(
    [
      'rule'.padEnd(44),
      'kind'.padEnd(10),
      'det'.padStart(6),
      'ES'.padStart(9),
      'took'.padStart(9),
      'worker'.padStart(9),
      'cells'.padStart(9),
      'in-proc'.padStart(9),
    ].join(' '),
  );
  for (const r of rows) {
    console.log(
      [
        r.id.padEnd(44),
        r.kind.padEnd(10),
        String(r.detections).padStart(6),
        fmt(r.esMs).padStart(9),
        fmt(r.tookMs).padStart(9),
        fmt(r.workerMs).padStart(9),
        String(r.cells).padStart(9),
        (r.localMs !== undefined
          ? `${fmt(r.localMs)}${r.localDetections === r.detections ? '' : ` (${r.localDetections} det!)`}`
          : '-'
        ).padStart(9),
        r.degraded ? `DEGRADED: ${r.degraded}` : '',
      ].join(' '),
    );
  }
  const esTotal = rows.reduce((a, r) => a + r.esMs, 0);
  const tookTotal = rows.reduce((a, r) => a + r.tookMs, 0);
  const worker = rows.reduce((a, r) => a + r.workerMs, 0);
  const local = rows.reduce((a, r) => a + (r.localMs ?? 0), 0);
  if (rows.length > 0)
    console.log(
      `pack: ES ${fmt(esTotal)} (took ${fmt(tookTotal)}), worker ${fmt(worker)}, total ${fmt(esTotal + worker)}${events ? `; in-process evaluator ${fmt(local)}` : ''}`,
    );
  // Twice: the first run after indexing meets cold caches and unmerged segments; a deployment's
  // runs follow each other every few minutes, like the second.
  let sched: Awaited<ReturnType<typeof scheduledRun>> | undefined;
  for (const pass of ['first', 'second']) {
    sched = await scheduledRun();
    console.log(
      `one scheduled run at the end of the data (each rule over [end − interval − look-back, end)), ${pass}: ES ${fmt(sched.esMs)} (took ${fmt(sched.tookMs)}), worker ${fmt(sched.workerMs)}, total ${fmt(sched.esMs + sched.workerMs)}; slowest: ${[
        ...sched.rows,
      ]
        .sort((x, y) => y.ms - x.ms)
        .slice(0, 3)
        .map((r) => `${r.id} ${fmt(r.ms)}`)
        .join(', ')}`,
    );
  }
  return { rows, ceil, sched: sched! };
}

try {
  await installCoreTemplates(es, { prefix });
  const first = Math.min(target, 1_000_000);
  const ms = await indexRange(first, 1);
  console.log(`indexed ${first.toLocaleString()} events in ${fmt(ms)}`);
  const local =
    values.local === 'true'
      ? [...generateEvents(first, { seed: 1, start: START, spanMs, attackShare: 0.05 })]
      : undefined;
  const a = await measure(first, local);
  if (target > first) {
    const ms2 = await indexRange(target - first, 2);
    console.log(`\nindexed ${(target - first).toLocaleString()} more events in ${fmt(ms2)}`);
    const b = await measure(target);
    const sum = (x: { rows: Row[] }) => x.rows.reduce((s, r) => s + r.esMs + r.workerMs, 0);
    if (b.rows.length > 0)
      console.log(`\ngrowth per rule ${first.toLocaleString()} → ${target.toLocaleString()} (ES + worker):`);
    for (const [i, r] of b.rows.entries()) {
      const before = a.rows[i]!;
      const x = (r.esMs + r.workerMs) / Math.max(1, before.esMs + before.workerMs);
      console.log(
        `  ${r.id.padEnd(44)} ${fmt(before.esMs + before.workerMs).padStart(9)} → ${fmt(r.esMs + r.workerMs).padStart(9)}  ×${x.toFixed(1)}  (detections ${before.detections} → ${r.detections})`,
      );
    }
    console.log(
      `\ngrowth ${first.toLocaleString()} → ${target.toLocaleString()}: ${b.rows.length > 0 ? `pack ×${(sum(b) / sum(a)).toFixed(1)}, ` : ''}one scheduled run ×${((b.sched.esMs + b.sched.workerMs) / (a.sched.esMs + a.sched.workerMs)).toFixed(1)}, count ceiling ×${(b.ceil.countMs / a.ceil.countMs).toFixed(1)}, composite ceiling ×${(b.ceil.compositeMs / a.ceil.compositeMs).toFixed(1)}`,
    );
  }
} finally {
  await es.indices
    .delete({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true })
    .catch(() => undefined);
  await es.indices.deleteIndexTemplate({ name: `${prefix}*` }).catch(() => undefined);
  await es.close();
  await stop?.();
}
