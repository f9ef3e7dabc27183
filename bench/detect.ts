/**
 * bench:detect — the built-in rule pack over a growing index, on three paths: Elasticsearch
 * over rule partials (docs/partials.md), Elasticsearch over the raw events, and the in-process
 * evaluator; ElastAlert2 beside it (bench/elastalert.ts) when installed.
 *
 *   node bench/detect.ts [--steps 1000000,3000000,10000000] [--raw-steps 1000000,10000000]
 *                        [--days 8] [--population 500,500,100] [--local true] [--elastalert true]
 *                        [--build true]
 *
 * Seeded events (detections/engine/generate.ts) over `--days`, with a fixed population
 * (`--population ips,users,keys`; `--population scaled` for the old n/50, n/100, n/500), are
 * stored as ingest stores them — events, then the partials of the batch (batches of 5,000) —
 * into a real Elasticsearch (ELASTICSEARCH_URL, else one started like the test harness). At
 * each step the index grows to the step's size, the partials are compacted, and one run of
 * every rule over the whole range (the first day excepted) is timed:
 *
 * - partials: threshold and baseline rules read their partials; the other kinds run as before;
 * - raw: every rule compiled to aggregations over the raw events (only at `--raw-steps`);
 * - evaluator: in process over the same events (every rule at the first step; threshold and
 *   baseline rules streamed at the others).
 *
 * Detections are compared across the paths per rule. The ceiling beside them: a bare count and
 * one composite aggregation (gatewatch.route × 10 min, doc counts) paged to the end. Then one
 * scheduled run of the pack at the end of the data (each rule over the range the scheduler gives
 * it between two ticks) through partials, and the cost of threshold rules through partials
 * against the events (flat within 2× at a fixed population is the target). At the first step
 * (`--build`), the background build of a new version of every rule with partials
 * (detections/partials/build.ts) over the newest day: events read and folded per second.
 */
import { parseArgs } from 'node:util';
import { Client } from '@elastic/elasticsearch';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../core/store/templates.ts';
import { runRuleOnElasticsearch } from '../detections/engine/elasticsearch.ts';
import { evaluateRule, ruleStream } from '../detections/engine/evaluate.ts';
import { type GenerateOptions, generateEvents } from '../detections/engine/generate.ts';
import type { Detection } from '../detections/engine/types.ts';
import { buildPartials } from '../detections/partials/build.ts';
import { compactPartials, partialsSize } from '../detections/partials/compact.ts';
import { PartialFolder, partialRule } from '../detections/partials/fold.ts';
import { storeBatch } from '../ingest/sinks/batch.ts';
import { loadRuleFiles } from '../parser/index.ts';
import type { RuleIR } from '../parser/ir.ts';
import { startElasticsearch } from '../test/harness/elasticsearch.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '1000000,3000000,10000000' },
    'raw-steps': { type: 'string', default: '1000000,10000000' },
    days: { type: 'string', default: '8' },
    population: { type: 'string', default: '500,500,100' },
    local: { type: 'string', default: 'true' },
    elastalert: { type: 'string', default: 'true' },
    build: { type: 'string', default: 'true' },
  },
});
const steps = values.steps.split(',').map(Number);
const rawSteps = new Set(values['raw-steps'].split(',').map(Number));
const DAY = 86_400_000;
const spanMs = Number(values.days) * DAY;
const START = Date.UTC(2025, 5, 1);
const range = { start: START + DAY, end: START + spanMs };
const prefix = `bench-detect-${process.pid}`;
const names = indexNames(prefix);
const partials = { index: names.partials };
const population: GenerateOptions['population'] =
  values.population === 'scaled'
    ? undefined
    : (([ips, users, keys]) => ({ ips, users, keys }))(values.population.split(',').map(Number));

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
const folder = new PartialFolder(enabled);

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const num = (n: number) => n.toLocaleString('en');

/** The events of step `seed`: `n` more, over the whole span (for the index, late events). */
const eventsOf = (seed: number, n: number) =>
  generateEvents(n, { seed, start: START, spanMs, attackShare: 0.05, ...(population ? { population } : {}) });

interface Indexed {
  ms: number;
  foldMs: number;
  partialDocs: number;
}

