/**
 * Rule tests: test cases stored next to rules (`<rules dir>/tests/*.yaml`), each a small set of
 * input events (or raw log lines run through the real normalizer) and the incidents a rule
 * must open for them. Cases run through the same code as `gatewatch replay`: the in-process
 * evaluator over `replayRange`, then the incident writer (suppression folding included) into
 * an in-memory embedded store. The format is documented in detections/rules/tests/README.md.
 *
 *   loadRuleTests(paths)          -> cases (file problems become failing cases with diagnostics)
 *   runRuleTests(rules, cases)    -> results (pass/fail, expected vs actual, diff, diagnostics)
 *   formatRuleTestReport(results) -> text, with a field-by-field diff for failures
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../core/config/load.ts';
import { kindOf, lookupField } from '../core/schema/catalogue.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import type { Incident } from '../core/schema/incident.ts';
import { replayRange } from '../embedded/replay.ts';
import { EmbeddedStore } from '../embedded/store.ts';
import { createNormalizer, type Normalizer } from '../ingest/pipeline/normalize.ts';
import type { RuleIR } from '../parser/ir.ts';
import { evaluateRule } from './engine/evaluate.ts';
import { toIncident } from './engine/types.ts';
import { canonicalIp } from './engine/values.ts';
import { writeIncidents } from './incidents/writer.ts';

/** Time all relative offsets (`+5m`) count from, unless a file or case sets `at`. */
export const DEFAULT_BASE_TIME = '2024-01-01T00:00:00.000Z';
export const TEST_FILE_EXTENSIONS = ['.yaml', '.yml', '.json'];

export type Scalar = string | number | boolean | null;

/** One expected incident. Only the properties given are compared. */
export interface ExpectedIncident {
  /** Group values by field (the rule's group-by / join / first_seen keys); fields left out match anything. */
  group: Record<string, Scalar>;
  window?: { start: number; end: number };
  event_count?: number;
  occurrences?: number;
  metrics?: Record<string, number | null>;
  title?: string;
  summary?: string;
}

/** The parts of an incident a test compares. */
export interface ActualIncident {
  group: Record<string, Scalar>;
  window: { start: number; end: number };
  event_count: number;
  occurrences: number;
  metrics: Record<string, number>;
  title: string;
  summary: string;
}

export interface RuleTestCase {
  name: string;
  rule: string;
  /** File the case came from and its position there (0-based). */
  file: string;
  index: number;
  /** Expanded events (with `events:`). */
  events: GatewatchEvent[];
  /** Raw log lines (with `lines:`), normalised when the case runs. */
  lines?: { format?: string; source: string; lines: string[] };
  range?: { start: number; end: number };
  /** Base time of relative offsets, epoch ms. */
  at: number;
  expect: ExpectedIncident[];
  /** Problems found while loading; a case with any fails without running. */
  diagnostics: string[];
}

export type DiffEntry =
  | { kind: 'missing'; expected: ExpectedIncident }
  | { kind: 'unexpected'; actual: ActualIncident }
  | {
      kind: 'different';
      expected: ExpectedIncident;
      actual: ActualIncident;
      fields: { field: string; expected: unknown; actual: unknown }[];
    };

export interface RuleTestResult {
  name: string;
  rule: string;
  file: string;
  passed: boolean;
  expected: ExpectedIncident[];
  actual: ActualIncident[];
  diff: DiffEntry[];
  diagnostics: string[];
  /** Number of input events and the evaluated range (when the case ran). */
  events: number;
  range?: { start: number; end: number };
  degraded?: string;
}

// ---------------------------------------------------------------------------------------------
// Loading

class CaseError extends Error {}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `250ms`, `10s`, `5m`, `1h30m`, `7d`, `1w` → ms. */
export function parseDuration(text: string): number {
  const s = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== s.length) throw new CaseError(`invalid duration ${JSON.stringify(text)}`);
  return total;
}

