/**
 * `gatewatch detect worker|run` — the distributed detection processes.
 */
import type { Command } from 'commander';
import { elasticsearchIncidentStore } from '../../detections/incidents/es-store.ts';
import { raiseInventoryFindings } from '../../detections/inventory-findings.ts';
import { loadRuleSet } from '../../detections/rule-set.ts';
import { startDetection } from '../../detections/runtime.ts';
import { ElasticsearchSpecStore } from '../../inventory/specs/registry.ts';
import { ElasticsearchInventoryStore } from '../../inventory/store.ts';
import { formatDiagnostic, loadRuleFiles } from '../../parser/index.ts';
import { configOf } from '../config.ts';
import { EXIT, UserError } from '../errors.ts';

async function rulesFor(paths: string[], lists: Record<string, string[]>) {
  const loaded = await loadRuleFiles(paths, { lists });
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    for (const d of errors) console.error(formatDiagnostic(d));
    throw new UserError(
      `${errors.length} error(s) in the rule files (above): fix them (gatewatch rules validate)`,
      EXIT.failure,
    );
  }
  return loaded.rules;
}

/** `detect worker`: schedule every enabled rule and run them (many workers may run). */
export async function worker(_opts: unknown, cmd: Command): Promise<void> {
  const config = configOf(cmd);
  const rules = await rulesFor(config.detections.rulePaths, config.detections.lists);
  const runtime = await startDetection(config, {
    rules,
    worker: true,
    schedule: true,
    onRun: (r) => {
      if (r.outcome !== 'skipped') {
        console.log(
          `${r.rule_id} [${r.range_start} … ${r.range_end}) ${r.outcome} in ${r.duration_ms} ms: ` +
            `${r.detections} detections, ${r.incidents_created} new incidents${r.degraded_reason ? ` (degraded: ${r.degraded_reason})` : ''}${r.error ? ` error: ${r.error}` : ''}`,
        );
      }
    },
  });
  // Rules managed through the REST API join the file rules; re-read them every minute.
  const reload = async () => {
    const set = await loadRuleSet(config, runtime.es);
    for (const p of set.problems) console.error(p);
    runtime.scheduler.setRules(set.rules);
    await runtime.scheduler.syncSchedules();
    return set.rules.filter((r) => r.enabled).length;
  };
  console.log(`detection worker ready: ${await reload()} rules scheduled`);
  // API inventory findings (shadow, zombie, orphan …) become incidents every 10 minutes.
  const prefix = config.elasticsearch.indexPrefix;
  const raise = async () => {
    const r = await raiseInventoryFindings(
      new ElasticsearchInventoryStore(runtime.es, prefix),
      new ElasticsearchSpecStore(runtime.es, prefix),
      elasticsearchIncidentStore(runtime.es, prefix),
    );
    if (r.created.length > 0) console.log(`inventory: ${r.created.length} new finding incident(s)`);
  };
  const findingsTimer = setInterval(
    () => void raise().catch((err) => console.error(`inventory findings: ${err.message}`)),
    600_000,
  );
  findingsTimer.unref();
  const timer = setInterval(
    () => void reload().catch((err) => console.error(`rule reload: ${err.message}`)),
    60_000,
  );
  timer.unref();
  const close = async () => {
    await runtime.close();
    process.exit(0);
  };
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
}

/** `detect run [ruleIds...]`: run rules once now (catching up from their checkpoints) and exit. */
export async function run(ruleIds: string[], _opts: unknown, cmd: Command): Promise<void> {
  const config = configOf(cmd);
  const rules = await rulesFor(config.detections.rulePaths, config.detections.lists);
  const runtime = await startDetection(config, { rules });
  try {
    for (const rule of rules) {
      if (ruleIds.length > 0 ? !ruleIds.includes(rule.id) : !rule.enabled) continue;
      for (const r of await runtime.scheduler.runRule(rule.id)) {
        console.log(
          `${r.rule_id}: ${r.outcome}, ${r.detections} detections, ${r.incidents_created} new incidents`,
        );
      }
    }
  } finally {
    await runtime.close();
  }
}
