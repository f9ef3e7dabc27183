/**
 * The rules a deployment runs: the rule files (built-in pack and the operator's own), plus
 * rules managed through the REST API (stored with revisions in Elasticsearch). A stored rule
 * with the id of a file rule replaces it; a deleted or disabled stored rule is not scheduled.
 * A file rule can be enabled or disabled through the API without touching its file (a stored
 * file-rule state).
 */
import { readFileSync } from 'node:fs';
import type { Client } from '@elastic/elasticsearch';
import {
  ElasticsearchRuleStore,
  type FileRuleState,
  type RuleStore,
  type StoredRule,
} from '../api/rules/store.ts';
import type { GatewatchConfig } from '../core/config/schema.ts';
import { diskReaders, formatDiagnostic, loadRuleFiles, parseRules } from '../parser/index.ts';
import type { RuleIR } from '../parser/ir.ts';
import { LCurly, lexer, RCurly } from '../parser/lexer.ts';

export interface RuleSet {
  rules: RuleIR[];
  /** Problems that kept a rule out (printed by the CLI, never fatal for the others). */
  problems: string[];
}

/** One rule as an analyst sees it: where it comes from and the state it runs in. */
export interface CatalogueEntry {
  id: string;
  source: 'file' | 'api';
  /** The file rule: the rule itself (source file) or the one an API rule replaces. */
  file?: RuleIR;
  /** The API-stored rule (source api). */
  stored?: StoredRule;
  /** The enabled state set through the API for a file rule. */
  state?: FileRuleState;
  /** Whether the rule runs (its own flag, then the stored state). */
  enabled: boolean;
}

/** File rules plus the rules of `store` (API-managed; Elasticsearch or the embedded file). */
export async function loadRuleSetFrom(config: GatewatchConfig, store?: RuleStore): Promise<RuleSet> {
  const files = await loadRuleFiles(config.detections.rulePaths, { lists: config.detections.lists });
  const problems = files.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  const byId = new Map(files.rules.map((r) => [r.id, r]));
  if (store) {
    for (const [id, state] of await store.fileStates()) {
      const rule = byId.get(id);
      if (rule) byId.set(id, { ...rule, enabled: state.enabled });
    }
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
        lists: config.detections.lists,
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

/**
 * Every rule a deployment knows, sorted by id: file rules (with the state set through the
 * API) and API-stored rules (which replace a file rule of the same id), as loadRuleSetFrom
 * schedules them.
 */
export async function ruleCatalogue(fileRules: RuleIR[], store: RuleStore): Promise<CatalogueEntry[]> {
  const [stored, states] = await Promise.all([store.list(), store.fileStates()]);
  const entries = new Map<string, CatalogueEntry>();
  for (const rule of fileRules) {
    const state = states.get(rule.id);
    entries.set(rule.id, {
      id: rule.id,
      source: 'file',
      file: rule,
      ...(state ? { state } : {}),
      enabled: state ? state.enabled : rule.enabled,
    });
  }
  for (const rule of stored) {
    if (rule.deleted) continue;
    const file = entries.get(rule.id)?.file;
    entries.set(rule.id, {
      id: rule.id,
      source: 'api',
      stored: rule,
      ...(file ? { file } : {}),
      enabled: rule.enabled,
    });
  }
  return [...entries.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The text of one rule in its file: from its `rule` line to the brace that closes it (found
 * with the rule language's own lexer, so braces in strings, regexes and comments don't count).
 */
export function ruleText(rule: RuleIR): string {
  let text: string;
  try {
    text = readFileSync(rule.source.file, 'utf8');
  } catch {
    return '';
  }
  const lines = text.split('\n');
  let depth = 0;
  for (const token of lexer.tokenize(text).tokens) {
    if ((token.startLine ?? 0) < rule.source.line) continue;
    if (token.tokenType === LCurly) depth++;
    else if (token.tokenType === RCurly && --depth === 0) {
      return `${lines.slice(rule.source.line - 1, token.endLine ?? token.startLine).join('\n')}\n`;
    }
  }
  return lines.slice(rule.source.line - 1).join('\n');
}

/** The distributed mode's rule set: files plus the rules stored in Elasticsearch. */
export async function loadRuleSet(config: GatewatchConfig, es?: Client): Promise<RuleSet> {
  if (!es) return loadRuleSetFrom(config);
  const store = new ElasticsearchRuleStore(es, config.elasticsearch.indexPrefix);
  await store.install();
  return loadRuleSetFrom(config, store);
}