/** ISO time, epoch ms, or an offset from `base` (`+5m`, `-1d`, `+0`). */
export function parseTime(value: unknown, base: number, what: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) {
    // YAML reads `+0` and `-5` as numbers; a small number is a forgotten unit, not 1970
    if (Math.abs(value) < 1e11)
      throw new CaseError(
        `${what}: ${value} is not a time; write an offset with a unit ("+0m", "-5m") or an ISO time`,
      );
    return value;
  }
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') {
    const s = value.trim();
    if (s === '+0' || s === '-0') return base;
    if (s.startsWith('+')) return base + parseDuration(s.slice(1));
    if (s.startsWith('-')) return base - parseDuration(s.slice(1));
    const t = Date.parse(s);
    if (!Number.isNaN(t)) return t;
  }
  throw new CaseError(
    `${what}: expected an ISO-8601 time, epoch ms or an offset like "+5m", got ${JSON.stringify(value)}`,
  );
}

/**
 * `{i}` and `{i<ops>[:0W]}` in a string: ops are `+N -N *N /N %N` applied left to right
 * (`/` is integer division), `:0W` zero-pads to W digits. `{{` and `}}` are literal braces.
 */
export function substitute(text: string, i: number): string {
  return text.replace(
    /\{\{|\}\}|\{i((?:\s*[-+*/%]\s*\d+)*)(?::0(\d+))?\}/g,
    (m, ops: string, pad?: string) => {
      if (m === '{{') return '{';
      if (m === '}}') return '}';
      let v = i;
      for (const [, op, n] of (ops ?? '').matchAll(/([-+*/%])\s*(\d+)/g)) {
        const k = Number(n);
        if (op === '+') v += k;
        else if (op === '-') v -= k;
        else if (op === '*') v *= k;
        else if (op === '/') v = Math.floor(v / k);
        else v %= k;
      }
      const out = String(v);
      return pad ? out.padStart(Number(pad), '0') : out;
    },
  );
}

function substituteDeep(value: unknown, i: number): unknown {
  if (typeof value === 'string') return substitute(value, i);
  if (Array.isArray(value)) return value.map((v) => substituteDeep(v, i));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteDeep(v, i);
    return out;
  }
  return value;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** Flatten nested objects to dotted keys (`{source: {ip}}` → `source.ip`); arrays are leaves. */
