/**
 * FilterExpr → Elasticsearch query DSL, with the IR's missing-field semantics: a predicate on
 * a missing field is false, `!=`/`not` are plain negations (so `a != 1` matches documents
 * without `a`), a multi-valued field matches when any value does (which is what term/range
 * queries do). Used by the detection executor and by the REST API's event search.
 *
 * Exact for every construct except regular expressions Lucene cannot express (see
 * ./lucene-regex.ts): those compile to a superset (`exists` in a positive position,
 * everything in a negative one) and `compileFilterQuery` reports `exact: false`, so the
 * caller must re-check events with compileFilter.
 */
import type { estypes } from '@elastic/elasticsearch';
import type { FilterExpr } from '../../parser/ir.ts';
import { re2ToLucene, Untranslatable } from './lucene-regex.ts';
import { fieldKind } from './values.ts';

type Query = estypes.QueryDslQueryContainer;

const MATCH_ALL: Query = { match_all: {} };
const MATCH_NONE: Query = { match_none: {} };

function escapeWildcard(s: string): string {
  return s.replace(/[\\*?]/g, '\\$&');
}

function value(field: string, v: string | number | boolean): string | number | boolean {
  // dates compare as instants; the field's own format parses ISO strings and epoch ms
  return fieldKind(field) === 'date' && typeof v === 'number' ? v : v;
}

export interface CompiledQuery {
  query: Query;
  /** False when part of the filter could only be approximated by a superset. */
  exact: boolean;
}

export function compileFilterQuery(expr: FilterExpr): CompiledQuery {
  let exact = true;
  const go = (e: FilterExpr, positive: boolean): Query => {
    switch (e.op) {
      case 'true':
        return MATCH_ALL;
      case 'and':
        if (e.args.length === 0) return MATCH_ALL;
        return { bool: { filter: e.args.map((a) => go(a, positive)) } };
      case 'or':
        if (e.args.length === 0) return MATCH_NONE;
        return { bool: { should: e.args.map((a) => go(a, positive)), minimum_should_match: 1 } };
      case 'not':
        return { bool: { must_not: [go(e.arg, !positive)] } };
      case 'cmp': {
        const v = value(e.field, e.value);
        switch (e.cmp) {
          case '==':
            return fieldKind(e.field) === 'date'
              ? { range: { [e.field]: { gte: v as string, lte: v as string } } }
              : { term: { [e.field]: { value: v } } };
          case '!=':
            return {
              bool: {
                must_not: [
                  fieldKind(e.field) === 'date'
                    ? { range: { [e.field]: { gte: v as string, lte: v as string } } }
                    : { term: { [e.field]: { value: v } } },
                ],
              },
            };
          case '<':
            return { range: { [e.field]: { lt: v as string } } };
          case '<=':
            return { range: { [e.field]: { lte: v as string } } };
          case '>':
            return { range: { [e.field]: { gt: v as string } } };
          case '>=':
            return { range: { [e.field]: { gte: v as string } } };
        }
        break;
      }
      case 'in':
        if (e.values.length === 0) return MATCH_NONE;
        if (fieldKind(e.field) === 'date') {
          return {
            bool: {
              should: e.values.map((v) => ({ range: { [e.field]: { gte: v as string, lte: v as string } } })),
              minimum_should_match: 1,
            },
          };
        }
        return { terms: { [e.field]: e.values as estypes.FieldValue[] } };
      case 'wildcard':
        return { wildcard: { [e.field]: { value: e.pattern, case_insensitive: e.caseInsensitive } } };
      case 'contains':
        return {
          wildcard: {
            [e.field]: { value: `*${escapeWildcard(e.value)}*`, case_insensitive: e.caseInsensitive },
          },
        };
      case 'startswith':
        return { prefix: { [e.field]: { value: e.value, case_insensitive: e.caseInsensitive } } };
      case 'endswith':
        return {
          wildcard: {
            [e.field]: { value: `*${escapeWildcard(e.value)}`, case_insensitive: e.caseInsensitive },
          },
        };
      case 'regex':
        try {
          const { regexp, caseInsensitive } = re2ToLucene(e.pattern);
          return {
            regexp: { [e.field]: { value: regexp, flags: 'NONE', case_insensitive: caseInsensitive } },
          };
        } catch (err) {
          if (!(err instanceof Untranslatable)) throw err;
          exact = false;
          return positive ? { exists: { field: e.field } } : MATCH_NONE;
        }
      case 'cidr':
        if (e.cidrs.length === 1) return { term: { [e.field]: { value: e.cidrs[0]! } } };
        return {
          bool: {
            should: e.cidrs.map((c) => ({ term: { [e.field]: { value: c } } })),
            minimum_should_match: 1,
          },
        };
      case 'exists':
        return { exists: { field: e.field } };
    }
    throw new Error(`unknown filter op ${(e as { op: string }).op}`);
  };
  const query = go(expr, true);
  return { query, exact };
}

/** The query for a filter (a superset when compileFilterQuery would say `exact: false`). */
export function filterToQuery(expr: FilterExpr): Query {
  return compileFilterQuery(expr).query;
}
