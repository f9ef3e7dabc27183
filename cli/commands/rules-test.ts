/**
 * `gatewatch rules test [paths...]` — run the test cases stored next to rules
 * (`<rules dir>/tests/*.yaml`, format: detections/rules/tests/README.md). Non-zero exit when
 * a case fails or the rules do not load.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { formatRuleTestReport, loadRuleTests, runRuleTests } from '../../detections/rule-tests.ts';
import { formatDiagnostic, loadRuleFiles } from '../../parser/index.ts';

export interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export interface RulesTestOptions {
  /** Extra rule files or directories (user rules). */
  rules?: string[];
  json?: boolean;
  /** Only cases whose rule id or name contains this text. */
  grep?: string;
  verbose?: boolean;
}

export const DEFAULT_RULES_PATH = 'detections/rules';

/**
 * Paths are rule directories (their `tests/` directories are searched), `.gwr` files (the
 * `tests/` directory next to them) or test files. Rules come from the directories and `.gwr`
 * files given, the directory a `tests/` directory of a given test file sits in, and `--rules`;
 * with none of these, from the built-in pack. Returns the exit code:
 * 0 all passed, 1 a failure (or no case found), 2 rules that do not load.
 */
export async function rulesTest(paths: string[], opts: RulesTestOptions, io: Io): Promise<number> {
  const targets = paths.length > 0 ? paths : [DEFAULT_RULES_PATH];
  const isTestFile = (p: string) => /\.(ya?ml|json)$/i.test(p);
  // a test file in `<dir>/tests/` brings the rules of `<dir>` (the rules it is stored next to)
  const besideTests = targets
    .filter((p) => isTestFile(p) && basename(dirname(resolve(p))) === 'tests')
    .map((p) => dirname(dirname(resolve(p))))
    .filter((dir) => readdirSync(dir).some((f) => f.endsWith('.gwr')));
  const rulePaths = [
    ...new Set([...targets.filter((p) => !isTestFile(p)), ...besideTests, ...(opts.rules ?? [])]),
  ];
  const loaded = await loadRuleFiles(rulePaths.length > 0 ? rulePaths : [DEFAULT_RULES_PATH]);
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    for (const d of errors) io.stderr.write(`${formatDiagnostic(d)}\n\n`);
    io.stderr.write(`gatewatch rules test: ${errors.length} error(s) in the rule files\n`);
    return 2;
  }
  let cases = loadRuleTests(targets);
  if (opts.grep) {
    const needle = opts.grep.toLowerCase();
    cases = cases.filter(
      (c) => c.rule.toLowerCase().includes(needle) || c.name.toLowerCase().includes(needle),
    );
  }
  if (cases.length === 0) {
    io.stderr.write(`gatewatch rules test: no test cases found in ${targets.join(', ')}\n`);
    return 1;
  }
  const results = await runRuleTests(loaded.rules, cases);
  const failed = results.filter((r) => !r.passed).length;
  if (opts.json) {
    const out = {
      ok: failed === 0,
      passed: results.length - failed,
      failed,
      results,
    };
    io.stdout.write(`${JSON.stringify(out, isoTimes, 2)}\n`);
  } else {
    io.stdout.write(formatRuleTestReport(results, { verbose: opts.verbose ?? false }));
  }
  return failed > 0 ? 1 : 0;
}

/** JSON replacer: windows and ranges as ISO-8601 times instead of epoch ms. */
function isoTimes(key: string, value: unknown): unknown {
  if ((key === 'window' || key === 'range') && value !== null && typeof value === 'object') {
    const { start, end } = value as { start: unknown; end: unknown };
    if (typeof start === 'number' && typeof end === 'number')
      return { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
  }
  return value;
}

/** `rules test [paths...]`. */
export async function test(paths: string[], opts: RulesTestOptions): Promise<void> {
  process.exitCode = await rulesTest(paths, opts, { stdout: process.stdout, stderr: process.stderr });
}
