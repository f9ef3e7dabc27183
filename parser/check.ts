/**
 * Semantic checks against the event schema and the declarations in scope: field names and
 * types, list and macro references, regex and CIDR validity, window/schedule consistency,
 * templates, duplicates. Every problem becomes a Diagnostic; checking never stops at the first.
 */
import ipaddr from 'ipaddr.js';
import { RE2JS } from 're2js';
import { FIELDS, type FieldInfo, type FieldKind, kindOf, lookupField } from '../core/schema/catalogue.ts';
import type * as A from './ast.ts';
import { type Diagnostic, type SourceText, suggest } from './diagnostics.ts';
import { formatDuration } from './lexer.ts';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export { ENTITY_ROLES } from '../core/schema/entity-roles.ts';

import { ENTITY_ROLES } from '../core/schema/entity-roles.ts';
export const METRIC_FUNCTIONS = [
  'count',
  'distinct_count',
  'sum',
  'avg',
  'min',
  'max',
  'percentile',
  'ratio',
];
export const DEFAULT_RISK: Record<string, number> = { low: 21, medium: 47, high: 73, critical: 99 };
export const DEFAULT_INTERVAL_MS = 300_000;
export const DEFAULT_LATENESS_MS = 60_000;
export const DEFAULT_EVIDENCE = 10;
export const MAX_EVIDENCE = 1000;
export const MAX_REPEAT = 1000;

const OWASP = /^API([1-9]|10):2023$/;
const MITRE = /^T\d{4}(\.\d{3})?$/;

export interface MacroEntry {
  decl: A.MacroDecl;
  src: SourceText;
}
export interface ListEntry {
  decl: A.ListDecl;
  src: SourceText;
  /** Values as loaded: literals inline, strings (one per line) from files. */
  values: { value: A.LiteralValue; where: string }[];
  /** Where the values came from, for messages. */
  origin: string;
}

/** Declarations visible to a file: its own plus everything its includes declare. */
export interface Scope {
  macros: Map<string, MacroEntry>;
  lists: Map<string, ListEntry>;
}

export type RuleKindName = 'filter' | 'threshold' | 'sequence' | 'first_seen' | 'baseline';

export function ruleKind(rule: A.RuleDecl): RuleKindName {
  for (const c of rule.clauses) {
    if (c.kind === 'threshold' || c.kind === 'sequence' || c.kind === 'first_seen' || c.kind === 'baseline')
      return c.kind;
  }
  return 'filter';
}

export function fieldKind(info: FieldInfo): FieldKind {
  return kindOf(info.type);
}

/** Values of a list or inline source converted for a field kind; undefined entries are invalid. */
export function convertValue(v: A.LiteralValue, kind: FieldKind): A.LiteralValue | undefined {
  switch (kind) {
    case 'number':
      if (typeof v === 'number') return v;
      if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v.trim());
      return undefined;
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === 'false') return v === 'true';
      return undefined;
    case 'ip':
      return typeof v === 'string' && ipaddr.isValid(v) ? ipaddr.parse(v).toString() : undefined;
    case 'date':
      return typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? v : undefined;
    case 'string':
      return typeof v === 'string' ? v : undefined;
    default:
      return undefined;
  }
}

/** Inline literals must have the field's type exactly (no quoted numbers). */
export function literalFits(v: A.LiteralValue, kind: FieldKind): boolean {
  switch (kind) {
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'ip':
    case 'date':
      return typeof v === 'string' && convertValue(v, kind) !== undefined;
    default:
      return false;
  }
}

/** A CIDR or bare address in canonical `addr/len` form, or undefined. */
export function canonicalCidr(v: A.LiteralValue): string | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    if (v.includes('/')) {
      if (!ipaddr.isValidCIDR(v)) return undefined;
      const [addr, len] = ipaddr.parseCIDR(v);
      return `${addr.toString()}/${len}`;
    }
    if (!ipaddr.isValid(v)) return undefined;
    const addr = ipaddr.parse(v);
    return `${addr.toString()}/${addr.kind() === 'ipv4' ? 32 : 128}`;
  } catch {
    return undefined;
  }
}

