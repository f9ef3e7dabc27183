/**
 * Format registry: per-line auto-detection (each line is JSON-parsed at most once and the value
 * shared across detectors; text formats use cheap prefix checks) or a fixed format per source.
 * Envelopes are unwrapped here, so formats only ever see one record: JSON arrays (Kong http-log
 * batches), Azure `{"records":[…]}` and CloudWatch Logs subscription `logEvents[].message`.
 */
import { awsAlb } from './aws-alb.ts';
import { awsApiGateway } from './aws-apigateway.ts';
import { awsCloudFront } from './aws-cloudfront.ts';
import { awsWaf } from './aws-waf.ts';
import { azureAppGateway, azureFrontDoor } from './azure.ts';
import { cloudflareFirewallEvents, cloudflareHttpRequests } from './cloudflare.ts';
import { envoyAccess, envoyJson } from './envoy.ts';
import { genericJson } from './generic-json.ts';
import { haproxyHttp } from './haproxy.ts';
import { kong } from './kong.ts';
import { modsecurityAudit } from './modsecurity.ts';
import { nginxAccess, nginxIngress, nginxJson } from './nginx.ts';
import { traefik } from './traefik.ts';
import type { EventDraft, Format, ParseContext, RawRequest, SourceOptions } from './types.ts';
import { isObj } from './util.ts';

export type * from './types.ts';

/** Every built-in format, in detection priority order (ties go to the earlier one). */
export const FORMATS: readonly Format[] = [
  awsWaf,
  awsApiGateway,
  awsAlb,
  awsCloudFront,
  kong,
  cloudflareHttpRequests,
  cloudflareFirewallEvents,
  azureAppGateway,
  azureFrontDoor,
  modsecurityAudit,
  traefik,
  envoyJson,
  envoyAccess,
  haproxyHttp,
  nginxIngress,
  nginxAccess,
  nginxJson,
  genericJson,
];

const BY_ID = new Map(FORMATS.map((f) => [f.id, f]));

export function getFormat(id: string): Format | undefined {
  return BY_ID.get(id);
}

export function formatIds(): string[] {
  return FORMATS.map((f) => f.id);
}

/** Options of one ingest source, as far as parsing is concerned. */
export interface SourceParseOptions extends SourceOptions {
  /** Fixed format id; when absent, each line is auto-detected. */
  format?: string;
  /** Restrict auto-detection to these format ids. */
  formats?: string[];
  /** Longest accepted line, in UTF-16 code units (default 1 MiB). */
  maxLineLength?: number;
}

/** Parsing state of one source: options, detection candidates and format state. */
export interface SourceParser {
  readonly options: SourceParseOptions;
  readonly fixed?: Format;
  readonly jsonFormats: readonly Format[];
  readonly textFormats: readonly Format[];
  readonly state: Map<string, unknown>;
  last?: Format;
  /** One parse context per source, refilled for each record (formats use it synchronously). */
  readonly context: ParseContext;
}

/** Build the parsing state of a source. Throws only on configuration errors (unknown format id). */
export function createSourceParser(options: SourceParseOptions): SourceParser {
  let fixed: Format | undefined;
  if (options.format !== undefined) {
    fixed = BY_ID.get(options.format);
    if (!fixed) throw new Error(`unknown format "${options.format}"; known: ${formatIds().join(', ')}`);
  }
  let candidates = FORMATS.filter((f) => f.id !== 'generic.json' || options.fieldMap !== undefined);
  if (options.formats !== undefined) {
    for (const id of options.formats) {
      if (!BY_ID.has(id)) throw new Error(`unknown format "${id}"; known: ${formatIds().join(', ')}`);
    }
    candidates = FORMATS.filter((f) => options.formats!.includes(f.id));
  }
  const state = new Map<string, unknown>();
  return {
    options,
    fixed,
    jsonFormats: candidates.filter((f) => f.kind !== 'text'),
    textFormats: candidates.filter((f) => f.kind !== 'json'),
    state,
    context: { source: options, json: undefined, state, receivedAt: 0 },
  };
}

export interface ParsedRecord {
  format: Format;
  event: EventDraft;
  raw: RawRequest;
  /** The record as received (the line, or the array element / envelope message). */
  original: string;
}

export type LineResult =
  | {
      ok: true;
      records: ParsedRecord[];
      /** Records of a batch line (array, envelope) that failed; the others still count. */
      failures: { reason: string; format?: string; original: string }[];
    }
  | { ok: false; reason: string; format?: string; skip?: boolean };

