/**
 * Ways to run `gatewatch` (issue 19, item 3), each with clean machine output: stdout of
 * `--json` is the JSON and nothing else, exit codes come through.
 * - `npx gatewatch` (package.json "bin" → cli/bin.mjs);
 * - `gatewatch` on the PATH as `npm link` installs it: a symlink to cli/bin.mjs started by
 *   whatever `node` is on the PATH (the launcher runs the CLI on the project's Node 24);
 * - `npm run --silent gatewatch -- …`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './test-helpers.ts';

const RULE = 'detections/rules/api-keys.gwr';
const BROKEN = 'parser/testdata/does-not-exist.gwr';

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(command, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return r;
}

function validateJson(stdout: string) {
  const out = JSON.parse(stdout) as { ok: boolean; rules: { id: string }[] };
  expect(out.ok).toBe(true);
  expect(out.rules.length).toBeGreaterThan(0);
}

describe('running gatewatch', () => {
  it('npx gatewatch: JSON on stdout, nothing else', () => {
    const r = run('npx', ['--no-install', 'gatewatch', 'rules', 'validate', '--json', RULE]);
    expect(r.status, r.stderr).toBe(0);
    validateJson(r.stdout);
  });

  it('npm run --silent gatewatch: JSON on stdout, nothing else', () => {
    const r = run('npm', ['run', '--silent', 'gatewatch', '--', 'rules', 'validate', '--json', RULE]);
    expect(r.status, r.stderr).toBe(0);
    validateJson(r.stdout);
  });

  it('gatewatch linked onto the PATH runs with the node on the PATH, whatever its version', () => {
    // the PATH npm link leaves: the link, then the system directories (not node_modules/.bin)
    const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d && !d.includes('node_modules'));
    const systemNode = dirs.map((d) => join(d, 'node')).find((p) => existsSync(p));
    expect(systemNode, 'a node on the PATH outside node_modules (the one npm runs on)').toBeDefined();
    const bin = mkdtempSync(join(tmpdir(), 'gw-link-'));
    symlinkSync(join(ROOT, 'cli/bin.mjs'), join(bin, 'gatewatch'));
    const env = { ...process.env, PATH: [bin, ...dirs].join(delimiter) };
    const ok = run(join(bin, 'gatewatch'), ['rules', 'validate', '--json', RULE], env);
    expect(ok.status, ok.stderr).toBe(0);
    validateJson(ok.stdout);
    const failed = run(join(bin, 'gatewatch'), ['rules', 'validate', BROKEN], env);
    expect(failed.status).toBe(1);
  });

  it('the launcher starts the project’s Node 24 when the running Node cannot strip types', () => {
    const r = run(process.execPath, [
      '--no-experimental-strip-types',
      'cli/bin.mjs',
      'rules',
      'validate',
      '--json',
      RULE,
    ]);
    expect(r.status, r.stderr).toBe(0);
    validateJson(r.stdout);
  });
});
