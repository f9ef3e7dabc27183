import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIELDS } from '../core/schema/catalogue.ts';
import {
  diskReaders,
  formatDiagnostic,
  formatRules,
  loadRuleFiles,
  parseRules,
  parseSyntax,
  stripPositions,
} from './index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACK = join(ROOT, 'detections', 'rules');
const DOCS = join(ROOT, 'docs', 'rule-language.md');

/** parse(format(x)) == parse(x) on the AST (modulo positions), format is idempotent, IR is equal. */
function checkRoundTrip(text: string, file: string): void {
  const a = parseSyntax(text, file);
  expect(a.diags.map(formatDiagnostic)).toEqual([]);
  const formatted = formatRules(text, { file }).text!;
  const b = parseSyntax(formatted, file);
  expect(b.diags.map(formatDiagnostic)).toEqual([]);
  expect(stripPositions(b.ast)).toEqual(stripPositions(a.ast));
  expect(formatRules(formatted, { file }).text).toBe(formatted);
  const readers = diskReaders();
  const irA = parseRules(text, { file, ...readers }).rules.map(({ source, ...r }) => r);
  const irB = parseRules(formatted, { file, ...readers }).rules.map(({ source, ...r }) => r);
  expect(irB).toEqual(irA);
}

describe('built-in rule pack', () => {
  const files = readdirSync(PACK).filter((f) => f.endsWith('.gwr'));

  it('validates cleanly: no errors, no warnings, unique ids', async () => {
    const r = await loadRuleFiles([PACK]);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
    expect(r.rules.length).toBeGreaterThanOrEqual(15);
    expect(new Set(r.rules.map((x) => x.id)).size).toBe(r.rules.length);
    const kinds = new Set(r.rules.map((x) => x.kind));
    expect([...kinds].sort()).toEqual(['baseline', 'filter', 'first_seen', 'sequence', 'threshold']);
    for (const rule of r.rules) {
      expect(rule.tags.some((t) => /^API([1-9]|10):2023$/.test(t))).toBe(true);
      expect(rule.tags.some((t) => /^T\d{4}/.test(t))).toBe(true);
    }
  });

  it('every rule has a rationale comment', () => {
    for (const f of files) {
      const ast = parseSyntax(readFileSync(join(PACK, f), 'utf8'), f).ast;
      for (const d of ast.decls) {
        if (d.kind !== 'rule') continue;
        const comments = JSON.stringify(d);
        expect(comments, `${f}: ${d.id.name}`).toMatch(/"comments":\["#/);
      }
    }
  });

  it.each(files)('%s is in canonical form and round-trips', (f) => {
    const text = readFileSync(join(PACK, f), 'utf8');
    expect(formatRules(text, { file: f }).text).toBe(text);
    checkRoundTrip(text, join(PACK, f));
  });
});

describe('documentation examples', () => {
  const doc = readFileSync(DOCS, 'utf8');
  const blocks = [...doc.matchAll(/```gwr\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('has many examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(15);
  });

  it.each(blocks.map((b, i) => [i, b] as const))(
    'example %i parses, validates and round-trips',
    (_i, text) => {
      // Examples may include the built-in pack's shared file.
      const file = join(PACK, '__doc_example__.gwr');
      const r = parseRules(text, { file, ...diskReaders() });
      expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
      checkRoundTrip(text, file);
    },
  );
});

// ---- property-based round trip on generated rules ----------------------------------------

const fieldNames = [...FIELDS.keys()].filter((f) => !f.startsWith('@'));
const ident = fc
  .stringMatching(/^[a-z_][a-z0-9_]{0,8}$/)
  .filter((s) => !['and', 'or', 'not', 'in', 'true', 'false'].includes(s));
const field = fc.oneof(
  fc.constantFrom(...fieldNames),
  ident.map((s) => `x.${s}`),
);
const str = fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s));
const num = fc
  .oneof(fc.integer({ min: -1000, max: 100000 }), fc.double({ min: -1e6, max: 1e6, noNaN: true }))
  .map((n) => String(n));
const lit = fc.oneof(str, num, fc.constantFrom('true', 'false'));
const dur = fc
  .tuple(fc.integer({ min: 1, max: 500 }), fc.constantFrom('ms', 's', 'm', 'h', 'd', 'w'))
  .map(([n, u]) => `${n}${u}`);
const values = fc.oneof(
  lit,
  fc.array(lit, { maxLength: 4 }).map((xs) => `(${xs.join(', ')})`),
  ident.map((n) => `list ${n}`),
);
const regex = fc
  .stringMatching(/^[a-z0-9.*+?^$|()[\]-]{1,10}$/)
  .map((s) => `/${s}/${s.length % 2 ? 'i' : ''}`);

const predicate = fc.oneof(
  fc
    .tuple(field, fc.constantFrom('==', '!=', '<', '<=', '>', '>='), lit)
    .map(([f, o, v]) => `${f} ${o} ${v}`),
  fc.tuple(field, fc.boolean(), values).map(([f, n, v]) => `${f} ${n ? 'not in' : 'in'} ${v}`),
  fc
    .tuple(field, fc.constantFrom('like', 'contains', 'startswith', 'endswith'), values, fc.boolean())
    .map(([f, o, v, nc]) => `${f} ${o} ${v}${nc ? ' nocase' : ''}`),
  fc.tuple(field, regex).map(([f, r]) => `${f} matches ${r}`),
  fc.tuple(field, values).map(([f, v]) => `${f} cidr ${v}`),
  field.map((f) => `${f} exists`),
  ident,
  fc.constant('true'),
);

const { filter } = fc.letrec<{ filter: string }>((tie) => ({
  filter: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    predicate,
    fc.tuple(tie('filter'), fc.constantFrom('and', 'or'), tie('filter')).map(([a, o, b]) => `${a} ${o} ${b}`),
    tie('filter').map((f) => `not ${f}`),
    tie('filter').map((f) => `(${f})`),
  ),
}));

const having = fc.letrec<{ h: string }>((tie) => ({
  h: fc.oneof(
    { depthSize: 'small' },
    fc
      .tuple(ident, fc.constantFrom('==', '!=', '<', '<=', '>', '>='), fc.oneof(num, ident))
      .map(([m, o, v]) => `${m} ${o} ${v}`),
    fc.tuple(tie('h'), fc.constantFrom('and', 'or'), tie('h')).map(([a, o, b]) => `${a} ${o} ${b}`),
    tie('h').map((h) => `not ${h}`),
    tie('h').map((h) => `(${h})`),
  ),
})).h;

const metric = fc.oneof(
  fc.tuple(ident, fc.option(filter, { nil: undefined })).map(([n, f]) => `metric ${n} = count(${f ?? ''})`),
  fc
    .tuple(ident, fc.constantFrom('distinct_count', 'sum', 'avg', 'min', 'max'), field)
    .map(([n, fn, f]) => `metric ${n} = ${fn}(${f})`),
  fc.tuple(ident, field, num).map(([n, f, p]) => `metric ${n} = percentile(${f}, ${p})`),
  fc
    .tuple(ident, filter, fc.option(filter, { nil: undefined }))
    .map(([n, a, b]) => `metric ${n} = ratio(${a}${b ? `, ${b}` : ''})`),
);
const fields = fc.array(field, { minLength: 1, maxLength: 3 }).map((fs) => fs.join(', '));
const window = fc.oneof(
  dur.map((d) => `window ${d}`),
  dur.map((d) => `window ${d} tumbling`),
  fc.tuple(dur, dur).map(([a, b]) => `window ${a} sliding every ${b}`),
);
const comment = fc.stringMatching(/^[ a-zA-Z0-9,.]{0,20}$/).map((s) => `# ${s}`);
const lines = (arb: fc.Arbitrary<string>) =>
  fc.array(fc.oneof(arb, comment), { maxLength: 5 }).map((ls) => ls.join('\n'));

const threshold = lines(
  fc.oneof(
    fields.map((f) => `group by ${f}`),
    window,
    metric,
    having.map((h) => `having ${h}`),
  ),
).map((b) => `threshold {\n${b}\n}`);
const step = fc
  .tuple(
    ident,
    fc.boolean(),
    filter,
    fc.oneof(
      fc.constant(''),
      fc.nat(50).map((n) => ` repeat >= ${n}`),
      fc.nat(50).map((n) => ` repeat ${n}`),
      fc.tuple(fc.nat(9), fc.nat(9)).map(([a, b]) => ` repeat ${a}..${b}`),
    ),
  )
  .map(([n, a, f, r]) => `step ${n} = ${a ? 'absent ' : ''}${f}${r}`);
const sequence = lines(
  fc.oneof(
    fields.map((f) => `by ${f}`),
    dur.map((d) => `within ${d}`),
    step,
    filter.map((f) => `until ${f}`),
  ),
).map((b) => `sequence {\n${b}\n}`);
const firstSeen = lines(
  fc.oneof(
    fields.map((f) => `values ${f}`),
    fields.map((f) => `by ${f}`),
    dur.map((d) => `history ${d}`),
    fc.constant('ignore new groups'),
  ),
).map((b) => `first_seen {\n${b}\n}`);
const baseline = lines(
  fc.oneof(
    fields.map((f) => `group by ${f}`),
    window,
    metric,
    dur.map((d) => `history ${d}`),
    fc.tuple(fc.constantFrom('ratio', 'stddev'), num).map(([k, n]) => `spike ${k} >= ${n}`),
    fc.nat(100).map((n) => `min_buckets ${n}`),
    having.map((h) => `having ${h}`),
  ),
).map((b) => `baseline {\n${b}\n}`);
const incident = lines(
  fc.oneof(
    str.map((s) => `title ${s}`),
    str.map((s) => `summary ${s}`),
    fc
      .array(fc.tuple(ident, field), { minLength: 1, maxLength: 3 })
      .map((es) => `entities ${es.map(([r, f]) => `${r}: ${f}`).join(', ')}`),
    fc
      .tuple(fc.option(fields, { nil: undefined }), dur)
      .map(([f, d]) => `suppress ${f ? `by ${f} ` : ''}for ${d}`),
    fc
      .tuple(fc.nat(100), fc.option(fields, { nil: undefined }))
      .map(([n, f]) => `evidence ${n}${f ? ` fields ${f}` : ''}`),
  ),
).map((b) => `incident {\n${b}\n}`);
const clause = fc.oneof(
  fc.tuple(fc.constantFrom('title', 'description', 'owner'), str).map(([k, s]) => `${k} ${s}`),
  ident.map((s) => `severity ${s}`),
  num.map((n) => `risk ${n}`),
  fc.array(str, { maxLength: 3 }).map((ts) => `tags [${ts.join(', ')}]`),
  fc.boolean().map((b) => `enabled ${b}`),
  fc
    .array(fc.tuple(fc.constantFrom('every', 'lookback', 'lateness'), dur), { minLength: 1, maxLength: 3 })
    .map((es) => `schedule ${es.map(([k, d]) => `${k} ${d}`).join(' ')}`),
  filter.map((f) => `where ${f}`),
  threshold,
  sequence,
  firstSeen,
  baseline,
  incident,
);
const ruleText = fc.tuple(ident, lines(clause)).map(([id, body]) => `rule r-${id} {\n${body}\n}`);
const decl = fc.oneof(
  ruleText,
  fc.tuple(ident, filter).map(([n, f]) => `macro ${n} = ${f}`),
  fc.tuple(ident, str).map(([n, p]) => `list ${n} = file(${p})`),
  fc.tuple(ident, fc.array(lit, { maxLength: 4 })).map(([n, xs]) => `list ${n} = [${xs.join(', ')}]`),
  str.map((p) => `include ${p}`),
  comment,
);
const fileText = fc.array(decl, { maxLength: 4 }).map((ds) => ds.join('\n'));

describe('property: parse(format(x)) == parse(x)', () => {
  it('on generated rule files', () => {
    fc.assert(
      fc.property(fileText, (text) => {
        const a = parseSyntax(text, 'gen.gwr');
        // The generator only produces syntactically valid text.
        expect(a.diags.map(formatDiagnostic)).toEqual([]);
        const formatted = formatRules(text).text!;
        const b = parseSyntax(formatted, 'gen.gwr');
        expect(b.diags.map(formatDiagnostic)).toEqual([]);
        expect(stripPositions(b.ast)).toEqual(stripPositions(a.ast));
        expect(formatRules(formatted).text).toBe(formatted);
      }),
      { numRuns: 400 },
    );
  });
});
