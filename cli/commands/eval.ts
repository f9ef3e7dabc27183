/**
 * `gatewatch eval <scenario>` — replay a labelled scenario through the embedded pipeline with
 * every enabled rule and print precision and recall per rule against its labels.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { loadConfig } from '../../core/config/load.ts';
import { replay, replayFiles } from '../../embedded/replay.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { formatDiagnostic, loadRuleFiles } from '../../parser/index.ts';
import { matchIncidents, type RuleScore } from '../../samples/generator/labels.ts';
import type { Label } from '../../samples/generator/types.ts';
import { EXIT, UserError } from '../errors.ts';
import { cliTableStyle } from '../table.ts';

export interface EvalResult {
  scores: Record<string, RuleScore>;
  total: { tp: number; fp: number; fn: number; precision: number; recall: number };
}

export async function evaluateScenario(
  dir: string,
  rulePaths: string[],
  configFile?: string,
): Promise<EvalResult> {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such directory (give a scenario directory)`);
  if (!existsSync(join(dir, 'labels.json')))
    throw new UserError(
      `${dir} has no labels.json, so there is nothing to score against: eval needs a labelled scenario (gatewatch scenario generate --out <dir> writes one); to look at the incidents of plain logs, use gatewatch replay`,
    );
  const scenarioConfig = join(dir, 'gatewatch.yaml');
  const config = loadConfig({
    env: {},
    ...(configFile ? { file: configFile } : existsSync(scenarioConfig) ? { file: scenarioConfig } : {}),
  });
  const loaded = await loadRuleFiles(rulePaths, { lists: config.detections.lists });
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    for (const d of errors) console.error(formatDiagnostic(d));
    throw new UserError(
      `${errors.length} error(s) in the rule files (above): fix them, or choose rules with --rules`,
      EXIT.failure,
    );
  }
  const labels = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as Label[] | { labels: Label[] };
  const store = new EmbeddedStore(':memory:');
  try {
    const result = await replay(replayFiles([dir]), { config, store, rules: loaded.rules });
    const scores = matchIncidents(Array.isArray(labels) ? labels : labels.labels, result.incidents);
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
    };
  } finally {
    store.close();
  }
}

/** `eval <scenario>`: per-rule precision and recall of a labelled scenario. */
export async function evaluate(
  dir: string,
  opts: { rules: string[]; json?: boolean },
  cmd: Command,
): Promise<void> {
  const { scores, total } = await evaluateScenario(dir, opts.rules, cmd.optsWithGlobals().config);
  if (opts.json) {
    console.log(JSON.stringify({ scores, total }, null, 2));
    return;
  }
  const table = new Table({ head: ['rule', 'TP', 'FP', 'FN', 'precision', 'recall'], ...cliTableStyle() });
  for (const [rule, s] of Object.entries(scores).sort()) {
    table.push([rule, s.tp, s.fp, s.fn, s.precision.toFixed(3), s.recall.toFixed(3)]);
  }
  table.push([
    'all rules',
    total.tp,
    total.fp,
    total.fn,
    total.precision.toFixed(3),
    total.recall.toFixed(3),
  ]);
  console.log(table.toString());
  for (const [rule, s] of Object.entries(scores)) {
    for (const m of s.missed) console.log(`  missed   ${rule}: ${m}`);
    for (const b of s.benignHits) console.log(`  benign   ${rule}: ${b}`);
  }
}
