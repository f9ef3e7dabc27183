/**
 * Scoring a range output with Gatewatch, in both modes:
 * - **replay**: `gatewatch eval <out>` — the embedded pipeline over the output directory;
 * - **distributed**: the output's file sources tailed into Redis (the file source), indexed into
 *   Elasticsearch by an ingest worker, every enabled rule run on Elasticsearch over the data's
 *   span and its incidents written by the incident writer (suppression, folding, key names) —
 *   the path a deployment's processes take, in one process.
 * Both are scored against the range's labels (detections/evaluation.ts), with rule coverage.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateScenario } from '../cli/commands/eval.ts';
import { durationMs, loadConfig } from '../core/config/load.ts';
import { queueDepth } from '../core/queue/bullmq.ts';
import type { Incident } from '../core/schema/incident.ts';
import { indexNames } from '../core/store/elasticsearch.ts';
import {
  type CoverageReport,
  coverageReport,
  elasticsearchFieldStats,
  neededFields,
} from '../detections/coverage.ts';
import { type EvaluationReport, parseGroundTruth, scoreIncidents } from '../detections/evaluation.ts';
import {
  elasticsearchEntityNames,
  elasticsearchIncidentStore,
  ensureIncidentIndex,
} from '../detections/incidents/es-store.ts';
import { writeIncidents } from '../detections/incidents/writer.ts';
import { elasticsearchExecutor } from '../detections/runtime.ts';
import { replayRange } from '../embedded/replay.ts';
import { startIngest } from '../ingest/runtime.ts';
import { FileSource } from '../ingest/sources/file.ts';
import { createIdentityResolver, keyIdentityString } from '../ingest/transforms/identity.ts';
import { loadRuleFiles } from '../parser/index.ts';

export interface ModeScore {
  mode: 'replay' | 'distributed';
  classes: EvaluationReport;
  coverage: CoverageReport;
  incidents: Incident[];
}

/** The embedded pipeline over the output directory, as `gatewatch eval` runs it. */
export async function scoreReplay(outDir: string): Promise<ModeScore> {
  const r = await evaluateScenario(outDir, ['detections/rules'], join(outDir, 'gatewatch.yaml'));
  return { mode: 'replay', classes: r.classes, coverage: r.coverage, incidents: r.incidents };
}

export interface Servers {
  elasticsearchUrl: string;
  redisUrl: string;
  /** Index and queue prefix of this scoring run (e.g. unique per seed). */
  prefix: string;
}

/** Wait until `check` holds, polling; throws with `what` after `timeoutMs`. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The distributed path: file sources → Redis → ingest worker → Elasticsearch → rules → incidents. */
export async function scoreDistributed(outDir: string, servers: Servers): Promise<ModeScore> {
  const config = loadConfig({
    file: join(outDir, 'gatewatch.yaml'),
    env: {},
    overrides: {
      elasticsearch: { url: servers.elasticsearchUrl, indexPrefix: servers.prefix },
      redis: { url: servers.redisUrl, prefix: servers.prefix, requireNoEviction: false },
      ingest: { highWaterMark: 100_000 },
    } as never,
  });
  const runtime = await startIngest(config, { workers: 1, waitMs: 60_000 });
  const names = indexNames(servers.prefix);
  const es = runtime.es;
  const sources: FileSource[] = [];
  try {
    let lines = 0;
    for (const source of config.ingest.sources) {
      for (const p of source.paths)
        lines += readFileSync(p, 'utf8')
          .split('\n')
          .filter((l) => l !== '').length;
      const file = new FileSource({
        source,
        producer: runtime.producer,
        redis: runtime.redis,
        offsetsKey: `${config.redis.prefix}:${config.ingest.offsetsKey}:${source.name}`,
        onError: (err) => console.error(`range: file source ${source.name}: ${err.message}`),
      });
      file.start();
      sources.push(file);
    }
    // Every line read by its file source, the queue drained, and the stored count steady (identical
    // lines are one event by design, so the count is not the number of lines).
    await until(
      async () => sources.reduce((n, s) => n + s.linesRead, 0) >= lines,
      `the file sources to read ${lines} lines`,
      600_000,
    );
    const stored = async () => {
      await es.indices.refresh({
        index: `${servers.prefix}-*`,
        ignore_unavailable: true,
        allow_no_indices: true,
      });
      return (await es.count({ index: names.eventsAlias, ignore_unavailable: true, allow_no_indices: true }))
        .count;
    };
    let last = -1;
    await until(
      async () => {
        if ((await queueDepth(runtime.producer.queue)) > 0) return false;
        const now = await stored();
        const steady = now === last && now > 0;
        last = now;
        return steady;
      },
      'the ingest queue to drain',
      600_000,
    );

    const loaded = await loadRuleFiles(config.detections.rulePaths, { lists: config.detections.lists });
    const rules = loaded.rules.filter((r) => r.enabled);
    const bounds = await es.search({
      index: names.eventsAlias,
      size: 0,
      aggs: { min: { min: { field: '@timestamp' } }, max: { max: { field: '@timestamp' } } },
    });
    const aggs = bounds.aggregations as { min: { value: number }; max: { value: number } };
    await ensureIncidentIndex(es, servers.prefix);
    const execute = elasticsearchExecutor(es, servers.prefix, config.detections.maxGroups, () => undefined);
    const store = elasticsearchIncidentStore(es, servers.prefix);
    // Incidents are dated when they are written, as the scheduler dates them. Dated 0 (1970) they
    // were past every retention, and the ingest runtime's lifecycle pass, which may run while the
    // rules are written, deleted those written so far: the range test's occasional missing incident.
    const now = Date.now();
    for (const rule of rules) {
      const result = await execute(
        rule,
        replayRange(rule, { min: aggs.min.value, max: aggs.max.value }),
        now,
      );
      await writeIncidents(store, result.incidents, {
        ...(rule.output.suppress ? { suppression: { periodMs: rule.output.suppress.periodMs } } : {}),
        foldWindowMs: durationMs(config.detections.foldWindow),
        names: elasticsearchEntityNames(es, servers.prefix),
      });
    }
    await es.indices.refresh({ index: names.incidents });
    const incidents = (await es.search<Incident>({ index: names.incidents, size: 10_000 })).hits.hits.map(
      (h) => h._source!,
    );
    const identity = createIdentityResolver({ fingerprintSecret: config.ingest.fingerprintSecret });
    const labels = parseGroundTruth(readFileSync(join(outDir, 'labels.jsonl'), 'utf8'));
    const classes = scoreIncidents(labels, incidents, {
      keyFingerprints: (raw) =>
        (['header', 'gateway', 'basic'] as const)
          .map((s) => identity.fingerprint(keyIdentityString(s, raw)))
          .filter((x): x is string => x !== undefined),
    });
    const coverage = coverageReport(
      rules,
      await elasticsearchFieldStats(es, servers.prefix, neededFields(rules)),
      {
        geoipDatabase: config.ingest.geoipDatabase !== undefined,
        asnDatabase: config.ingest.asnDatabase !== undefined,
      },
    );
    return { mode: 'distributed', classes, coverage, incidents };
  } finally {
    for (const s of sources) await s.stop();
    await runtime.close();
  }
}