function flatten(value: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}) {
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    // flattened fields (gatewatch.extra) keep their object value
    if (isObject(v) && lookupField(key)?.type !== 'flattened') flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

/** A value as the schema types it: numbers, booleans and dates from their YAML/string forms. */
function coerce(field: string, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => coerce(field, v));
  const info = lookupField(field);
  if (!info) return value;
  const kind = kindOf(info.type);
  if (kind === 'number' && typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  if (kind === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  if (kind === 'string' && (typeof value === 'number' || typeof value === 'boolean')) return String(value);
  if (kind === 'date' && value instanceof Date) return value.toISOString();
  return value;
}

function setPath(target: Record<string, unknown>, field: string, value: unknown): void {
  const parts = field === '@timestamp' ? [field] : field.split('.');
  let node = target;
  for (const key of parts.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

const CONTROL_KEYS = new Set(['repeat', 'every']);

/** Expand `defaults`, `repeat`, `every`, `{i}` and relative times into nested ECS events. */
export function expandEvents(
  items: unknown[],
  defaults: Record<string, unknown>,
  base: number,
  idPrefix: string,
): GatewatchEvent[] {
  const out: GatewatchEvent[] = [];
  const flatDefaults = flatten(defaults);
  items.forEach((item, n) => {
    if (!isObject(item)) throw new CaseError(`events[${n}]: expected an object`);
    const repeat = item.repeat ?? 1;
    if (typeof repeat !== 'number' || !Number.isInteger(repeat) || repeat < 0 || repeat > 100_000)
      throw new CaseError(`events[${n}].repeat: expected a whole number 0..100000`);
    const every = item.every === undefined ? 0 : parseDuration(String(item.every));
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(item)) if (!CONTROL_KEYS.has(k)) fields[k] = v;
    const template = { ...flatDefaults, ...flatten(fields) };
    for (let i = 0; i < repeat; i++) {
      const flat = substituteDeep(template, i) as Record<string, unknown>;
      const t0 =
        flat['@timestamp'] === undefined
          ? base
          : parseTime(flat['@timestamp'], base, `events[${n}].@timestamp`);
      const event: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(flat)) {
        if (k === '@timestamp' || v === undefined) continue;
        setPath(event, k, coerce(k, v));
      }
      event['@timestamp'] = new Date(t0 + i * every).toISOString();
      if (!isObject(event.event)) event.event = {};
      const ev = event.event as Record<string, unknown>;
      if (ev.id === undefined) ev.id = `${idPrefix}${String(out.length).padStart(6, '0')}`;
      else ev.id = String(ev.id);
      out.push(event as GatewatchEvent);
    }
  });
  return out;
}

function expandLines(items: unknown[]): string[] {
  const out: string[] = [];
  items.forEach((item, n) => {
    if (typeof item === 'string') out.push(item);
    else if (isObject(item) && typeof item.line === 'string') {
      const repeat = item.repeat ?? 1;
      if (typeof repeat !== 'number' || !Number.isInteger(repeat) || repeat < 0 || repeat > 100_000)
        throw new CaseError(`lines[${n}].repeat: expected a whole number 0..100000`);
      for (let i = 0; i < repeat; i++) out.push(substitute(item.line, i));
    } else throw new CaseError(`lines[${n}]: expected a string or {line, repeat}`);
  });
  return out;
}

function parseExpect(raw: unknown, base: number): ExpectedIncident[] {
  if (raw === undefined) throw new CaseError('missing `expect` (use `expect: []` for "must not fire")');
  if (!Array.isArray(raw)) throw new CaseError('`expect` must be a list of incidents');
  return raw.map((x, n) => {
    const at = `expect[${n}]`;
    if (!isObject(x)) throw new CaseError(`${at}: expected an object`);
    const known = new Set(['group', 'window', 'event_count', 'occurrences', 'metrics', 'title', 'summary']);
    for (const k of Object.keys(x))
      if (!known.has(k)) throw new CaseError(`${at}: unknown property \`${k}\``);
    const group: Record<string, Scalar> = {};
    if (x.group !== undefined) {
      if (!isObject(x.group)) throw new CaseError(`${at}.group: expected {field: value}`);
      for (const [k, v] of Object.entries(flatten(x.group))) {
        if (v !== null && typeof v === 'object') throw new CaseError(`${at}.group.${k}: expected a scalar`);
        group[k] = v as Scalar;
      }
    }
    const e: ExpectedIncident = { group };
    if (x.window !== undefined) {
      if (!isObject(x.window)) throw new CaseError(`${at}.window: expected {start, end}`);
      e.window = {
        start: parseTime(x.window.start, base, `${at}.window.start`),
        end: parseTime(x.window.end, base, `${at}.window.end`),
      };
    }
    for (const k of ['event_count', 'occurrences'] as const) {
      if (x[k] === undefined) continue;
      if (typeof x[k] !== 'number') throw new CaseError(`${at}.${k}: expected a number`);
      e[k] = x[k];
    }
    if (x.metrics !== undefined) {
      if (!isObject(x.metrics)) throw new CaseError(`${at}.metrics: expected {name: number}`);
      const metrics: Record<string, number | null> = {};
      // metric names may contain dots (`failures.count`): keep the keys as written
      for (const [k, v] of Object.entries(flattenMetricKeys(x.metrics))) {
        if (v !== null && typeof v !== 'number') throw new CaseError(`${at}.metrics.${k}: expected a number`);
        metrics[k] = v;
      }
      e.metrics = metrics;
    }
    for (const k of ['title', 'summary'] as const) {
      if (x[k] === undefined) continue;
      if (typeof x[k] !== 'string') throw new CaseError(`${at}.${k}: expected a string`);
      e[k] = x[k];
    }
    return e;
  });
}

function flattenMetricKeys(m: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}) {
  for (const [k, v] of Object.entries(m)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isObject(v)) flattenMetricKeys(v, key, out);
    else out[key] = v;
  }
  return out;
}

const CASE_KEYS = new Set([
  'name',
  'rule',
  'description',
  'at',
  'defaults',
  'events',
  'lines',
  'range',
  'expect',
]);

