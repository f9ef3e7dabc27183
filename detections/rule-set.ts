/**
 * The rules a deployment runs: the rule files (built-in pack and the operator's own), plus
 * rules managed through the REST API (stored with revisions in Elasticsearch). A stored rule
 * with the id of a file rule replaces it; a deleted or disabled stored rule is not scheduled.
 */
import type { Client } from '@elastic/elasticsearch';
import { ElasticsearchRuleStore, type RuleStore } from '../api/rules/store.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { diskReaders, formatDiagnostic, loadRuleFiles, parseRules } from '../parser/index.ts';
import type { RuleIR } from '../parser/ir.ts';

export interface RuleSet {
  rules: RuleIR[];
  /** Problems that kept a rule out (printed by the CLI, never fatal for the others). */
  problems: string[];
}

/** File rules plus the rules of `store` (API-managed; Elasticsearch or the embedded file). */
export async function loadRuleSetFrom(config: GatewatchConfig, store?: RuleStore): Promise<RuleSet> {
  const files = await loadRuleFiles(config.detections.rulePaths);
  const problems = files.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  const byId = new Map(files.rules.map((r) => [r.id, r]));
  if (store) {
    const readers = diskReaders();
    for (const stored of await store.list()) {
      if (stored.deleted) {
        byId.delete(stored.id);
        continue;
      }
      // Stored rules resolve includes and lists next to the first rule directory.
      const parsed = parseRules(stored.text, {
        file: `${config.detections.rulePaths[0] ?? '.'}/api/${stored.id}.gwr`,
        ...readers,
      });
      const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
      if (errors.length > 0) {
        problems.push(...errors.map(formatDiagnostic));
        continue;
      }
      for (const rule of parsed.rules)
        byId.set(rule.id, { ...rule, enabled: stored.enabled && rule.enabled });
    }
  }
  return { rules: [...byId.values()], problems };
}

/** The distributed mode's rule set: files plus the rules stored in Elasticsearch. */
export async function loadRuleSet(config: GatewatchConfig, es?: Client): Promise<RuleSet> {
  if (!es) return loadRuleSetFrom(config);
  const store = new ElasticsearchRuleStore(es, config.elasticsearch.indexPrefix);
  await store.install();
  return loadRuleSetFrom(config, store);
}