/** RE2 source with flags folded in, or the re2js error message. */
export function regexSource(pattern: string, flags: string): { source: string } | { error: string } {
  const unescaped = pattern.replace(/\\\//g, '/');
  const bad = [...flags].filter((f) => !'ims'.includes(f));
  if (bad.length > 0) return { error: `unknown regex flag \`${bad[0]}\` (supported: i, m, s)` };
  const uniq = [...new Set(flags)].sort().join('');
  const source = uniq ? `(?${uniq})${unescaped}` : unescaped;
  try {
    RE2JS.compile(source);
    return { source };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** Split a template into parts; `{{` and `}}` are literal braces. */
export function parseTemplate(text: string): {
  parts: ({ text: string } | { ref: string })[];
  error?: string;
} {
  const parts: ({ text: string } | { ref: string })[] = [];
  let buf = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '{' && text[i + 1] === '{') {
      buf += '{';
      i++;
    } else if (ch === '}' && text[i + 1] === '}') {
      buf += '}';
      i++;
    } else if (ch === '{') {
      const end = text.indexOf('}', i);
      if (end < 0) return { parts, error: 'unclosed `{` in template (write `{{` for a literal brace)' };
      const ref = text.slice(i + 1, end).trim();
      if (!/^@?[A-Za-z_][A-Za-z0-9_.-]*$/.test(ref))
        return { parts, error: `invalid placeholder \`{${ref}}\`` };
      if (buf) parts.push({ text: buf });
      buf = '';
      parts.push({ ref });
      i = end;
    } else if (ch === '}') {
      return { parts, error: 'unmatched `}` in template (write `}}` for a literal brace)' };
    } else buf += ch;
  }
  if (buf) parts.push({ text: buf });
  return { parts };
}

const NUMBERISH = new Set(['count', 'distinct_count', 'sum', 'avg', 'min', 'max', 'percentile', 'ratio']);

interface RuleContext {
  kind: RuleKindName;
  /** Keys of the rule's groups (group by / by / values), for templates, entities, suppression. */
  keys: string[];
  metrics: Set<string>;
  steps: string[];
}

export class Checker {
  readonly diags: Diagnostic[] = [];
  private readonly scope: Scope;
  private src: SourceText;

  constructor(scope: Scope, src: SourceText) {
    this.scope = scope;
    this.src = src;
  }

  private err(pos: A.Pos, code: string, message: string, hint?: string): void {
    this.diags.push(this.src.diag(pos, code, message, hint));
  }
  private warn(pos: A.Pos, code: string, message: string, hint?: string): void {
    this.diags.push(this.src.diag(pos, code, message, hint, 'warning'));
  }

  // ---- fields -------------------------------------------------------------------------

  field(n: A.Name, use: string): FieldInfo | undefined {
    const info = lookupField(n.name);
    if (!info) {
      const s = suggest(n.name, FIELDS.keys());
      this.err(
        n.pos,
        'unknown-field',
        `unknown field \`${n.name}\``,
        s ? `did you mean \`${s}\`?` : 'see core/schema/event.ts for the event fields',
      );
      return undefined;
    }
    if (!info.indexed && use !== 'evidence' && use !== 'template') {
      this.err(
        n.pos,
        'field-not-indexed',
        `field \`${n.name}\` is not indexed and cannot be used in ${use}`,
        'it is kept as evidence only; use it in `evidence ... fields` or a template',
      );
      return undefined;
    }
    return info;
  }

  private keyField(n: A.Name, use: string): FieldInfo | undefined {
    const info = this.field(n, use);
    if (!info) return undefined;
    const k = fieldKind(info);
    if (info.type === 'match_only_text' || k === 'geo' || k === 'object' || k === 'date') {
      this.err(
        n.pos,
        'type-mismatch',
        `field \`${n.name}\` (${info.type}) cannot be used in ${use}`,
        'keys must be keyword, number, ip or boolean fields',
      );
      return undefined;
    }
    if (info.array) {
      this.err(
        n.pos,
        'multi-valued-key',
        `field \`${n.name}\` is multi-valued and cannot be used in ${use}`,
        'an event would belong to several groups; choose a single-valued field',
      );
      return undefined;
    }
    return info;
  }

  private fieldList(fields: A.Name[], use: string, key: boolean): void {
    const seen = new Set<string>();
    for (const f of fields) {
      if (seen.has(f.name)) this.err(f.pos, 'duplicate', `field \`${f.name}\` is listed twice`);
      seen.add(f.name);
      if (key) this.keyField(f, use);
      else this.field(f, use);
    }
  }

  // ---- filters ------------------------------------------------------------------------

  filter(f: A.Filter): void {
    switch (f.type) {
      case 'and':
      case 'or':
        for (const a of f.args) this.filter(a);
        return;
      case 'not':
        this.filter(f.arg);
        return;
      case 'true':
        return;
      case 'ref': {
        if (this.scope.macros.has(f.name.name)) return;
        const info = lookupField(f.name.name);
        if (info) {
          this.err(
            f.pos,
            'bare-field',
            `field \`${f.name.name}\` is used without a condition`,
            `write a comparison, e.g. \`${f.name.name} exists\``,
          );
          return;
        }
        const s = suggest(f.name.name, [...this.scope.macros.keys(), ...FIELDS.keys()]);
        this.err(
          f.pos,
          'unknown-macro',
          `unknown macro \`${f.name.name}\``,
          s
            ? `did you mean \`${s}\`?`
            : 'declare it with `macro name = <filter>` or include the file that does',
        );
        return;
      }
      case 'exists':
        this.field(f.field, 'a filter');
        return;
      case 'cmp': {
        const info = this.field(f.field, 'a filter');
        if (!info) return;
        const k = fieldKind(info);
        const ordering = f.op !== '==' && f.op !== '!=';
        if (ordering && k !== 'number' && k !== 'date') {
          this.err(
            f.pos,
            'type-mismatch',
            `\`${f.op}\` needs a number or date field; \`${f.field.name}\` is ${describeKind(k)}`,
            k === 'ip'
              ? `use \`${f.field.name} cidr "10.0.0.0/8"\` for address ranges`
              : 'use `==`, `in`, `like` or `startswith`',
          );
          return;
        }
        this.literalFor(f.value, info, f.field.name);
        return;
      }
      case 'in': {
        const info = this.field(f.field, 'a filter');
        if (!info) return;
        this.valuesFor(f.source, info, f.field.name, 'in');
        return;
      }
      case 'like':
      case 'contains':
      case 'startswith':
      case 'endswith': {
        const info = this.field(f.field, 'a filter');
        if (!info) return;
        const k = fieldKind(info);
        if (k !== 'string') {
          this.err(
            f.pos,
            'type-mismatch',
            `\`${f.type}\` needs a string field; \`${f.field.name}\` is ${describeKind(k)}`,
            k === 'ip'
              ? `use \`${f.field.name} cidr "10.0.0.0/8"\``
              : k === 'number'
                ? 'use `==`, `in`, `<` or `>`'
                : undefined,
          );
          return;
        }
        this.valuesFor(f.source, info, f.field.name, f.type);
        return;
      }
      case 'matches': {
        const info = this.field(f.field, 'a filter');
        if (!info) return;
        const k = fieldKind(info);
        if (k !== 'string') {
          this.err(
            f.pos,
            'type-mismatch',
            `\`matches\` needs a string field; \`${f.field.name}\` is ${describeKind(k)}`,
          );
          return;
        }
        const r = regexSource(f.pattern, f.flags);
        if ('error' in r) {
          this.err(
            f.pos,
            'invalid-regex',
            `invalid or unsupported regular expression: ${r.error}`,
            'regexes use RE2 syntax (linear time): no backreferences, lookahead or lookbehind',
          );
        }
        return;
      }
      case 'cidr': {
        const info = this.field(f.field, 'a filter');
        if (!info) return;
        const k = fieldKind(info);
        if (k !== 'ip') {
          const ipFields = [...FIELDS.values()].filter((x) => x.type === 'ip').map((x) => `\`${x.name}\``);
          this.err(
            f.pos,
            'type-mismatch',
            `\`cidr\` needs an ip field; \`${f.field.name}\` is ${describeKind(k)}`,
            `ip fields: ${ipFields.join(', ')}`,
          );
          return;
        }
        this.cidrs(f.source);
        return;
      }
    }
  }

  private listEntry(n: A.Name): ListEntry | undefined {
    const l = this.scope.lists.get(n.name);
    if (!l) {
      const s = suggest(n.name, this.scope.lists.keys());
      this.err(
        n.pos,
        'unknown-list',
        `unknown list \`${n.name}\``,
        s
          ? `did you mean \`${s}\`?`
          : 'declare it with `list name = file("path")` or `list name = ["a", "b"]`',
      );
    }
    return l;
  }

  private literalFor(v: A.Literal, info: FieldInfo, fieldName: string): void {
    const k = fieldKind(info);
    if (k === 'geo' || k === 'object') {
      this.err(
        v.pos,
        'type-mismatch',
        `field \`${fieldName}\` (${info.type}) can only be tested with \`exists\``,
      );
      return;
    }
    if (!literalFits(v.value, k)) {
      this.err(
        v.pos,
        'type-mismatch',
        `${describeValue(v.value)} does not fit field \`${fieldName}\`, which is ${describeKind(k)}`,
        hintFor(k, v.value, fieldName),
      );
    }
  }

  private valuesFor(src: A.ValueSource, info: FieldInfo, fieldName: string, op: string): void {
    const k = fieldKind(info);
    if (src.kind === 'values') {
      if (src.values.length === 0) this.err(src.pos, 'empty-list', `\`${op}\` needs at least one value`);
      for (const v of src.values) {
        if (op === 'in') this.literalFor(v, info, fieldName);
        else if (typeof v.value !== 'string')
          this.err(v.pos, 'type-mismatch', `\`${op}\` needs string values, not ${describeValue(v.value)}`);
      }
      return;
    }
    const l = this.listEntry(src.name);
    if (!l) return;
    if (l.values.length === 0)
      this.warn(src.pos, 'empty-list', `list \`${src.name.name}\` is empty (${l.origin})`);
    for (const v of l.values) {
      const good = op === 'in' ? convertValue(v.value, k) !== undefined : typeof v.value === 'string';
      if (!good) {
        this.err(
          src.pos,
          'type-mismatch',
          `list \`${src.name.name}\` has ${describeValue(v.value)} (${v.where}), which does not fit field \`${fieldName}\` (${describeKind(k)})`,
        );
        return;
      }
    }
  }

  private cidrs(src: A.ValueSource): void {
    if (src.kind === 'values') {
      if (src.values.length === 0) this.err(src.pos, 'empty-list', '`cidr` needs at least one network');
      for (const v of src.values) {
        if (canonicalCidr(v.value) === undefined)
          this.err(
            v.pos,
            'invalid-cidr',
            `${describeValue(v.value)} is not a CIDR or IP address`,
            'write e.g. "10.0.0.0/8", "2001:db8::/32" or "192.0.2.1"',
          );
      }
      return;
    }
    const l = this.listEntry(src.name);
    if (!l) return;
    for (const v of l.values) {
      if (canonicalCidr(v.value) === undefined) {
        this.err(
          src.pos,
          'invalid-cidr',
          `list \`${src.name.name}\` has ${describeValue(v.value)} (${v.where}), which is not a CIDR or IP address`,
        );
        return;
      }
    }
  }

  // ---- macros ---------------------------------------------------------------------------

  /** Reports cycles among macros; call once per scope. */
  macroCycles(): void {
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string, path: string[]): void => {
      const m = this.scope.macros.get(name);
      if (!m) return;
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'visiting') {
        const saved = this.src;
        this.src = m.src;
        this.err(
          m.decl.name.pos,
          'macro-cycle',
          `macro \`${name}\` refers to itself: ${[...path, name].join(' -> ')}`,
        );
        this.src = saved;
        return;
      }
      state.set(name, 'visiting');
      for (const ref of refsOf(m.decl.filter)) visit(ref, [...path, name]);
      state.set(name, 'done');
    };
    for (const name of this.scope.macros.keys()) visit(name, []);
  }

  // ---- rules ----------------------------------------------------------------------------

  rule(rule: A.RuleDecl): void {
    const seen = new Map<string, A.Clause>();
    const kinds: A.Clause[] = [];
    for (const c of rule.clauses) {
      if (c.kind === 'invalid') {
        this.err(
          c.pos,
          'misplaced-clause',
          `\`${c.key}\` is not a rule clause`,
          c.key === 'summary' ? 'put `summary` inside the `incident { ... }` block' : undefined,
        );
        continue;
      }
      if (seen.has(c.kind))
        this.err(c.pos, 'duplicate-clause', `duplicate \`${c.kind}\` clause in rule \`${rule.id.name}\``);
      seen.set(c.kind, c);
      if (c.kind === 'threshold' || c.kind === 'sequence' || c.kind === 'first_seen' || c.kind === 'baseline')
        kinds.push(c);
    }
    if (kinds.length > 1) {
      this.err(
        kinds[1]!.pos,
        'multiple-kinds',
        `rule \`${rule.id.name}\` has both \`${kinds[0]!.kind}\` and \`${kinds[1]!.kind}\``,
        'a rule is one of: a filter, threshold, sequence, first_seen or baseline rule; split it in two',
      );
    }
    if (!seen.has('title'))
      this.err(
        rule.id.pos,
        'missing-clause',
        `rule \`${rule.id.name}\` has no \`title\``,
        'add `title "..."`',
      );
    if (!seen.has('severity'))
      this.err(
        rule.id.pos,
        'missing-clause',
        `rule \`${rule.id.name}\` has no \`severity\``,
        'add `severity low|medium|high|critical`',
      );

    const kind = ruleKind(rule);
    const ctx: RuleContext = { kind, keys: [], metrics: new Set(), steps: [] };
    let requiredSpan = 0;
    let spanWhat = '';

    for (const c of rule.clauses) {
      switch (c.kind) {
        case 'severity':
          if (!(SEVERITIES as readonly string[]).includes(c.severity.name)) {
            const s = suggest(c.severity.name, SEVERITIES);
            this.err(
              c.severity.pos,
              'invalid-severity',
              `unknown severity \`${c.severity.name}\``,
              s
                ? `did you mean \`${s}\`? (low, medium, high, critical)`
                : 'use low, medium, high or critical',
            );
          }
          break;
        case 'risk':
          if (!Number.isInteger(c.risk.value) || c.risk.value < 0 || c.risk.value > 100)
            this.err(
              c.risk.pos,
              'invalid-risk',
              `risk must be an integer from 0 to 100, not ${c.risk.value}`,
            );
          break;
        case 'tags':
          for (const t of c.tags) this.tag(t);
          break;
        case 'title':
        case 'description':
        case 'owner':
          if (c.text.value.trim() === '') this.err(c.text.pos, 'empty-text', `\`${c.kind}\` is empty`);
          break;
        case 'where':
          this.filter(c.filter);
          if (kind === 'filter' && c.filter.type === 'true')
            this.warn(c.pos, 'match-all', 'this filter rule matches every event');
          break;
        case 'threshold': {
          const r = this.threshold(c.items, ctx, c.pos);
          requiredSpan = r;
          spanWhat = 'window';
          break;
        }
        case 'sequence': {
          requiredSpan = this.sequence(c.items, ctx, c.pos);
          spanWhat = 'sequence span (`within`)';
          break;
        }
        case 'first_seen':
          this.firstSeen(c.items, ctx, c.pos);
          break;
        case 'baseline':
          requiredSpan = this.baseline(c.items, ctx, c.pos);
          spanWhat = 'window';
          break;
        default:
          break;
      }
    }
    if (kind === 'filter' && !seen.has('where'))
      this.err(
        rule.id.pos,
        'missing-clause',
        `filter rule \`${rule.id.name}\` has no \`where\``,
        'add `where <filter>`, or a threshold / sequence / first_seen / baseline block',
      );

    const sched = seen.get('schedule');
    if (sched && sched.kind === 'schedule') this.schedule(sched, requiredSpan, spanWhat);

    const corr = seen.get('correlate');
    if (corr && corr.kind === 'correlate' && (corr.within.ms <= 0 || corr.within.ms > 10 * 60_000))
      this.err(
        corr.within.pos,
        'invalid-correlate',
        'records of one request are at most 10 minutes apart',
        "use e.g. `correlate requests within 2s` (the logs' clocks and write delays, not the attack's span)",
      );

    const inc = seen.get('incident');
    if (inc && inc.kind === 'incident') this.incident(inc.items, ctx);
    // Without an incident title, the rule title is the incident title template.
    const title = seen.get('title');
    const incTitle = inc && inc.kind === 'incident' && inc.items.some((i) => i.kind === 'title');
    if (title && title.kind === 'title' && !incTitle) this.template(title.text, ctx);
  }

  private tag(t: A.Str): void {
    const v = t.value;
    if (/^API\d+:\d{4}$/i.test(v) && !OWASP.test(v)) {
      this.err(
        t.pos,
        'invalid-tag',
        `\`${v}\` is not an OWASP API Security Top 10 (2023) id`,
        'use API1:2023 ... API10:2023',
      );
    } else if (/^t\d/i.test(v) && !MITRE.test(v)) {
      this.err(
        t.pos,
        'invalid-tag',
        `\`${v}\` is not a MITRE ATT&CK technique id`,
        'write e.g. T1110 or T1110.004',
      );
    } else if (v.trim() === '' || /\s/.test(v)) {
      this.err(t.pos, 'invalid-tag', `tag ${JSON.stringify(v)} is empty or has spaces`);
    }
  }

  private schedule(c: Extract<A.Clause, { kind: 'schedule' }>, requiredSpan: number, spanWhat: string): void {
    const seen = new Set<string>();
    let interval = DEFAULT_INTERVAL_MS;
    let lateness = DEFAULT_LATENESS_MS;
    let lookback: A.Dur | undefined;
    for (const e of c.entries) {
      if (seen.has(e.key)) this.err(e.value.pos, 'duplicate-clause', `\`${e.key}\` given twice`);
      seen.add(e.key);
      if (e.key === 'every') {
        interval = e.value.ms;
        if (e.value.ms < 10_000)
          this.err(e.value.pos, 'invalid-schedule', 'rules run at most every 10s', 'use `every 10s` or more');
      } else if (e.key === 'lateness') lateness = e.value.ms;
      else lookback = e.value;
    }
    if (!lookback) return;
    if (lookback.ms <= 0) {
      this.err(lookback.pos, 'invalid-schedule', 'lookback must be positive');
      return;
    }
    if (requiredSpan > 0 && lookback.ms < requiredSpan) {
      this.err(
        lookback.pos,
        'lookback-too-short',
        `lookback ${formatDuration(lookback.ms)} is shorter than the ${spanWhat} ${formatDuration(requiredSpan)}`,
        `use \`lookback ${formatDuration(requiredSpan + interval + lateness)}\` (${spanWhat} + every + lateness), or leave it out to get that default`,
      );
    } else if (lookback.ms < requiredSpan + interval + lateness) {
      this.warn(
        lookback.pos,
        'lookback-short',
        `lookback ${formatDuration(lookback.ms)} is less than ${spanWhat === '' ? 'every + lateness' : `${spanWhat} + every + lateness`} (${formatDuration(requiredSpan + interval + lateness)}); some events will never be evaluated`,
        `use \`lookback ${formatDuration(requiredSpan + interval + lateness)}\``,
      );
    }
  }

  private window(w: A.WindowDecl, tumblingOnly: boolean): void {
    if (w.size.ms <= 0) this.err(w.size.pos, 'invalid-window', 'window size must be positive');
    if (w.mode === 'sliding' && w.slide) {
      if (tumblingOnly) {
        this.err(w.pos, 'invalid-window', 'baseline windows are tumbling; `sliding` is not allowed here');
        return;
      }
      if (w.slide.ms <= 0 || w.slide.ms >= w.size.ms) {
        this.err(
          w.slide.pos,
          'invalid-window',
          `the slide (${formatDuration(w.slide.ms)}) must be positive and shorter than the window (${formatDuration(w.size.ms)})`,
          'for non-overlapping windows write `tumbling`',
        );
      } else if (w.size.ms % w.slide.ms !== 0) {
        this.err(
          w.slide.pos,
          'invalid-window',
          `the window (${formatDuration(w.size.ms)}) must be a whole multiple of the slide (${formatDuration(w.slide.ms)})`,
          `e.g. \`window ${formatDuration(w.size.ms)} sliding every ${formatDuration(largestDivisor(w.size.ms, w.slide.ms))}\``,
        );
      }
    }
  }

  private metric(m: A.MetricDecl, ctx: RuleContext): void {
    if (ctx.metrics.has(m.name.name))
      this.err(m.name.pos, 'duplicate', `metric \`${m.name.name}\` is defined twice`);
    ctx.metrics.add(m.name.name);
    if (lookupField(m.name.name) || m.name.name.includes('.'))
      this.err(
        m.name.pos,
        'invalid-name',
        `metric name \`${m.name.name}\` must be a plain name, not a field`,
      );
    const fn = m.fn.name;
    if (!NUMBERISH.has(fn)) {
      const s = suggest(fn, METRIC_FUNCTIONS);
      this.err(
        m.fn.pos,
        'unknown-function',
        `unknown aggregate \`${fn}\``,
        s
          ? `did you mean \`${s}\`? (${METRIC_FUNCTIONS.join(', ')})`
          : `use one of ${METRIC_FUNCTIONS.join(', ')}`,
      );
      return;
    }
    const args = m.args;
    const arity = (min: number, max: number, shape: string): boolean => {
      if (args.length < min || args.length > max) {
        this.err(m.pos, 'wrong-arguments', `\`${fn}\` takes ${shape}`);
        return false;
      }
      return true;
    };
    const fieldArg = (a: A.MetricArg | undefined): FieldInfo | undefined => {
      if (a?.kind !== 'filter' || a.filter.type !== 'ref') {
        this.err(a?.pos ?? m.pos, 'wrong-arguments', `\`${fn}\` takes a field name here`);
        return undefined;
      }
      return this.field(a.filter.name, `\`${fn}\``);
    };
    const filterArg = (a: A.MetricArg | undefined): void => {
      if (a?.kind !== 'filter') {
        this.err(a?.pos ?? m.pos, 'wrong-arguments', `\`${fn}\` takes a filter here`);
        return;
      }
      this.filter(a.filter);
    };
    switch (fn) {
      case 'count':
        if (arity(0, 1, 'no argument or a filter: `count()`, `count(login_failure)`') && args[0])
          filterArg(args[0]);
        return;
      case 'ratio':
        if (arity(1, 2, 'one or two filters: `ratio(failure)` or `ratio(failure, attempt)`')) {
          filterArg(args[0]);
          if (args[1]) filterArg(args[1]);
        }
        return;
      case 'distinct_count': {
        if (!arity(1, 1, 'one field: `distinct_count(user.name)`')) return;
        const info = fieldArg(args[0]);
        if (!info) return;
        const k = fieldKind(info);
        if (info.type === 'match_only_text' || k === 'geo' || k === 'object' || k === 'date') {
          const a = args[0]!;
          this.err(
            a.pos,
            'type-mismatch',
            `distinct count on a ${info.type === 'match_only_text' ? 'text' : info.type} field (\`${info.name}\`) is not supported`,
            'count distinct values of a keyword, number, ip or boolean field',
          );
        }
        return;
      }
      case 'percentile': {
        if (!arity(2, 2, 'a field and a percentage: `percentile(http.response.bytes, 95)`')) return;
        const info = fieldArg(args[0]);
        if (info && fieldKind(info) !== 'number')
          this.err(
            args[0]!.pos,
            'type-mismatch',
            `\`percentile\` needs a number field; \`${info.name}\` is ${describeKind(fieldKind(info))}`,
          );
        const p = args[1]!;
        if (p.kind !== 'number' || p.value <= 0 || p.value > 100)
          this.err(p.pos, 'wrong-arguments', 'the percentage must be a number in (0, 100]');
        return;
      }
      default: {
        if (!arity(1, 1, `one number field: \`${fn}(http.response.bytes)\``)) return;
        const info = fieldArg(args[0]);
        if (info && fieldKind(info) !== 'number')
          this.err(
            args[0]!.pos,
            'type-mismatch',
            `\`${fn}\` needs a number field; \`${info.name}\` is ${describeKind(fieldKind(info))}`,
          );
      }
    }
  }

  private having(h: A.Having, ctx: RuleContext): void {
    switch (h.type) {
      case 'and':
      case 'or':
        for (const a of h.args) this.having(a, ctx);
        return;
      case 'not':
        this.having(h.arg, ctx);
        return;
      case 'cmp':
        this.metricRef(h.metric, ctx);
        return;
      case 'cmp_metric':
        this.metricRef(h.metric, ctx);
        this.metricRef(h.other, ctx);
        return;
    }
  }

  private metricRef(n: A.Name, ctx: RuleContext): void {
    if (ctx.metrics.has(n.name)) return;
    const s = suggest(n.name, ctx.metrics);
    this.err(
      n.pos,
      'unknown-metric',
      `unknown metric \`${n.name}\``,
      s ? `did you mean \`${s}\`?` : `declare it with \`metric ${n.name} = count()\``,
    );
  }

  private threshold(items: A.ThresholdItem[], ctx: RuleContext, pos: A.Pos): number {
    let window: A.WindowDecl | undefined;
    const once = new Set<string>();
    for (const it of items) {
      if (it.kind !== 'metric') {
        if (once.has(it.kind))
          this.err(it.pos, 'duplicate-clause', `duplicate \`${it.kind.replace('_', ' ')}\``);
        once.add(it.kind);
      }
      if (it.kind === 'group_by') {
        this.fieldList(it.fields, '`group by`', true);
        ctx.keys = it.fields.map((f) => f.name);
      } else if (it.kind === 'window') {
        window = it.window;
        this.window(it.window, false);
      } else if (it.kind === 'metric') this.metric(it.metric, ctx);
    }
    for (const it of items) if (it.kind === 'having') this.having(it.having, ctx);
    if (!window)
      this.err(
        pos,
        'missing-clause',
        'threshold has no `window`',
        'add e.g. `window 10m` or `window 10m sliding every 1m`',
      );
    if (ctx.metrics.size === 0)
      this.err(pos, 'missing-clause', 'threshold has no `metric`', 'add e.g. `metric attempts = count()`');
    if (!once.has('having'))
      this.err(
        pos,
        'missing-clause',
        'threshold has no `having` condition',
        'add e.g. `having attempts >= 20`',
      );
    return window?.size.ms ?? 0;
  }

  private sequence(items: A.SequenceItem[], ctx: RuleContext, pos: A.Pos): number {
    let span = 0;
    const once = new Set<string>();
    const steps: A.StepDecl[] = [];
    for (const it of items) {
      if (it.kind !== 'step') {
        if (once.has(it.kind)) this.err(it.pos, 'duplicate-clause', `duplicate \`${it.kind}\``);
        once.add(it.kind);
      }
      if (it.kind === 'by') {
        this.fieldList(it.fields, 'sequence `by`', true);
        ctx.keys = it.fields.map((f) => f.name);
      } else if (it.kind === 'within') {
        span = it.span.ms;
        if (span <= 0) this.err(it.span.pos, 'invalid-window', '`within` must be positive');
      } else if (it.kind === 'until') this.filter(it.filter);
      else {
        const s = it.step;
        if (ctx.steps.includes(s.name.name))
          this.err(s.name.pos, 'duplicate', `step \`${s.name.name}\` is defined twice`);
        ctx.steps.push(s.name.name);
        steps.push(s);
        this.filter(s.filter);
        if (s.repeat) {
          const { min, max } = s.repeat;
          if (s.absent) this.err(min.pos, 'invalid-step', 'an `absent` step cannot repeat');
          if (!Number.isInteger(min.value) || min.value < 1 || min.value > MAX_REPEAT)
            this.err(min.pos, 'invalid-step', `repeat count must be an integer from 1 to ${MAX_REPEAT}`);
          if (max && (!Number.isInteger(max.value) || max.value < min.value || max.value > MAX_REPEAT))
            this.err(
              max.pos,
              'invalid-step',
              `the upper repeat bound must be an integer from ${min.value} to ${MAX_REPEAT}`,
            );
        }
      }
    }
    if (!once.has('by'))
      this.err(pos, 'missing-clause', 'sequence has no `by` join keys', 'add e.g. `by user.name`');
    if (!once.has('within'))
      this.err(pos, 'missing-clause', 'sequence has no `within` span', 'add e.g. `within 10m`');
    const present = steps.filter((s) => !s.absent);
    if (present.length === 0)
      this.err(pos, 'invalid-step', 'a sequence needs at least one step that is not `absent`');
    else if (steps.length < 2)
      this.warn(pos, 'single-step', 'a sequence with one step is a threshold; consider `threshold`');
    if (steps[0]?.absent)
      this.err(
        steps[0].name.pos,
        'invalid-step',
        'a sequence cannot start with an `absent` step',
        'absence is measured after a step that happened',
      );
    for (let i = 1; i < steps.length; i++) {
      if (steps[i]!.absent && steps[i - 1]!.absent)
        this.err(steps[i]!.name.pos, 'invalid-step', 'two `absent` steps in a row; combine them with `or`');
    }
    return span;
  }

  private firstSeen(items: A.FirstSeenItem[], ctx: RuleContext, pos: A.Pos): void {
    const once = new Set<string>();
    let values: string[] = [];
    let by: string[] = [];
    let ignore: A.FirstSeenItem | undefined;
    for (const it of items) {
      if (once.has(it.kind))
        this.err(it.pos, 'duplicate-clause', `duplicate \`${it.kind.replace(/_/g, ' ')}\``);
      once.add(it.kind);
      if (it.kind === 'values') {
        this.fieldList(it.fields, '`values`', true);
        values = it.fields.map((f) => f.name);
      } else if (it.kind === 'by') {
        this.fieldList(it.fields, '`by`', true);
        by = it.fields.map((f) => f.name);
      } else if (it.kind === 'history') {
        if (it.history.ms < 3_600_000)
          this.err(
            it.history.pos,
            'invalid-window',
            'first_seen history must be at least 1h',
            'typical values are 7d to 30d',
          );
      } else ignore = it;
    }
    if (!once.has('values'))
      this.err(pos, 'missing-clause', 'first_seen has no `values`', 'add e.g. `values source.as.number`');
    if (!once.has('history'))
      this.err(pos, 'missing-clause', 'first_seen has no `history`', 'add e.g. `history 30d`');
    if (ignore && by.length === 0) this.err(ignore.pos, 'invalid-step', '`ignore new groups` needs `by`');
    for (const v of values)
      if (by.includes(v)) this.err(pos, 'duplicate', `field \`${v}\` is both in \`values\` and \`by\``);
    ctx.keys = [...by, ...values];
  }

  private baseline(items: A.BaselineItem[], ctx: RuleContext, pos: A.Pos): number {
    let window: A.WindowDecl | undefined;
    let history: A.Dur | undefined;
    let minBuckets: A.Num | undefined;
    const once = new Set<string>();
    let metrics = 0;
    for (const it of items) {
      if (once.has(it.kind))
        this.err(it.pos, 'duplicate-clause', `duplicate \`${it.kind.replace('_', ' ')}\``);
      once.add(it.kind);
      switch (it.kind) {
        case 'group_by':
          this.fieldList(it.fields, '`group by`', true);
          ctx.keys = it.fields.map((f) => f.name);
          break;
        case 'window':
          window = it.window;
          this.window(it.window, true);
          break;
        case 'metric':
          metrics++;
          if (metrics === 1) this.metric(it.metric, ctx);
          else this.err(it.pos, 'duplicate-clause', 'a baseline compares exactly one metric');
          break;
        case 'history':
          history = it.history;
          break;
        case 'spike':
          if (!(it.min.value > 0))
            this.err(it.min.pos, 'invalid-spike', 'the spike threshold must be positive');
          if (it.spike === 'ratio' && it.min.value <= 1)
            this.warn(it.min.pos, 'invalid-spike', 'a ratio of 1 or less is not a spike');
          break;
        case 'min_buckets':
          minBuckets = it.count;
          if (!Number.isInteger(it.count.value) || it.count.value < 1)
            this.err(it.count.pos, 'invalid-spike', '`min_buckets` must be a positive integer');
          break;
        case 'having':
          break;
      }
    }
    if (ctx.metrics.size > 0) ctx.metrics.add('baseline.mean').add('baseline.stddev');
    for (const it of items) if (it.kind === 'having') this.having(it.having, ctx);
    if (!window) this.err(pos, 'missing-clause', 'baseline has no `window`', 'add e.g. `window 10m`');
    if (metrics === 0)
      this.err(pos, 'missing-clause', 'baseline has no `metric`', 'add e.g. `metric errors = count()`');
    if (!history) this.err(pos, 'missing-clause', 'baseline has no `history`', 'add e.g. `history 7d`');
    if (!once.has('spike'))
      this.err(
        pos,
        'missing-clause',
        'baseline has no `spike` condition',
        'add `spike ratio >= 3` or `spike stddev >= 3`',
      );
    if (window && history && window.size.ms > 0) {
      if (history.ms % window.size.ms !== 0 || history.ms < 2 * window.size.ms)
        this.err(
          history.pos,
          'invalid-window',
          `history (${formatDuration(history.ms)}) must be a whole multiple of the window (${formatDuration(window.size.ms)}), at least twice it`,
        );
      else if (minBuckets && minBuckets.value > history.ms / window.size.ms)
        this.err(
          minBuckets.pos,
          'invalid-spike',
          `\`min_buckets\` ${minBuckets.value} exceeds the ${history.ms / window.size.ms} buckets in the history`,
        );
    }
    return window?.size.ms ?? 0;
  }

  private incident(items: A.IncidentItem[], ctx: RuleContext): void {
    const once = new Set<string>();
    const aggregate = ctx.kind === 'threshold' || ctx.kind === 'baseline';
    for (const it of items) {
      if (it.kind === 'invalid') {
        this.err(
          it.pos,
          'misplaced-clause',
          `\`${it.key}\` is not allowed in \`incident\``,
          'incident takes title, summary, entities, suppress and evidence',
        );
        continue;
      }
      if (once.has(it.kind)) this.err(it.pos, 'duplicate-clause', `duplicate \`${it.kind}\` in incident`);
      once.add(it.kind);
      switch (it.kind) {
        case 'title':
        case 'summary':
          this.template(it.text, ctx);
          break;
        case 'entities': {
          const roles = new Set<string>();
          for (const e of it.entities) {
            if (!(ENTITY_ROLES as readonly string[]).includes(e.role.name)) {
              const s = suggest(e.role.name, ENTITY_ROLES);
              this.err(
                e.role.pos,
                'invalid-entity',
                `unknown entity role \`${e.role.name}\``,
                s
                  ? `did you mean \`${s}\`? (${ENTITY_ROLES.join(', ')})`
                  : `roles: ${ENTITY_ROLES.join(', ')}`,
              );
              continue;
            }
            if (roles.has(e.role.name))
              this.err(e.role.pos, 'duplicate', `entity role \`${e.role.name}\` is given twice`);
            roles.add(e.role.name);
            const info = this.field(e.field, 'an entity');
            if (!info) continue;
            if (e.role.name === 'ip' && fieldKind(info) !== 'ip')
              this.err(
                e.field.pos,
                'type-mismatch',
                `entity \`ip\` needs an ip field; \`${e.field.name}\` is ${describeKind(fieldKind(info))}`,
              );
            else if (e.role.name === 'asn' && fieldKind(info) !== 'number')
              this.err(
                e.field.pos,
                'type-mismatch',
                `entity \`asn\` needs a number field such as \`source.as.number\``,
              );
            else this.keyRef(e.field, ctx, 'an entity', aggregate);
          }
          break;
        }
        case 'suppress':
          if (it.period.ms <= 0)
            this.err(it.period.pos, 'invalid-window', 'suppression period must be positive');
          for (const f of it.by ?? [])
            if (this.field(f, '`suppress by`')) this.keyRef(f, ctx, '`suppress by`', ctx.kind !== 'filter');
          break;
        case 'evidence':
          if (!Number.isInteger(it.sample.value) || it.sample.value < 0 || it.sample.value > MAX_EVIDENCE)
            this.err(
              it.sample.pos,
              'invalid-evidence',
              `evidence sample size must be an integer from 0 to ${MAX_EVIDENCE}`,
            );
          for (const f of it.fields ?? []) this.field(f, 'evidence');
          break;
      }
    }
  }

  /** In aggregate rules, per-group values are only defined for the group's key fields. */
  private keyRef(f: A.Name, ctx: RuleContext, use: string, keysOnly: boolean): void {
    if (!keysOnly || ctx.keys.includes(f.name)) return;
    this.err(
      f.pos,
      'not-a-key',
      `${use} field \`${f.name}\` is not a key of this ${ctx.kind} rule`,
      ctx.keys.length > 0
        ? `use one of ${ctx.keys.map((k) => `\`${k}\``).join(', ')}, or add it to the keys`
        : 'the rule has no keys; add `group by` / `by`',
    );
  }

  private template(t: A.Str, ctx: RuleContext): void {
    const r = parseTemplate(t.value);
    if (r.error) {
      this.err(t.pos, 'invalid-template', r.error);
      return;
    }
    for (const p of r.parts) {
      if (!('ref' in p)) continue;
      const kind = classifyRef(p.ref, ctx);
      if (kind) continue;
      const candidates = [...templateNames(ctx)];
      const s = suggest(p.ref, candidates);
      const aggregate = ctx.kind === 'threshold' || ctx.kind === 'baseline';
      this.err(
        t.pos,
        'invalid-template',
        `template placeholder \`{${p.ref}}\` is not defined here`,
        s
          ? `did you mean \`{${s}}\`?`
          : aggregate
            ? 'aggregate rules can show their group keys, metrics and window.start/window.end'
            : 'use an event field or a builtin such as {rule.id}',
      );
    }
  }
}