/** Store `n` events of `seed` as ingest does (events, then the batch's partials), 5,000 a batch. */
async function store(seed: number, n: number): Promise<Indexed> {
  const t = performance.now();
  let foldMs = 0;
  let partialDocs = 0;
  let batch: GatewatchEvent[] = [];
  let k = 0;
  const inflight: Promise<unknown>[] = [];
  const flush = async () => {
    const events = batch;
    batch = [];
    const id = `bench-${seed}-${k++}`;
    inflight.push(
      storeBatch(es, events, { prefix, batchId: id, partials: folder }).then((r) => {
        if (r.rejected.length > 0)
          throw new Error(`${r.rejected.length} events rejected: ${r.rejected[0]!.reason}`);
        foldMs += r.foldMs;
        partialDocs += r.partialDocs;
      }),
    );
    if (inflight.length >= 2) await inflight.shift();
  };
  for (const e of eventsOf(seed, n)) {
    batch.push(e);
    if (batch.length >= 5000) await flush();
  }
  if (batch.length) await flush();
  await Promise.all(inflight);
  await es.indices.refresh({ index: `${names.eventsPattern},${names.partials}` });
  return { ms: performance.now() - t, foldMs, partialDocs };
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

interface PathRun {
  ms: number;
  esMs: number;
  /** Reading evidence samples of firing windows (threshold and baseline rules). */
  samplesMs: number;
  cells: number;
  detections: Detection[];
  degraded?: string;
  note?: string;
}

async function onElasticsearch(rule: RuleIR, viaPartials: boolean, r = range): Promise<PathRun> {
  const res = await runRuleOnElasticsearch(es, names.eventsAlias, rule, r, {
    maxEvents: 5_000_000,
    ...(viaPartials ? { partials } : {}),
  });
  return {
    ms: res.timing.esMs + res.timing.workerMs,
    esMs: res.timing.esMs,
    samplesMs: res.timing.samplesMs ?? 0,
    cells: res.cells,
    detections: res.detections,
    ...(res.degraded ? { degraded: res.degraded.reason } : {}),
    ...(res.note ? { note: res.note } : {}),
  };
}

/** The evaluator: every rule over the events in memory, or the rules with partials streamed. */
function evaluator(
  seeds: [number, number][],
  all: boolean,
): Map<string, { ms: number; detections: Detection[] }> {
  const out = new Map<string, { ms: number; detections: Detection[] }>();
  if (all) {
    const events = seeds.flatMap(([seed, n]) => [...eventsOf(seed, n)]);
    for (const rule of enabled) {
      const t = performance.now();
      const res = evaluateRule(rule, events, range);
      out.set(rule.id, { ms: performance.now() - t, detections: res.detections });
    }
    return out;
  }
  const streamed = enabled.filter((r) => partialRule(r));
  const streams = streamed.map((r) => ({
    rule: r,
    s: ruleStream(r),
    ms: 0,
    // what the rule reads: its history before the range too (a first-seen key known before the
    // range is not new in it)
    from:
      r.kind === 'baseline'
        ? range.start - r.baseline.historyMs
        : r.kind === 'first_seen'
          ? range.start - r.firstSeen.historyMs
          : range.start,
  }));
  for (const [seed, n] of seeds)
    for (const e of eventsOf(seed, n)) {
      const ts = Date.parse(e['@timestamp']);
      if (ts >= range.end) continue;
      const id = String(e.event?.id);
      for (const x of streams) {
        if (ts < x.from) continue;
        const t = performance.now();
        x.s.add(e, ts, id);
        x.ms += performance.now() - t;
      }
    }
  for (const x of streams) {
    const t = performance.now();
    const res = x.s.finish(range);
    out.set(x.rule.id, { ms: x.ms + performance.now() - t, detections: res.detections });
  }
  return out;
}

const same = (a: Detection[] | undefined, b: Detection[] | undefined) =>
  a === undefined ||
  b === undefined ||
  (a.length === b.length && a.every((d, i) => d.id === b[i]!.id && d.eventCount === b[i]!.eventCount));

interface StepResult {
  events: number;
  partials: Map<string, PathRun>;
  raw?: Map<string, PathRun>;
  local?: Map<string, { ms: number; detections: Detection[] }>;
}

async function measure(events: number, seeds: [number, number][], first: boolean): Promise<StepResult> {
  const ceil = await ceilings();
  const res: StepResult = { events, partials: new Map() };
  for (const rule of enabled) res.partials.set(rule.id, await onElasticsearch(rule, true));
  if (rawSteps.has(events)) {
    res.raw = new Map();
    for (const rule of enabled) res.raw.set(rule.id, await onElasticsearch(rule, false));
  }
  if (values.local === 'true') res.local = evaluator(seeds, first);
  console.log(`\n== ${num(events)} events (${num(ceil.docs)} in the evaluated range) ==`);
  console.log(
    `ceiling: count ${fmt(ceil.countMs)}; one composite (gatewatch.route × 10m, doc counts) paged to the end ${fmt(ceil.compositeMs)}`,
  );
  console.log(
    [
      'rule'.padEnd(44),
      'kind'.padEnd(10),
      'det'.padStart(7),
      'partials'.padStart(9),
      '(es)'.padStart(8),
      'evidence'.padStart(9),
      'cells'.padStart(9),
      'raw'.padStart(9),
      'raw cells'.padStart(9),
      'in-proc'.padStart(9),
      ' same',
    ].join(' '),
  );
  for (const rule of enabled) {
    const p = res.partials.get(rule.id)!;
    const r = res.raw?.get(rule.id);
    const l = res.local?.get(rule.id);
    const agree = same(p.detections, r?.detections) && same(p.detections, l?.detections);
    console.log(
      [
        rule.id.padEnd(44),
        `${rule.kind}${partialRule(rule) ? '*' : ''}`.padEnd(10),
        String(p.detections.length).padStart(7),
        fmt(p.ms).padStart(9),
        fmt(p.esMs).padStart(8),
        fmt(p.samplesMs).padStart(9),
        String(p.cells).padStart(9),
        (r ? fmt(r.ms) : '-').padStart(9),
        (r ? String(r.cells) : '-').padStart(9),
        (l ? fmt(l.ms) : '-').padStart(9),
        agree
          ? '  yes'
          : `  NO (raw ${r?.detections.length ?? '-'}, evaluator ${l?.detections.length ?? '-'})`,
        p.degraded ? `DEGRADED: ${p.degraded}` : '',
        r?.degraded ? `raw DEGRADED: ${r.degraded}` : '',
        p.note ?? '',
      ].join(' '),
    );
  }
  // Where paths disagree, the detections only one side has: which window, which group, what
  // metrics (so the closing note can say which path is right and why).
  for (const rule of enabled) {
    if (res.partials.get(rule.id)!.degraded) continue; // capped: said in its row
    const p = res.partials.get(rule.id)!.detections;
    for (const [name, other] of [
      ['raw', res.raw?.get(rule.id)?.detections],
      ['evaluator', res.local?.get(rule.id)?.detections],
    ] as const) {
      if (!other || same(p, other)) continue;
      const show = (d: Detection) =>
        `${d.groupKey} [${new Date(d.window.start).toISOString()}, ${new Date(d.window.end).toISOString()}) events ${d.eventCount} ${JSON.stringify(d.metrics)}`;
      const ids = new Map(other.map((d) => [d.id, d]));
      const mine = new Map(p.map((d) => [d.id, d]));
      const onlyPartials = p.filter((d) => ids.get(d.id)?.eventCount !== d.eventCount).slice(0, 5);
      const onlyOther = other.filter((d) => mine.get(d.id)?.eventCount !== d.eventCount).slice(0, 5);
      console.log(`  ${rule.id}: partials vs ${name} differ`);
      for (const d of onlyPartials) console.log(`    partials only: ${show(d)}`);
      for (const d of onlyOther) console.log(`    ${name} only: ${show(d)}`);
    }
  }
  const total = (m: Map<string, { ms: number }> | undefined, only?: (r: RuleIR) => boolean) =>
    m ? enabled.filter((r) => !only || only(r)).reduce((a, r) => a + (m.get(r.id)?.ms ?? 0), 0) : undefined;
  const windowed = (r: RuleIR) => partialRule(r) !== undefined;
  console.log(
    `pack through partials ${fmt(total(res.partials)!)} (threshold and baseline rules* ${fmt(total(res.partials, windowed)!)}; evidence samples ${fmt([...res.partials.values()].reduce((a, r) => a + r.samplesMs, 0))} of it)` +
      (res.raw
        ? `; raw ${fmt(total(res.raw)!)} (threshold and baseline rules ${fmt(total(res.raw, windowed)!)})`
        : '') +
      (res.local
        ? `; in-process evaluator ${fmt(total(res.local)!)}${first ? '' : ' (rules with partials, streamed)'}`
        : ''),
  );
  // one scheduled run of the pack at the end of the data, through partials
  let sched = 0;
  const slow: [string, number][] = [];
  for (const rule of enabled) {
    const { intervalMs, lookbackMs } = rule.schedule;
    const r = await onElasticsearch(rule, true, {
      start: range.end - intervalMs - lookbackMs,
      end: range.end,
    });
    sched += r.ms;
    slow.push([rule.id, r.ms]);
  }
  slow.sort((a, b) => b[1] - a[1]);
  console.log(
    `one scheduled run at the end of the data (each rule over [end − interval − look-back, end)), through partials: ${fmt(sched)}; slowest ${slow
      .slice(0, 3)
      .map(([id, ms]) => `${id} ${fmt(ms)}`)
      .join(', ')}`,
  );
  return res;
}

/**
 * The background build of a new version of every rule with partials, over the newest day of
 * the data (print only). The built documents are removed after, so the steps measure as before.
 */
async function measureBuild(): Promise<void> {
  const renamed = enabled.map((r) => ({ ...r, version: `${r.version}-bench-build` }) as RuleIR);
  const versions = new PartialFolder(renamed).rules.length;
  const t = performance.now();
  const res = await buildPartials(es, prefix, { rules: renamed, maxDays: 1, maxEvents: Infinity });
  const ms = performance.now() - t;
  const b = res.built[0];
  console.log(
    b
      ? `background build of a new version of ${versions} rules over the newest day (${num(b.read)} events, read once for all ${b.versions} versions): ${fmt(ms)} in all; ${num(Math.round((b.read / b.foldMs) * 1000))} events/s read and folded into ${b.versions} versions, ${num(Math.round(((b.read * b.versions) / b.foldMs) * 1000))} event-versions/s`
      : `background build: nothing built (${res.waiting.length} waiting)`,
  );
  const index = names.partials;
  await es.indices.refresh({ index });
  const built = await es.search({
    index,
    size: 10_000,
    _source: false,
    query: {
      bool: {
        should: [{ prefix: { batch: 'build:' } }, { term: { level: 'build' } }],
        minimum_should_match: 1,
      },
    },
  });
  if (built.hits.hits.length > 0)
    await es.bulk({
      refresh: true,
      operations: built.hits.hits.map((h) => ({ delete: { _index: index, _id: h._id! } })),
    });
}

try {
  await installCoreTemplates(es, { prefix });
  console.log(
    `bench:detect — ${enabled.length} rules (${folder.rules.length} with partials*), ${values.days} days, population ${population ? `${population.ips} IPs, ${population.users} users, ${population.keys} keys` : 'growing with the events'}`,
  );
  const results: StepResult[] = [];
  const seeds: [number, number][] = [];
  let stored = 0;
  for (const [i, target] of steps.entries()) {
    const n = target - stored;
    const ix = await store(i + 1, n);
    seeds.push([i + 1, n]);
    stored = target;
    const t = performance.now();
    const compacted = await compactPartials(es, prefix, { before: START + spanMs + DAY, refresh: true });
    const compactMs = performance.now() - t;
    const size = await partialsSize(es, prefix);
    console.log(
      `\nstored ${num(n)} more events in ${fmt(ix.ms)} (folding into partials ${fmt(ix.foldMs)} of it, ${num(ix.partialDocs)} batch documents); compacted ${compacted.chunks} days (${num(compacted.batchDocs)} batch documents) in ${fmt(compactMs)}; partials index ${num(size.docs)} documents, ${(size.bytes / 1048576).toFixed(1)} MiB`,
    );
    if (i === 0 && values.build === 'true') await measureBuild();
    results.push(await measure(target, seeds, i === 0));
  }
  if (results.length > 1) {
    const a = results[0]!;
    const b = results[results.length - 1]!;
    console.log(
      `\ncost against events at a fixed population, threshold rules through partials (${results.map((r) => num(r.events)).join(' → ')}):`,
    );
    let worst = 0;
    for (const rule of enabled.filter((r) => r.kind === 'threshold' && partialRule(r))) {
      const ms = results.map((r) => r.partials.get(rule.id)!.ms);
      const ratio = ms[ms.length - 1]! / Math.max(1, ms[0]!);
      worst = Math.max(worst, ratio);
      console.log(
        `  ${rule.id.padEnd(44)} ${ms.map((x) => fmt(x).padStart(8)).join(' →')}  ×${ratio.toFixed(2)}  cells ${results.map((r) => num(r.partials.get(rule.id)!.cells)).join(' → ')}`,
      );
    }
    const sum = (r: StepResult) =>
      enabled
        .filter((x) => x.kind === 'threshold' && partialRule(x))
        .reduce((s, x) => s + r.partials.get(x.id)!.ms, 0);
    console.log(
      `  all threshold rules: ${results.map((r) => fmt(sum(r))).join(' → ')}  ×${(sum(b) / sum(a)).toFixed(2)} (target ≤ ×2); largest single rule ×${worst.toFixed(2)}`,
    );
  }
  if (values.elastalert === 'true') {
    const { compareElastAlert } = await import('./elastalert.ts');
    await compareElastAlert({ es, esUrl, index: names.eventsAlias, rules: enabled, range });
  }
} finally {
  await es.indices
    .delete({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true })
    .catch(() => undefined);
  await es.indices.deleteIndexTemplate({ name: `${prefix}*` }).catch(() => undefined);
  await es.close();
  await stop?.();
}
