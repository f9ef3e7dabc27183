/**
 * `gatewatch eval <dir>` — replay a directory of logs through the embedded pipeline with every
 * enabled rule and score the incidents against its ground truth:
 *
 * - `labels.jsonl` (or `--labels FILE`): tool-neutral labels, one attack per line (class,
 *   entities, start, end; docs/evaluation.md) — recall per class, precision over incidents,
 *   duplicate incidents for one attack counted apart;
 * - `labels.json`: the scenario generator's per-rule labels — precision and recall per rule,
 *   and the same per-class report from them.
 *
 * The rule coverage report for the replayed data follows (which rules can fire on these logs).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { loadConfig } from '../../core/config/load.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { type CoverageReport, formatCoverage } from '../../detections/coverage.ts';
import {
  type EvaluationReport,
  type GroundTruthLabel,
  parseGroundTruth,
  scoreIncidents,
} from '../../detections/evaluation.ts';
import { embeddedCoverage } from '../../embedded/coverage.ts';
import { replay, replayFiles } from '../../embedded/replay.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { embeddedFingerprintSecret, withFingerprintSecret } from '../../ingest/fingerprint-secret.ts';
import { createIdentityResolver, keyIdentityString } from '../../ingest/transforms/identity.ts';
import { formatDiagnostic, loadRuleFiles } from '../../parser/index.ts';
import { matchIncidents, type RuleScore, toGroundTruth } from '../../samples/generator/labels.ts';
import type { Label } from '../../samples/generator/types.ts';
import { EXIT, UserError } from '../errors.ts';
import { cliTableStyle } from '../table.ts';

export interface EvalResult {
  /** Per-rule scores, when the directory has the generator's per-rule labels. */
  scores?: Record<string, RuleScore>;
  total?: { tp: number; fp: number; fn: number; precision: number; recall: number };
  /** Per-class scores against tool-neutral labels (or the per-rule labels read as such). */
  classes: EvaluationReport;
  /** Which rules can fire on the replayed logs. */
  coverage: CoverageReport;
  incidents: Incident[];
}

/** A user error of the eval command: one line, what is wrong and what to do. */
export class EvalInputError extends Error {}

function readLabels(
  dir: string,
  labelsFile?: string,
): { perRule?: Label[]; groundTruth: GroundTruthLabel[] } {
  const jsonl = labelsFile ?? join(dir, 'labels.jsonl');
  const json = join(dir, 'labels.json');
  if (labelsFile !== undefined || existsSync(jsonl)) {
    if (!existsSync(jsonl))
      throw new EvalInputError(`no labels file ${jsonl}: give --labels FILE (JSON Lines)`);
    try {
      return { groundTruth: parseGroundTruth(readFileSync(jsonl, 'utf8'), jsonl) };
    } catch (e) {
      throw new EvalInputError(`${(e as Error).message} (see docs/evaluation.md for the label format)`);
    }
  }
  if (existsSync(json)) {
    const raw = JSON.parse(readFileSync(json, 'utf8')) as Label[] | { labels: Label[] };
    const perRule = Array.isArray(raw) ? raw : raw.labels;
    return { perRule, groundTruth: toGroundTruth(perRule) };
  }
  throw new EvalInputError(
    `${dir} has no labels.jsonl or labels.json: write the ground truth as JSON Lines (docs/evaluation.md) and pass --labels FILE`,
  );
}