const BUILTINS_ALL = ['rule.id', 'rule.title', 'rule.severity'];

function templateNames(ctx: RuleContext): string[] {
  const out = [...BUILTINS_ALL, ...ctx.keys, ...ctx.metrics];
  if (ctx.kind === 'threshold' || ctx.kind === 'baseline') out.push('window.start', 'window.end');
  if (ctx.kind === 'sequence') out.push('match.start', 'match.end', ...ctx.steps.map((s) => `${s}.count`));
  if (ctx.kind === 'filter' || ctx.kind === 'sequence' || ctx.kind === 'first_seen')
    out.push(...FIELDS.keys());
  return out;
}

/** How a template placeholder resolves in a rule context, or undefined if it does not. */
export function classifyRef(ref: string, ctx: RuleContext): 'field' | 'metric' | 'builtin' | undefined {
  if (BUILTINS_ALL.includes(ref)) return 'builtin';
  const aggregate = ctx.kind === 'threshold' || ctx.kind === 'baseline';
  if (aggregate && (ref === 'window.start' || ref === 'window.end')) return 'builtin';
  if (ctx.kind === 'sequence' && (ref === 'match.start' || ref === 'match.end')) return 'builtin';
  if (ctx.kind === 'sequence' && ref.endsWith('.count') && ctx.steps.includes(ref.slice(0, -6)))
    return 'builtin';
  if (ctx.metrics.has(ref)) return ref.startsWith('baseline.') ? 'builtin' : 'metric';
  if (ctx.keys.includes(ref)) return 'field';
  if (!aggregate && lookupField(ref)) return 'field';
  return undefined;
}