function buildCase(
  raw: unknown,
  file: string,
  index: number,
  shared: { rule?: unknown; at?: unknown; defaults?: unknown; range?: unknown },
): RuleTestCase {
  const c: RuleTestCase = {
    name: `case ${index + 1}`,
    rule: typeof shared.rule === 'string' ? shared.rule : '',
    file,
    index,
    events: [],
    at: Date.parse(DEFAULT_BASE_TIME),
    expect: [],
    diagnostics: [],
  };
  try {
    if (!isObject(raw)) throw new CaseError('a test case must be an object');
    if (typeof raw.name === 'string') c.name = raw.name;
    else throw new CaseError('missing `name`');
    for (const k of Object.keys(raw)) if (!CASE_KEYS.has(k)) throw new CaseError(`unknown property \`${k}\``);
    const rule = raw.rule ?? shared.rule;
    if (typeof rule !== 'string' || rule === '') throw new CaseError('missing `rule` (the rule id)');
    c.rule = rule;
    const at = raw.at ?? shared.at;
    if (at !== undefined) c.at = parseTime(at, c.at, 'at');
    const defaults = { ...(isObject(shared.defaults) ? flatten(shared.defaults) : {}) };
    if (raw.defaults !== undefined) {
      if (!isObject(raw.defaults)) throw new CaseError('`defaults` must be an object of event fields');
      Object.assign(defaults, flatten(raw.defaults));
    }
    if ((raw.events === undefined) === (raw.lines === undefined))
      throw new CaseError('give exactly one of `events` or `lines`');
    if (raw.events !== undefined) {
      if (!Array.isArray(raw.events)) throw new CaseError('`events` must be a list');
      c.events = expandEvents(raw.events, defaults, c.at, `t${index}-`);
    } else {
      const l = raw.lines;
      const spec = Array.isArray(l) ? { lines: l } : l;
      if (!isObject(spec) || !Array.isArray(spec.lines))
        throw new CaseError('`lines` must be a list of strings or {format?, source?, lines: [...]}');
      if (spec.format !== undefined && typeof spec.format !== 'string')
        throw new CaseError('`lines.format` must be a format id such as "nginx.access"');
      c.lines = {
        ...(typeof spec.format === 'string' ? { format: spec.format } : {}),
        source: typeof spec.source === 'string' ? spec.source : 'rule-test',
        lines: expandLines(spec.lines),
      };
    }
    const range = raw.range ?? shared.range;
    if (range !== undefined) {
      if (!isObject(range)) throw new CaseError('`range` must be {start, end}');
      c.range = {
        start: parseTime(range.start, c.at, 'range.start'),
        end: parseTime(range.end, c.at, 'range.end'),
      };
      if (!(c.range.start <= c.range.end)) throw new CaseError('`range.start` is after `range.end`');
    }
    c.expect = parseExpect(raw.expect, c.at);
  } catch (e) {
    if (!(e instanceof CaseError)) throw e;
    c.diagnostics.push(`${file}: ${c.name}: ${e.message}`);
  }
  return c;
}

/** The cases of one test file's text (YAML or JSON). */
export function parseRuleTests(text: string, file: string): RuleTestCase[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    return [brokenFile(file, `not valid YAML/JSON: ${(e as Error).message}`)];
  }
  // A list of cases; one case; or {rule?, at?, defaults?, cases: [...]}.
  let shared: { rule?: unknown; at?: unknown; defaults?: unknown; range?: unknown } = {};
  let list: unknown[];
  if (Array.isArray(doc)) list = doc;
  else if (isObject(doc) && Array.isArray(doc.cases)) {
    for (const k of Object.keys(doc))
      if (!['rule', 'description', 'at', 'defaults', 'range', 'cases'].includes(k))
        return [
          brokenFile(
            file,
            `unknown top-level property \`${k}\` (expected rule, description, at, defaults, range, cases)`,
          ),
        ];
    shared = { rule: doc.rule, at: doc.at, defaults: doc.defaults, range: doc.range };
    list = doc.cases;
  } else if (isObject(doc) && 'name' in doc) list = [doc];
  else return [brokenFile(file, 'expected a list of cases, one case, or {rule, defaults, cases: [...]}')];
  if (list.length === 0) return [brokenFile(file, 'no test cases')];
  return list.map((raw, i) => buildCase(raw, file, i, shared));
}

function brokenFile(file: string, message: string): RuleTestCase {
  return {
    name: basename(file),
    rule: '',
    file,
    index: 0,
    events: [],
    at: Date.parse(DEFAULT_BASE_TIME),
    expect: [],
    diagnostics: [`${file}: ${message}`],
  };
}

const isTestFile = (name: string) =>
  TEST_FILE_EXTENSIONS.includes(extname(name).toLowerCase()) && !/^readme/i.test(name);

/**
 * Test files under the given paths: a test file itself, or a directory whose `tests/`
 * sub-directories (next to rule files, at any depth) hold `*.yaml`, `*.yml` or `*.json` files.
 * A directory named `tests` is read directly.
 */
