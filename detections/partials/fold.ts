/**
 * Folding a batch of stored events into the partials of every partial rule (docs/partials.md):
 * the evaluator's own Bucketizer per rule, filters shared across rules (each event is offered to
 * every rule before the next), cells split per UTC day and encoded.
 */
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { BaselineRule, FirstSeenRule, RuleIR, ThresholdRule } from '../../parser/ir.ts';
import type { AggPlan } from '../engine/aggregate.ts';
import { DAY_MS } from '../engine/es/run.ts';
import { compileFilter, type EventPredicate, type SharedFilters } from '../engine/filter.ts';
import { Bucketizer } from '../engine/in-process.ts';
import { baselinePlan } from '../engine/kinds/baseline.ts';
import { firstSeenPlan } from '../engine/kinds/first-seen.ts';
import { thresholdPlan } from '../engine/kinds/threshold.ts';
import { chunkOf, type EncodedCells, encodeCells, partialRuleKey, splitByChunk } from './cells.ts';
import { type KeyUpsert, keysCoverageKey, keyUpserts } from './first-seen-keys.ts';

/** A rule whose partials are kept: threshold and baseline rules (not correlated). */
export interface PartialRule {
  /** `id@version`: the key partial documents name it by. */
  key: string;
  rule: ThresholdRule | BaselineRule | FirstSeenRule;
  plan: AggPlan;
  groupBy: string[];
  bucketMs: number;
  filter: EventPredicate;
}

/**
 * The rule's partial definition, or undefined when its partials are not kept: other kinds,
 * correlated rules (their events are merged across logs first), buckets that do not divide a
 * day (cells are stored per UTC day).
 */
export function partialRule(rule: RuleIR): PartialRule | undefined {
  if (rule.correlate) return undefined;
  let p: { plan: AggPlan; groupBy: string[]; bucketMs: number };
  if (rule.kind === 'threshold') p = thresholdPlan(rule);
  else if (rule.kind === 'baseline') p = baselinePlan(rule);
  else if (rule.kind === 'first_seen') p = firstSeenPlan(rule);
  else return undefined;
  if (DAY_MS % p.bucketMs !== 0) return undefined;
  return {
    // first_seen: its key index, not cells (first-seen-keys.ts); batches name it so
    key: rule.kind === 'first_seen' ? keysCoverageKey(partialRuleKey(rule)) : partialRuleKey(rule),
    rule,
    plan: p.plan,
    groupBy: p.groupBy,
    bucketMs: p.bucketMs,
    filter: compileFilter(rule.filter),
  };
}

/** What one batch contributes: per day chunk, its owned events and each rule's cells. */
export interface FoldedBatch {
  /** `id@version` of every rule folded (also those without cells in a chunk). */
  rules: string[];
  chunks: Map<number, { events: number; body: Record<string, EncodedCells> }>;
  /** First_seen rules' keys, upserted into the key index before the partial documents. */
  keys?: { upserts: KeyUpsert[]; keepMs?: number };
}

export interface PartialFolderOptions {
  /** Distinct values kept exactly per cell and field (default 256). */
  exactValues?: number;
  /** Hours of a first-seen key kept this long before its latest event (default: all). */
  keyRetentionMs?: number;
}

/** The partial rules of a rule set, compiled once; `fold` is called per batch. */
export class PartialFolder {
  readonly rules: PartialRule[];
  readonly exactValues: number;
  readonly keyRetentionMs: number | undefined;
  constructor(rules: readonly RuleIR[], options: PartialFolderOptions = {}) {
    this.rules = rules.flatMap((r) => {
      const p = r.enabled ? partialRule(r) : undefined;
      return p ? [p] : [];
    });
    this.exactValues = options.exactValues ?? 256;
    this.keyRetentionMs = options.keyRetentionMs;
  }

  get keys(): string[] {
    return this.rules.map((r) => r.key);
  }

  /** Fold `events` (the events a batch owns). Events without a valid @timestamp are not stored, so not counted. */
  fold(events: readonly GatewatchEvent[]): FoldedBatch {
    const f = this.begin();
    f.add(events);
    return f.finish();
  }

  /**
   * A fold fed in pages (the background build reads a day of stored events page by page): the
   * same cells as one `fold` over all the pages.
   */
  begin(): { add(events: readonly GatewatchEvent[]): void; finish(): FoldedBatch } {
    const shared: SharedFilters = new Map();
    const folders: { filter: EventPredicate; bz: Bucketizer; rule: PartialRule }[] = this.rules.map((r) => ({
      rule: r,
      filter: compileFilter(r.rule.filter, shared),
      bz: new Bucketizer(r.plan, r.groupBy, r.bucketMs, 0, Number.POSITIVE_INFINITY, shared),
    }));
    const chunks: FoldedBatch['chunks'] = new Map();
    return {
      add(events) {
        for (const e of events) {
          const t = Date.parse(e['@timestamp']);
          if (Number.isNaN(t)) continue;
          const chunk = chunkOf(t);
          let c = chunks.get(chunk);
          if (!c) {
            c = { events: 0, body: {} };
            chunks.set(chunk, c);
          }
          c.events++;
          const id = String(e.event?.id ?? '');
          for (const f of folders) if (f.filter(e)) f.bz.add(e, t, id);
        }
      },
      finish: () => {
        const upserts: KeyUpsert[] = [];
        for (const f of folders) {
          const { groups } = f.bz.result();
          if (f.rule.rule.kind === 'first_seen') {
            const fs = f.rule.rule.firstSeen;
            upserts.push(...keyUpserts(partialRuleKey(f.rule.rule), fs.groupBy.length, groups.values()));
            continue;
          }
          for (const [chunk, part] of splitByChunk(groups.values()))
            chunks.get(chunk)!.body[f.rule.key] = encodeCells(part, this.exactValues);
        }
        const keys =
          upserts.length > 0
            ? { upserts, ...(this.keyRetentionMs !== undefined ? { keepMs: this.keyRetentionMs } : {}) }
            : undefined;
        return { rules: this.keys, chunks, ...(keys ? { keys } : {}) };
      },
    };
  }
}
