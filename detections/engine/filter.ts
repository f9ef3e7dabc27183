/**
 * FilterExpr → a closure over one event. Regular expressions are compiled once with re2js,
 * CIDRs parsed once; per-value results of the costly predicates are memoised.
 */
import { RE2JS } from 're2js';
import type { CmpOp, FilterExpr, Scalar } from '../../parser/ir.ts';
import { accessor, canonicalValue, fieldKind, inCidr, ipBytes, parseCidr } from './values.ts';

export type EventPredicate = (event: unknown) => boolean;

const TRUE: EventPredicate = () => true;

function memo(fn: (v: string) => boolean): (v: string) => boolean {
  const cache = new Map<string, boolean>();
  return (v) => {
    let r = cache.get(v);
    if (r === undefined) {
      r = fn(v);
      if (cache.size > 100_000) cache.clear();
      cache.set(v, r);
    }
    return r;
  };
}

/** Any non-missing value satisfies `test`. */
function anyValue(field: string, test: (v: unknown) => boolean): EventPredicate {
  const get = accessor(field);
  return (e) => {
    const raw = get(e);
    if (raw === undefined || raw === null) return false;
    if (Array.isArray(raw)) {
      for (const v of raw) if (v !== null && v !== undefined && test(v)) return true;
      return false;
    }
    return test(raw);
  };
}

function compare(a: number | string, op: CmpOp, b: number | string): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

/** A glob (`*`, `?`, `\` escapes) as an anchored JS regular expression. */
export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      out += escapeRe(pattern[++i]!);
    } else if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else out += escapeRe(c);
  }
  return new RegExp(`^${out}$`, 'u');
}

function escapeRe(c: string): string {
  // Only syntax characters: '-' is special inside a class alone, and escaping it is an error with the u flag.
  return c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

function scalarTest(field: string, op: CmpOp, value: Scalar): (v: unknown) => boolean {
  const kind = fieldKind(field);
  const want = canonicalValue(kind, value);
  if (want === undefined) return () => false;
  // `!=` is handled by the caller as not(==)
  const cmp = op === '!=' ? '==' : op;
  if (kind === 'boolean') {
    return (v) => {
      const c = canonicalValue(kind, v);
      return c !== undefined && (cmp === '==' ? c === want : false);
    };
  }
  return (v) => {
    const c = canonicalValue(kind, v);
    if (c === undefined || typeof c === 'boolean') return false;
    return compare(c, cmp, want as number | string);
  };
}

/**
 * Predicates of the compiled sub-expressions of several rules, shared: an expression that
 * occurs in many rules (macros expand to identical trees) is evaluated once per event. Each
 * shared predicate remembers its answer for the last event it saw, so callers should evaluate
 * all rules on one event before moving on to the next.
 */
export type SharedFilters = Map<string, EventPredicate>;

/** String tests on one field that an `or` can fold into one memoised test per value. */
const STRING_TESTS = new Set(['wildcard', 'contains', 'startswith', 'endswith', 'regex']);

export function compileFilter(expr: FilterExpr, shared?: SharedFilters): EventPredicate {
  if (!shared) return compileNode(expr, undefined);
  const key = JSON.stringify(expr);
  const hit = shared.get(key);
  if (hit) return hit;
  const inner = compileNode(expr, shared);
  let last: unknown;
  let answer = false;
  const pred: EventPredicate =
    inner === TRUE
      ? TRUE
      : (e) => {
          if (e !== last) {
            answer = inner(e);
            last = e;
          }
          return answer;
        };
  shared.set(key, pred);
  return pred;
}

/** The test one string-valued predicate applies to each value (see compileNode). */
function stringTest(expr: FilterExpr): (s: string) => boolean {
  switch (expr.op) {
    case 'wildcard': {
      const ci = expr.caseInsensitive;
      const re = globToRegExp(ci ? expr.pattern.toLowerCase() : expr.pattern);
      return (s) => re.test(ci ? s.toLowerCase() : s);
    }
    case 'contains':
    case 'startswith':
    case 'endswith': {
      const ci = expr.caseInsensitive;
      const needle = ci ? expr.value.toLowerCase() : expr.value;
      const op = expr.op;
      return (v) => {
        const s = ci ? v.toLowerCase() : v;
        return op === 'contains'
          ? s.includes(needle)
          : op === 'startswith'
            ? s.startsWith(needle)
            : s.endsWith(needle);
      };
    }
    case 'regex': {
      const re = RE2JS.compile(expr.pattern);
      return (s) => re.matcher(s).find();
    }
    default:
      throw new Error(`not a string test: ${expr.op}`);
  }
}

function compileNode(expr: FilterExpr, shared: SharedFilters | undefined): EventPredicate {
  const sub = (x: FilterExpr) => compileFilter(x, shared);
  switch (expr.op) {
    case 'true':
      return TRUE;
    case 'and': {
      const parts = expr.args.map(sub);
      if (parts.length === 0) return TRUE;
      if (parts.length === 1) return parts[0]!;
      if (parts.length === 2) {
        const [a, b] = parts as [EventPredicate, EventPredicate];
        return (e) => a(e) && b(e);
      }
      return (e) => {
        for (const p of parts) if (!p(e)) return false;
        return true;
      };
    }
    case 'or': {
      // `f like a or f like b or f contains c …` on one field: one memoised test per value
      // (any value matching any test is the same as any test matching any value).
      const byField = new Map<string, FilterExpr[]>();
      const rest: FilterExpr[] = [];
      for (const a of expr.args) {
        if (STRING_TESTS.has(a.op) && 'field' in a) {
          const list = byField.get(a.field) ?? [];
          list.push(a);
          byField.set(a.field, list);
        } else rest.push(a);
      }
      const parts: EventPredicate[] = [];
      for (const [field, tests] of byField) {
        if (tests.length === 1) {
          parts.push(sub(tests[0]!));
          continue;
        }
        const fns = tests.map(stringTest);
        const test = memo((s) => {
          for (const f of fns) if (f(s)) return true;
          return false;
        });
        parts.push(anyValue(field, (v) => typeof v === 'string' && test(v)));
      }
      for (const a of rest) parts.push(sub(a));
      if (parts.length === 1) return parts[0]!;
      return (e) => {
        for (const p of parts) if (p(e)) return true;
        return false;
      };
    }
    case 'not': {
      const inner = sub(expr.arg);
      return (e) => !inner(e);
    }
    case 'cmp': {
      const p = anyValue(expr.field, scalarTest(expr.field, expr.cmp, expr.value));
      return expr.cmp === '!=' ? (e) => !p(e) : p;
    }
    case 'in': {
      const kind = fieldKind(expr.field);
      const set = new Set<unknown>();
      for (const v of expr.values) {
        const c = canonicalValue(kind, v);
        if (c !== undefined) set.add(c);
      }
      return anyValue(expr.field, (v) => set.has(canonicalValue(kind, v)));
    }
    case 'wildcard':
    case 'contains':
    case 'startswith':
    case 'endswith':
    case 'regex': {
      // per-value results memoised (values such as user agents and routes repeat)
      const test = memo(stringTest(expr));
      return anyValue(expr.field, (v) => typeof v === 'string' && test(v));
    }
    case 'cidr': {
      const nets = expr.cidrs.map(parseCidr);
      const test = memo((s) => {
        const b = ipBytes(s);
        return b !== null && nets.some((n) => inCidr(b, n));
      });
      return anyValue(expr.field, (v) => typeof v === 'string' && test(v));
    }
    case 'exists':
      return anyValue(expr.field, () => true);
  }
}