export function contextOf(rule: A.RuleDecl): RuleContext {
  const kind = ruleKind(rule);
  const ctx: RuleContext = { kind, keys: [], metrics: new Set(), steps: [] };
  for (const c of rule.clauses) {
    if (c.kind === 'threshold' || c.kind === 'baseline') {
      for (const it of c.items) {
        if (it.kind === 'group_by') ctx.keys = it.fields.map((f) => f.name);
        if (it.kind === 'metric') ctx.metrics.add(it.metric.name.name);
      }
      if (c.kind === 'baseline') ctx.metrics.add('baseline.mean').add('baseline.stddev');
    } else if (c.kind === 'sequence') {
      for (const it of c.items) {
        if (it.kind === 'by') ctx.keys = it.fields.map((f) => f.name);
        if (it.kind === 'step') ctx.steps.push(it.step.name.name);
      }
    } else if (c.kind === 'first_seen') {
      const by = c.items.flatMap((it) => (it.kind === 'by' ? it.fields.map((f) => f.name) : []));
      const values = c.items.flatMap((it) => (it.kind === 'values' ? it.fields.map((f) => f.name) : []));
      ctx.keys = [...by, ...values];
    }
  }
  return ctx;
}

export function refsOf(f: A.Filter): string[] {
  switch (f.type) {
    case 'and':
    case 'or':
      return f.args.flatMap(refsOf);
    case 'not':
      return refsOf(f.arg);
    case 'ref':
      return [f.name.name];
    default:
      return [];
  }
}

