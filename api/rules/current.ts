/**
 * The rule set as the detection engine runs it (rule files plus API-stored rules), read at
 * most every few seconds: incident timelines and exception checks need a rule's definition
 * on every call, and parsing the rule files each time costs ~90 ms.
 */
import { loadRuleSetFrom } from '../../detections/rule-set.ts';
import type { RuleIR } from '../../parser/index.ts';
import type { AppContext } from '../app.ts';

const TTL_MS = 5_000;
const cache = new WeakMap<AppContext, { rules: Promise<RuleIR[]>; until: number }>();

/** `fresh`: read now (e.g. a rule id the cached set does not know may have just been stored). */
export function currentRules(ctx: AppContext, fresh = false): Promise<RuleIR[]> {
  const hit = cache.get(ctx);
  if (!fresh && hit && hit.until > Date.now()) return hit.rules;
  const rules = loadRuleSetFrom(ctx.config, ctx.rules).then((r) => r.rules);
  cache.set(ctx, { rules, until: Date.now() + TTL_MS });
  // A failed read is not kept.
  rules.catch(() => cache.delete(ctx));
  return rules;
}
