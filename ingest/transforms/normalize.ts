/**
 * normalizeLine: detect → parse → enrich for one received line. Returns events, or a dead-letter
 * reason. Never throws on input (configuration errors throw when the context is created).
 */

import type { GatewatchEvent } from '../../core/schema/event.ts';
import {
  createSourceParser,
  finishLine,
  type LineResult,
  type PreparedLine,
  parseLine,
  parseRecordOf,
  prepareLine,
  type RecordResult,
  type SourceParseOptions,
  type SourceParser,
} from '../formats/index.ts';
import type { Format } from '../formats/types.ts';
import { createEnricher, type Enricher, type EnricherConfig } from './enrich.ts';
import { createScrubber, type Scrubber } from './scrub.ts';

export interface SourceConfig extends SourceParseOptions, Omit<EnricherConfig, 'sourceName'> {}

export interface NormalizeContext {
  readonly name: string;
  readonly parser: SourceParser;
  readonly enrich: Enricher;
  /** The secret scrubbing every line goes through before it is parsed (keyed like fingerprints). */
  readonly scrub: Scrubber;
  /** Clock for records without a timestamp (ms since the epoch). */
  now: () => number;
}

export interface DeadLetter {
  reason: string;
  /** Format that was tried, when one was detected or configured. */
  format?: string;
}

export type NormalizeResult =
  | {
      ok: true;
      /** Usually one event; batch lines (JSON arrays, envelopes) give several; header lines none. */
      events: GatewatchEvent[];
      /** Records of a batch line that failed (the rest of the batch still counts). */
      failures: DeadLetter[];
      /** Set when the line was deliberately skipped (blank line, `#Fields` header). */
      skipped?: string;
    }
  | ({ ok: false } & DeadLetter);

/** Build the per-source context (parser state, enricher, caches). */
export function createNormalizeContext(
  config: SourceConfig,
  options: { now?: () => number } = {},
): NormalizeContext {
  const secret = config.identity?.fingerprintSecret;
  const scrub = createScrubber(secret === undefined ? {} : { fingerprintSecret: secret });
  const parser = createSourceParser(config);
  const enrich = createEnricher({ ...config, sourceName: config.name });
  return { name: config.name, parser, enrich, scrub, now: options.now ?? Date.now };
}

const NO_FAILURES = Object.freeze([]) as unknown as DeadLetter[];

export interface NormalizeOptions {
  /**
   * The lines were scrubbed already with this context's key (a receiver did it before they were
   * queued): scrubbing is idempotent, so doing it again would only cost time.
   */
  scrubbed?: boolean;
}

export function normalizeLine(
  line: string | Uint8Array,
  ctx: NormalizeContext,
  options: NormalizeOptions = {},
): NormalizeResult {
  return enrichLineResult(
    parseLine(ctx.parser, line, ctx.now(), options.scrubbed === true ? undefined : ctx.scrub),
    ctx,
  );
}

/**
 * normalizeLine for every line of a batch, results in input order. The lines are prepared
 * (decoded, JSON-parsed, detected) in order and then parsed and enriched grouped by format: when
 * a job mixes many formats line by line, running one format's code over its lines back to back
 * keeps that code and its data in the CPU caches. Records of one format keep their relative
 * order, so per-source format state (CloudFront `#Fields`) still applies to the lines after it.
 */
export function normalizeLines(
  lines: readonly (string | Uint8Array)[],
  ctx: NormalizeContext,
  options: NormalizeOptions = {},
): NormalizeResult[] {
  const scrub = options.scrubbed === true ? undefined : ctx.scrub;
  const receivedAt = ctx.now();
  const results = new Array<NormalizeResult>(lines.length);
  const prepared = new Array<PreparedLine>(lines.length);
  const groups = new Map<Format | undefined, number[]>();
  for (let i = 0; i < lines.length; i++) {
    const p = prepareLine(ctx.parser, lines[i]!, scrub);
    if (p.done !== undefined) {
      results[i] = enrichLineResult(p.done, ctx);
      continue;
    }
    prepared[i] = p;
    let group = groups.get(p.format);
    if (group === undefined) {
      group = [];
      groups.set(p.format, group);
    }
    group.push(i);
  }
  for (const group of groups.values()) {
    for (const i of group) {
      const p = prepared[i]!;
      results[i] =
        p.format !== undefined
          ? enrichRecord(parseRecordOf(ctx.parser, p, receivedAt), ctx)
          : enrichLineResult(finishLine(ctx.parser, p, receivedAt), ctx);
    }
  }
  return results;
}

/** enrichLineResult for a line holding one record, without the intermediate line result. */
function enrichRecord(r: RecordResult, ctx: NormalizeContext): NormalizeResult {
  if (!r.ok) return notParsed(r);
  const rec = r.rec;
  return {
    ok: true,
    events: [ctx.enrich(rec.event, rec.raw, rec.format.id, rec.original)],
    failures: NO_FAILURES,
  };
}

function enrichLineResult(r: LineResult, ctx: NormalizeContext): NormalizeResult {
  if (!r.ok) return notParsed(r);
  const events: GatewatchEvent[] = [];
  for (const rec of r.records) events.push(ctx.enrich(rec.event, rec.raw, rec.format.id, rec.original));
  if (r.failures.length === 0) return { ok: true, events, failures: NO_FAILURES };
  const failures: DeadLetter[] = r.failures.map((f) =>
    f.format === undefined ? { reason: f.reason } : { reason: f.reason, format: f.format },
  );
  return { ok: true, events, failures };
}

/** A line that gave no record: skipped on purpose (header, blank) or a dead letter. */
function notParsed(r: { reason: string; format?: string; skip?: boolean }): NormalizeResult {
  if (r.skip) return { ok: true, events: [], failures: [], skipped: r.reason };
  return r.format === undefined
    ? { ok: false, reason: r.reason }
    : { ok: false, reason: r.reason, format: r.format };
}