export async function evaluateScenario(
  dir: string,
  rulePaths: string[],
  configFile?: string,
  options: { labelsFile?: string } = {},
): Promise<EvalResult> {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new EvalInputError(
      `${dir} is not a directory: give the directory that holds the logs and their labels`,
    );
  const scenarioConfig = join(dir, 'gatewatch.yaml');
  const configured = loadConfig({
    env: {},
    ...(configFile ? { file: configFile } : existsSync(scenarioConfig) ? { file: scenarioConfig } : {}),
  });
  const { perRule, groundTruth } = readLabels(dir, options.labelsFile);
  const loaded = await loadRuleFiles(rulePaths, { lists: configured.detections.lists });
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    for (const d of errors) console.error(formatDiagnostic(d));
    throw new UserError(
      `${errors.length} error(s) in the rule files (above): fix them, or choose rules with --rules`,
      EXIT.failure,
    );
  }
  const store = new EmbeddedStore(':memory:');
  // labels name keys raw: they are fingerprinted with the key the replay uses (the configured one,
  // else the in-memory store's own)
  const config = withFingerprintSecret(configured, embeddedFingerprintSecret(store, configured));
  const identity = createIdentityResolver({ fingerprintSecret: config.ingest.fingerprintSecret });
  const keyFingerprints = (raw: string) =>
    (['header', 'gateway', 'basic'] as const)
      .map((s) => identity.fingerprint(keyIdentityString(s, raw)))
      .filter((x): x is string => x !== undefined);
  try {
    await replay(replayFiles([dir]), { config, store, rules: loaded.rules });
    const incidents = store.incidents();
    const classes = scoreIncidents(groundTruth, incidents, { keyFingerprints });
    const coverage = embeddedCoverage(store, loaded.rules, config);
    if (!perRule) return { classes, coverage, incidents };
    const scores = matchIncidents(perRule, incidents);
    const sum = { tp: 0, fp: 0, fn: 0 };
    for (const s of Object.values(scores)) {
      sum.tp += s.tp;
      sum.fp += s.fp;
      sum.fn += s.fn;
    }
    return {
      scores,
      total: {
        ...sum,
        precision: sum.tp + sum.fp === 0 ? 1 : sum.tp / (sum.tp + sum.fp),
        recall: sum.tp + sum.fn === 0 ? 1 : sum.tp / (sum.tp + sum.fn),
      },
      classes,
      coverage,
      incidents,
    };
  } finally {
    store.close();
  }
}

/** Tables with colour codes only where colour is allowed (a terminal, no NO_COLOR: cli/table.ts). */
export function plainTable(head: string[]): Table.Table {
  return new Table({ head, ...cliTableStyle() });
}

export function formatClassReport(r: EvaluationReport): string {
  const table = plainTable(['class', 'attacks', 'found', 'recall', 'incidents', 'duplicates']);
  for (const c of r.classes)
    table.push([c.class, c.attacks, c.found, c.recall.toFixed(3), c.incidents, c.duplicates]);
  const lines = [table.toString()];
  lines.push(
    `incidents ${r.incidents}: ${r.truePositives} true, ${r.falsePositives} false, ${r.duplicates} duplicates — precision ${r.precision.toFixed(3)}, recall ${r.recall.toFixed(3)} (lowest class ${r.minClassRecall.toFixed(3)})`,
  );
  for (const c of r.classes) for (const m of c.missed) lines.push(`  missed     ${c.class}: ${m}`);
  for (const f of r.falsePositiveIncidents)
    lines.push(`  false      ${f.rules.join('+')}: ${f.title}${f.benign ? ` (benign: ${f.benign})` : ''}`);
  for (const d of r.duplicateIncidents)
    lines.push(`  duplicate  ${d.rules.join('+')}: ${d.title} (of ${d.of.join(', ')})`);
  return lines.join('\n');
}

/** `eval <dir>`: score a labelled directory's incidents. */
export async function evaluate(
  dir: string,
  opts: { rules: string[]; json?: boolean; labels?: string },
  cmd: Command,
): Promise<void> {
  let result: EvalResult;
  try {
    result = await evaluateScenario(dir, opts.rules, cmd.optsWithGlobals().config, {
      ...(opts.labels ? { labelsFile: opts.labels } : {}),
    });
  } catch (e) {
    if (e instanceof EvalInputError) throw new UserError(`eval: ${e.message}`);
    throw e;
  }
  const { scores, total, classes, coverage } = result;
  if (opts.json) {
    console.log(JSON.stringify({ classes, coverage, ...(scores ? { scores, total } : {}) }, null, 2));
    return;
  }
  if (scores && total) {
    const table = plainTable(['rule', 'TP', 'FP', 'FN', 'duplicates', 'precision', 'recall']);
    for (const [rule, s] of Object.entries(scores).sort()) {
      table.push([rule, s.tp, s.fp, s.fn, s.duplicates, s.precision.toFixed(3), s.recall.toFixed(3)]);
    }
    table.push([
      'all rules',
      total.tp,
      total.fp,
      total.fn,
      Object.values(scores).reduce((n, s) => n + s.duplicates, 0),
      total.precision.toFixed(3),
      total.recall.toFixed(3),
    ]);
    console.log(table.toString());
    for (const [rule, s] of Object.entries(scores)) {
      for (const m of s.missed) console.log(`  missed   ${rule}: ${m}`);
      for (const b of s.benignHits) console.log(`  benign   ${rule}: ${b}`);
    }
  }
  console.log(formatClassReport(classes));
  console.log(formatCoverage(coverage));
}
