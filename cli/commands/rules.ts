/**
 * `gatewatch rules validate|fmt` — the rule language's CI tools.
 */
import type { Command } from 'commander';
import { rulesFmt, rulesValidate } from '../../parser/cli.ts';
import { registerRulesCoverage } from './rules-coverage.ts';
import { registerRulesTest } from './rules-test.ts';

const io = { stdout: process.stdout, stderr: process.stderr };

export function register(program: Command): void {
  const rules = program.command('rules').description('Detection rules: validate, format, test, coverage.');
  rules
    .command('validate')
    .description('Parse and check rule files; non-zero exit on errors (for CI).')
    .argument('[paths...]', 'rule files or directories', ['detections/rules'])
    .option('--json', 'machine-readable output')
    .action(async (paths: string[], opts: { json?: boolean }) => {
      process.exitCode = await rulesValidate(paths, { json: opts.json ?? false }, io);
    });
  rules
    .command('fmt')
    .description(
      'Print rules in canonical form (--write to rewrite files, --check to fail when not canonical).',
    )
    .argument('<paths...>', 'rule files')
    .option('--write', 'rewrite the files in place')
    .option('--check', 'exit 1 when a file is not in canonical form')
    .action(async (paths: string[], opts: { write?: boolean; check?: boolean }) => {
      process.exitCode = await rulesFmt(paths, opts, io);
    });
  registerRulesTest(rules);
  registerRulesCoverage(rules, program);
}