function describeKind(k: FieldKind): string {
  switch (k) {
    case 'string':
      return 'a string (keyword)';
    case 'number':
      return 'a number';
    case 'ip':
      return 'an ip address';
    case 'date':
      return 'a date';
    case 'boolean':
      return 'a boolean';
    case 'geo':
      return 'a geo point';
    case 'object':
      return 'an object';
  }
}

function describeValue(v: A.LiteralValue): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  return `the boolean ${v}`;
}

function hintFor(k: FieldKind, v: A.LiteralValue, fieldName: string): string | undefined {
  if (k === 'number' && typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return `remove the quotes: ${v}`;
  if (k === 'number' && typeof v === 'string')
    return `\`${fieldName}\` holds numbers: compare it with a number, without quotes (e.g. ${fieldName.endsWith('status_code') ? '404' : '100'})`;
  if (k === 'string' && typeof v === 'number') return `quote it: "${v}"`;
  if (k === 'ip') return 'write an address in quotes, e.g. "192.0.2.1"; for ranges use `cidr`';
  if (k === 'boolean') return 'use true or false';
  if (k === 'date') return 'write an ISO-8601 timestamp in quotes, e.g. "2026-01-01T00:00:00Z"';
  return undefined;
}

function largestDivisor(size: number, slide: number): number {
  for (let s = slide; s > 0; s -= 1000) if (size % s === 0) return s;
  return size;
}
