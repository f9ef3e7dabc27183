/**
 * Test helper: check that an event fits the strict index mapping exactly: every leaf is a
 * catalogued field (or under a flattened field) with a value of the right type.
 */
import { FIELDS } from '../../../core/schema/catalogue.ts';
import { looksLikeIp } from '../util.ts';

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export function schemaProblems(event: unknown): string[] {
  const problems: string[] = [];
  walk(event, '', problems);
  const ts = (event as Record<string, unknown>)['@timestamp'];
  if (typeof ts !== 'string') problems.push('@timestamp missing');
  return problems;
}

function walk(node: unknown, prefix: string, problems: string[]): void {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) {
    problems.push(`${prefix}: not an object`);
    return;
  }
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    const name = prefix === '' ? k : `${prefix}.${k}`;
    const info = FIELDS.get(name);
    if (info === undefined) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v, name, problems);
      else problems.push(`${name}: not in the schema`);
      continue;
    }
    if (v === undefined || v === null) {
      problems.push(`${name}: ${String(v)}`);
      continue;
    }
    const values = info.array ? (Array.isArray(v) ? v : [Symbol('not an array')]) : [v];
    if (info.array && (!Array.isArray(v) || v.length === 0))
      problems.push(`${name}: expected a non-empty array`);
    for (const x of values) {
      const bad = (what: string) =>
        problems.push(`${name}: expected ${what}, got ${JSON.stringify(x) ?? String(x)}`);
      switch (info.type) {
        case 'keyword':
        case 'match_only_text':
          if (typeof x !== 'string' || x === '') bad('a non-empty string');
          break;
        case 'long':
        case 'integer':
          if (typeof x !== 'number' || !Number.isSafeInteger(x)) bad('an integer');
          break;
        case 'double':
        case 'float':
          if (typeof x !== 'number' || !Number.isFinite(x)) bad('a number');
          break;
        case 'ip':
          if (typeof x !== 'string' || !looksLikeIp(x)) bad('an IP');
          break;
        case 'date':
          if (typeof x !== 'string' || !ISO_MS.test(x)) bad('ISO-8601 UTC with ms');
          break;
        case 'boolean':
          if (typeof x !== 'boolean') bad('a boolean');
          break;
        case 'geo_point': {
          const g = x as { lat?: unknown; lon?: unknown };
          if (typeof g !== 'object' || typeof g.lat !== 'number' || typeof g.lon !== 'number')
            bad('{lat, lon}');
          break;
        }
        case 'flattened':
          if (typeof x !== 'object' || Array.isArray(x)) bad('an object');
          break;
      }
    }
  }
}