export function findRuleTestFiles(paths: string[]): { files: string[]; missing: string[] } {
  const files: string[] = [];
  const missing: string[] = [];
  const readTests = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (statSync(full).isFile() && isTestFile(name)) files.push(full);
    }
  };
  const walk = (dir: string) => {
    if (basename(dir) === 'tests') {
      readTests(dir);
      return;
    }
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (name === 'node_modules' || name.startsWith('.')) continue;
      if (statSync(full).isDirectory()) walk(full);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) missing.push(p);
    else if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.gwr')) {
      const dir = join(p, '..', 'tests');
      if (existsSync(dir)) readTests(dir);
    } else files.push(p);
  }
  return { files: [...new Set(files)], missing };
}

/** Load every case from test files or directories (see findRuleTestFiles). */
export function loadRuleTests(paths: string[]): RuleTestCase[] {
  const { files, missing } = findRuleTestFiles(paths);
  const cases: RuleTestCase[] = missing.map((p) => brokenFile(p, 'no such file or directory'));
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      cases.push(brokenFile(file, (e as Error).message));
      continue;
    }
    cases.push(...parseRuleTests(text, file));
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Running

export interface RunOptions {
  /** Normaliser for `lines` cases (default: the default configuration, no GeoIP databases). */
  normalizer?: Normalizer;
  /** Incident creation time (does not affect results). */
  now?: number;
}

let defaultNormalizer: Normalizer | undefined;

function eventsOf(c: RuleTestCase, opts: RunOptions, diagnostics: string[]): GatewatchEvent[] {
  if (!c.lines) return c.events;
  // A fixed key of its own: rule tests group by fingerprints, never compare them with a deployment's.
  defaultNormalizer ??= createNormalizer(
    loadConfig({
      env: {},
      overrides: { ingest: { fingerprintSecret: 'gatewatch-rule-tests-fingerprints' } },
    }),
  );
  const normalize = opts.normalizer ?? defaultNormalizer;
  const batch = {
    source: c.lines.source,
    ...(c.lines.format ? { format: c.lines.format } : {}),
    receivedAt: c.at,
    records: [],
  };
  const out: GatewatchEvent[] = [];
  c.lines.lines.forEach((line, n) => {
    const r = normalize(line, batch);
    if (!r.ok) diagnostics.push(`lines[${n}] was rejected by the normalizer: ${r.reason}`);
    else {
      out.push(...r.events);
      for (const f of r.failures) diagnostics.push(`lines[${n}]: a record was rejected: ${f.reason}`);
    }
  });
  return out;
}

function actualOf(i: Incident): ActualIncident {
  return {
    group: i.group as Record<string, Scalar>,
    window: { start: Date.parse(i.window.start), end: Date.parse(i.window.end) },
    event_count: i.event_count,
    occurrences: i.occurrences,
    metrics: i.metrics as Record<string, number>,
    title: i.title,
    summary: i.summary,
  };
}

function sameScalar(field: string, expected: Scalar, actual: unknown): boolean {
  if (expected === actual) return true;
  if (expected === null || actual === null || actual === undefined) return false;
  const info = lookupField(field);
  if (info && kindOf(info.type) === 'ip') {
    const a = canonicalIp(String(actual));
    return a !== null && a === canonicalIp(String(expected));
  }
  return String(expected) === String(actual);
}

/** Expected metric values may be rounded: `0.933` matches 0.93333 (rounded to the digits given). */
export function sameMetric(expected: number | null, actual: number | undefined): boolean {
  if (expected === null) return actual === undefined || actual === null;
  if (actual === undefined || actual === null) return false;
  if (Math.abs(expected - actual) <= 1e-9 * Math.max(1, Math.abs(expected))) return true;
  const decimals = (String(expected).split('.')[1] ?? '').length;
  if (decimals === 0 || /e/i.test(String(expected))) return false;
  return Number(actual.toFixed(decimals)) === expected;
}

const groupMatches = (e: ExpectedIncident, a: ActualIncident) =>
  Object.entries(e.group).every(([k, v]) => sameScalar(k, v, a.group[k]));