export const DEFAULT_MAX_LINE = 1 << 20;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Pick the best format for a record, or undefined. */
function detect(sp: SourceParser, line: string, json: unknown): Format | undefined {
  const list = json === undefined ? sp.textFormats : sp.jsonFormats;
  const last = sp.last;
  if (
    last !== undefined &&
    (json === undefined) === (last.kind === 'text') &&
    last.detect(line, json) >= 0.9
  ) {
    return last;
  }
  let best: Format | undefined;
  let bestScore = 0;
  for (const f of list) {
    const s = f.detect(line, json);
    if (s > bestScore) {
      best = f;
      bestScore = s;
      if (s >= 1) break;
    }
  }
  if (best !== undefined) sp.last = best;
  return best;
}

export type RecordResult =
  | { ok: true; rec: ParsedRecord }
  | { ok: false; reason: string; format?: string; skip?: boolean };

function parseRecord(sp: SourceParser, line: string, json: unknown, receivedAt: number): RecordResult {
  const format = sp.fixed ?? detect(sp, line, json);
  if (format === undefined) return { ok: false, reason: noFormatMatched(json) };
  // a source fixed to a text format reads JSON-looking lines as text
  return runFormat(sp, format, line, format.kind === 'text' ? undefined : json, receivedAt);
}

function noFormatMatched(json: unknown): string {
  return json === undefined ? 'no format matched the line' : 'no format matched the JSON record';
}

function runFormat(
  sp: SourceParser,
  format: Format,
  line: string,
  json: unknown,
  receivedAt: number,
): RecordResult {
  const ctx = sp.context;
  ctx.json = json;
  ctx.receivedAt = receivedAt;
  let r: ReturnType<Format['parse']>;
  try {
    r = format.parse(line, ctx);
  } catch (e) {
    // Formats are written not to throw; this is a last line of defence, reported as a value.
    r = { ok: false, reason: `parser error: ${(e as Error).message}` };
  }
  ctx.json = undefined;
  if (!r.ok) {
    return r.skip
      ? { ok: false, reason: r.reason, format: format.id, skip: true }
      : { ok: false, reason: r.reason, format: format.id };
  }
  return { ok: true, rec: { format, event: r.event, raw: r.raw, original: line } };
}

/**
 * A received line after the cheap first steps (decoding, trimming, JSON.parse, format
 * detection), before the format's parser runs. Batch normalisation prepares every line of a
 * job first and then parses them grouped by format (see normalizeLines).
 */
export type PreparedLine =
  /** Decided already: an empty or overlong line, invalid UTF-8 or JSON, no format matched. */
  | { done: LineResult; line?: undefined; json?: undefined; batch?: undefined; format?: undefined }
  /** One record of a known format. */
  | { done?: undefined; line: string; json: unknown; batch?: undefined; format: Format }
  /** A JSON array or envelope: several records, each detected on its own. */
  | { done?: undefined; line: string; json: unknown; batch: unknown[]; format?: undefined };

/**
 * Decode, trim, parse JSON once and detect the format of one received line. Never throws.
 * `scrub` is applied to the decoded, trimmed line before anything else reads it: secret
 * scrubbing (ingest/transforms/scrub.ts), so everything parsed, hashed into ids or stored is
 * scrubbed.
 */