/**
 * One table of every run: per class the attacks found over the attacks, per seed and mode, the
 * lowest recall across them; then precision and duplicates per run, and the coverage verdicts.
 */
export function formatScores(runs: { seed: number; scores: ModeScore[] }[]): string {
  const columns = runs.flatMap((r) => r.scores.map((s) => ({ label: `seed ${r.seed} ${s.mode}`, s })));
  const classes = [...new Set(columns.flatMap((c) => c.s.classes.classes.map((k) => k.class)))].sort();
  const width = Math.max(...classes.map((c) => c.length), 'class'.length);
  const cell = (t: string) => t.padStart(Math.max(10, ...columns.map((c) => c.label.length)));
  const out: string[] = [];
  out.push(`${'class'.padEnd(width)} ${columns.map((c) => cell(c.label)).join(' ')} ${cell('min recall')}`);
  for (const k of classes) {
    let min = 1;
    const cells = columns.map((c) => {
      const x = c.s.classes.classes.find((y) => y.class === k);
      if (!x) return cell('—');
      min = Math.min(min, x.recall);
      return cell(`${x.found}/${x.attacks}`);
    });
    out.push(`${k.padEnd(width)} ${cells.join(' ')} ${cell(min.toFixed(3))}`);
  }
  const row = (name: string, f: (s: ModeScore) => string) =>
    out.push(`${name.padEnd(width)} ${columns.map((c) => cell(f(c.s))).join(' ')}`);
  row('incidents', (s) => String(s.classes.incidents));
  row('true', (s) => String(s.classes.truePositives));
  row('false', (s) => String(s.classes.falsePositives));
  row('duplicates', (s) => String(s.classes.duplicates));
  row('precision', (s) => s.classes.precision.toFixed(3));
  row('recall', (s) => s.classes.recall.toFixed(3));
  for (const c of columns) {
    out.push(`\n${c.label}: ${c.s.coverage.summary}`);
    for (const r of c.s.coverage.rules)
      if (r.verdict !== 'can fire') out.push(`  ${r.rule}: ${r.verdict} — ${r.reasons.join('; ')}`);
    for (const f of c.s.classes.falsePositiveIncidents)
      out.push(
        `  false positive: ${f.rules.join('+')}: ${f.title}${f.benign ? ` (benign: ${f.benign})` : ''}`,
      );
    for (const m of c.s.classes.classes.flatMap((k) => k.missed.map((x) => `${k.class}: ${x}`)))
      out.push(`  missed: ${m}`);
  }
  return out.join('\n');
}