function fieldDiffs(
  e: ExpectedIncident,
  a: ActualIncident,
): { field: string; expected: unknown; actual: unknown }[] {
  const out: { field: string; expected: unknown; actual: unknown }[] = [];
  for (const [k, v] of Object.entries(e.group))
    if (!sameScalar(k, v, a.group[k])) out.push({ field: `group.${k}`, expected: v, actual: a.group[k] });
  if (e.window) {
    if (e.window.start !== a.window.start)
      out.push({ field: 'window.start', expected: iso(e.window.start), actual: iso(a.window.start) });
    if (e.window.end !== a.window.end)
      out.push({ field: 'window.end', expected: iso(e.window.end), actual: iso(a.window.end) });
  }
  for (const k of ['event_count', 'occurrences'] as const) {
    const want = e[k];
    if (want !== undefined && want !== a[k]) out.push({ field: k, expected: want, actual: a[k] });
  }
  for (const [k, v] of Object.entries(e.metrics ?? {}))
    if (!sameMetric(v, a.metrics[k])) out.push({ field: `metrics.${k}`, expected: v, actual: a.metrics[k] });
  for (const k of ['title', 'summary'] as const) {
    const want = e[k];
    if (want !== undefined && want !== a[k]) out.push({ field: k, expected: want, actual: a[k] });
  }
  return out;
}

/**
 * Pair expected with actual incidents: first exact matches, then the remaining ones with the
 * same group (reported field by field); what is left is missing or unexpected.
 */
export function diffIncidents(expected: ExpectedIncident[], actual: ActualIncident[]): DiffEntry[] {
  const used = new Set<number>();
  const pending: ExpectedIncident[] = [];
  for (const e of expected) {
    const k = actual.findIndex((a, j) => !used.has(j) && fieldDiffs(e, a).length === 0);
    if (k >= 0) used.add(k);
    else pending.push(e);
  }
  const diff: DiffEntry[] = [];
  for (const e of pending) {
    // the closest incident of the same group: fewest differing fields
    let best = -1;
    let bestFields: ReturnType<typeof fieldDiffs> = [];
    actual.forEach((a, j) => {
      if (used.has(j) || !groupMatches(e, a)) return;
      const f = fieldDiffs(e, a);
      if (best < 0 || f.length < bestFields.length) {
        best = j;
        bestFields = f;
      }
    });
    if (best >= 0) {
      used.add(best);
      diff.push({ kind: 'different', expected: e, actual: actual[best]!, fields: bestFields });
    } else diff.push({ kind: 'missing', expected: e });
  }
  actual.forEach((a, j) => {
    if (!used.has(j)) diff.push({ kind: 'unexpected', actual: a });
  });
  return diff;
}

function timeBounds(events: GatewatchEvent[]): { min: number; max: number } | undefined {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    const t = Date.parse(e['@timestamp']);
    if (Number.isNaN(t)) continue;
    if (t < min) min = t;
    if (t > max) max = t;
  }
  return min <= max ? { min, max } : undefined;
}

/** Run one case against a rule, the way `gatewatch replay` evaluates and writes incidents. */
export async function runRuleTest(rule: RuleIR | undefined, c: RuleTestCase, opts: RunOptions = {}) {
  const result: RuleTestResult = {
    name: c.name,
    rule: c.rule,
    file: c.file,
    passed: false,
    expected: c.expect,
    actual: [],
    diff: [],
    diagnostics: [...c.diagnostics],
    events: 0,
  };
  if (result.diagnostics.length > 0) return result;
  if (!rule) {
    result.diagnostics.push(`unknown rule \`${c.rule}\` (not among the loaded rules)`);
    return result;
  }
  const events = eventsOf(c, opts, result.diagnostics);
  result.events = events.length;
  const bounds = timeBounds(events);
  const range = c.range ?? (bounds ? replayRange(rule, bounds) : { start: c.at, end: c.at });
  result.range = range;
  const sorted = [...events].sort((a, b) => a['@timestamp'].localeCompare(b['@timestamp']));
  const evaluation = evaluateRule(rule, sorted, range);
  if (evaluation.degraded) result.degraded = evaluation.degraded.reason;
  const now = opts.now ?? range.end;
  const store = new EmbeddedStore(':memory:');
  try {
    await writeIncidents(
      store.incidentStore(),
      evaluation.detections.map((d) => toIncident(d, rule, now)),
      rule.output.suppress ? { suppression: { periodMs: rule.output.suppress.periodMs } } : {},
    );
    result.actual = store
      .incidents()
      .map(actualOf)
      .sort((a, b) => a.window.start - b.window.start || stable(a.group).localeCompare(stable(b.group)));
  } finally {
    store.db.close();
  }
  result.diff = diffIncidents(c.expect, result.actual);
  result.passed = result.diff.length === 0 && result.diagnostics.length === 0;
  return result;
}