export function prepareLine(
  sp: SourceParser,
  input: string | Uint8Array,
  scrub?: (line: string) => string,
): PreparedLine {
  let line: string;
  if (typeof input === 'string') line = input;
  else {
    if (input.length > (sp.options.maxLineLength ?? DEFAULT_MAX_LINE) * 3) {
      return { done: { ok: false, reason: `line too long (${input.length} bytes)` } };
    }
    try {
      line = utf8.decode(input);
    } catch {
      return { done: { ok: false, reason: 'invalid UTF-8' } };
    }
  }
  const max = sp.options.maxLineLength ?? DEFAULT_MAX_LINE;
  if (line.length > max)
    return { done: { ok: false, reason: `line too long (${line.length} > ${max} characters)` } };
  let end = line.length;
  while (end > 0) {
    const c = line.charCodeAt(end - 1);
    if (c !== 10 && c !== 13 && c !== 32 && c !== 9) break;
    end--;
  }
  if (end !== line.length) line = line.slice(0, end);
  if (line.length === 0) return { done: { ok: false, reason: 'empty line', skip: true } };
  if (!line.isWellFormed()) line = line.toWellFormed();
  if (scrub !== undefined) line = scrub(line);

  const first = line.charCodeAt(0);
  let json: unknown;
  if ((first === 123 || first === 91) && (sp.fixed === undefined || sp.fixed.kind !== 'text')) {
    // A JSON value that starts with { or [ ends with } or ] (the line is trimmed): text lines
    // that start with a bracket (Envoy's "[2024-…]") skip the throwing JSON.parse entirely.
    const last = line.charCodeAt(line.length - 1);
    if (last === first + 2) {
      try {
        json = JSON.parse(line);
      } catch (e) {
        const fallback = sp.fixed === undefined ? detect(sp, line, undefined) : undefined;
        if (fallback === undefined) return { done: invalidJson(e) };
      }
    } else {
      const fallback = sp.fixed === undefined ? detect(sp, line, undefined) : undefined;
      if (fallback === undefined) {
        try {
          JSON.parse(line);
        } catch (e) {
          return { done: invalidJson(e) };
        }
      }
    }
  }

  if (json !== undefined) {
    const batch = unwrap(json);
    if (batch !== undefined) return { line, json, batch };
  }
  const format = sp.fixed ?? detect(sp, line, json);
  if (format === undefined) return { done: { ok: false, reason: noFormatMatched(json) } };
  // a source fixed to a text format reads JSON-looking lines as text
  return { line, json: format.kind === 'text' ? undefined : json, format };
}

/** Run the format's parser on a prepared line (or each record of a batch line). Never throws. */
export function finishLine(sp: SourceParser, p: PreparedLine, receivedAt: number): LineResult {
  if (p.done !== undefined) return p.done;
  if (p.batch !== undefined) {
    const records: ParsedRecord[] = [];
    const failures: { reason: string; format?: string; original: string }[] = [];
    for (const item of p.batch) {
      const text = typeof item === 'string' ? item : JSON.stringify(item);
      let itemJson: unknown = typeof item === 'string' ? undefined : item;
      if (typeof item === 'string' && (item.charCodeAt(0) === 123 || item.charCodeAt(0) === 91)) {
        try {
          itemJson = JSON.parse(item);
        } catch {
          itemJson = undefined;
        }
      }
      const r = parseRecord(sp, text, itemJson, receivedAt);
      if (r.ok) records.push(r.rec);
      else if (!r.skip) failures.push({ reason: r.reason, format: r.format, original: text });
    }
    if (records.length === 0 && failures.length > 0) {
      const f = failures[0]!;
      return { ok: false, reason: `batch of ${p.batch.length}: ${f.reason}`, format: f.format };
    }
    return { ok: true, records, failures };
  }
  const r = runFormat(sp, p.format, p.line, p.json, receivedAt);
  if (!r.ok) return r;
  return { ok: true, records: [r.rec], failures: [] };
}

/** Run the format's parser on a prepared single-record line. Never throws. */
export function parseRecordOf(
  sp: SourceParser,
  p: { line: string; json: unknown; format: Format },
  receivedAt: number,
): RecordResult {
  return runFormat(sp, p.format, p.line, p.json, receivedAt);
}

/** Split one received line into records and parse them (after `scrub`, see prepareLine). Never throws. */
export function parseLine(
  sp: SourceParser,
  input: string | Uint8Array,
  receivedAt = Date.now(),
  scrub?: (line: string) => string,
): LineResult {
  return finishLine(sp, prepareLine(sp, input, scrub), receivedAt);
}

function invalidJson(e: unknown): { ok: false; reason: string } {
  return { ok: false, reason: `invalid JSON: ${(e as Error).message.slice(0, 160)}` };
}

/** Records inside an envelope, or undefined when the value is a record itself. */
function unwrap(json: unknown): unknown[] | undefined {
  if (Array.isArray(json)) return json;
  if (!isObj(json)) return undefined;
  if (Array.isArray(json.records) && Object.keys(json).length <= 2) return json.records;
  if (json.messageType === 'DATA_MESSAGE' && Array.isArray(json.logEvents)) {
    return json.logEvents.map((e) => (isObj(e) && typeof e.message === 'string' ? e.message : e));
  }
  return undefined;
}

export {
  awsAlb,
  awsApiGateway,
  awsCloudFront,
  awsWaf,
  azureAppGateway,
  azureFrontDoor,
  cloudflareFirewallEvents,
  cloudflareHttpRequests,
  envoyAccess,
  envoyJson,
  genericJson,
  haproxyHttp,
  kong,
  modsecurityAudit,
  nginxAccess,
  nginxIngress,
  nginxJson,
  traefik,
};