/** Run cases against rules (by id); cases for unknown rules fail. */
export async function runRuleTests(
  rules: RuleIR[],
  cases: RuleTestCase[],
  opts: RunOptions = {},
): Promise<RuleTestResult[]> {
  const byId = new Map(rules.map((r) => [r.id, r]));
  const out: RuleTestResult[] = [];
  for (const c of cases) out.push(await runRuleTest(byId.get(c.rule), c, opts));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reporting

const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));
const stable = (v: unknown) => JSON.stringify(v);

function show(v: unknown): string {
  if (v === undefined) return '(none)';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function groupText(g: Record<string, unknown>): string {
  const parts = Object.entries(g).map(([k, v]) => `${k}=${show(v)}`);
  return parts.length > 0 ? parts.join(', ') : '(no group)';
}

function describeExpected(e: ExpectedIncident): string[] {
  const out = [`group ${groupText(e.group)}`];
  if (e.window) out.push(`window [${iso(e.window.start)}, ${iso(e.window.end)})`);
  if (e.event_count !== undefined) out.push(`event_count ${e.event_count}`);
  if (e.occurrences !== undefined) out.push(`occurrences ${e.occurrences}`);
  if (e.metrics) out.push(`metrics ${metricsText(e.metrics)}`);
  if (e.title !== undefined) out.push(`title ${show(e.title)}`);
  return out;
}

function describeActual(a: ActualIncident): string[] {
  return [
    `group ${groupText(a.group)}`,
    `window [${iso(a.window.start)}, ${iso(a.window.end)})`,
    `event_count ${a.event_count}, occurrences ${a.occurrences}`,
    `metrics ${metricsText(a.metrics)}`,
    `title ${show(a.title)}`,
  ];
}

function metricsText(m: Record<string, unknown>): string {
  const parts = Object.entries(m).map(([k, v]) => `${k}=${typeof v === 'number' ? round(v) : show(v)}`);
  return parts.length > 0 ? parts.join(', ') : '(none)';
}

const round = (n: number) => String(Number(n.toFixed(4)));

/** One block per case (failures with a diff), then `N passed, M failed` on its own line. */
export function formatRuleTestReport(results: RuleTestResult[], opts: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  for (const r of results) {
    const label = `${r.rule || '(no rule)'} > ${r.name}`;
    if (r.passed) {
      const fired = r.actual.length === 0 ? 'no incident' : `${r.actual.length} incident(s)`;
      lines.push(`ok   ${label} (${fired})`);
      if (opts.verbose) for (const a of r.actual) lines.push(`       ${describeActual(a).join('; ')}`);
      continue;
    }
    lines.push(`FAIL ${label}`);
    lines.push(`     ${r.file}`);
    for (const d of r.diagnostics) lines.push(`     ! ${d}`);
    if (r.range)
      lines.push(
        `     ${r.events} event(s), range [${iso(r.range.start)}, ${iso(r.range.end)}): expected ${r.expected.length} incident(s), got ${r.actual.length}`,
      );
    if (r.degraded) lines.push(`     ! evaluation degraded: ${r.degraded}`);
    for (const d of r.diff) {
      if (d.kind === 'missing') {
        lines.push(`     - missing incident: ${describeExpected(d.expected)[0]}`);
        for (const x of describeExpected(d.expected).slice(1)) lines.push(`         expected ${x}`);
      } else if (d.kind === 'unexpected') {
        lines.push(`     + unexpected incident: ${describeActual(d.actual)[0]}`);
        for (const x of describeActual(d.actual).slice(1)) lines.push(`         ${x}`);
      } else {
        lines.push(`     ~ incident ${groupText(d.actual.group)} differs:`);
        for (const f of d.fields)
          lines.push(`         ${f.field}: expected ${show(f.expected)}, actual ${show(f.actual)}`);
      }
    }
  }
  const passed = results.filter((r) => r.passed).length;
  lines.push('');
  lines.push(`${passed} passed, ${results.length - passed} failed`);
  return `${lines.join('\n')}\n`;
}
