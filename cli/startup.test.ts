/**
 * `gatewatch` loads a command's code only when that command runs (issue 19, item 2): checked
 * by the modules a real process loads, not by time (bench:cli measures the time).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './test-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'gw-startup-'));
const hook = join(dir, 'record-loads.mjs');
writeFileSync(
  hook,
  `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.LOADED_FILE, loaded.join('\\n')));
`,
);

function modulesLoadedBy(args: string[]): string[] {
  const out = join(dir, `${args.join('-').replace(/[^a-z-]/g, '')}.txt`);
  const r = runCli(args, { nodeArgs: ['--import', hook], env: { LOADED_FILE: out } });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(out, 'utf8').split('\n');
}

const packagesIn = (urls: string[]) =>
  new Set(urls.map((u) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1]).filter((p) => p !== undefined));

const HEAVY = ['@elastic/elasticsearch', 'bullmq', 'ioredis', 'fastify', 'chevrotain', 'typebox', 'maxmind'];

describe('CLI start-up', () => {
  it('--help loads the command tree only: commander, no product code', () => {
    const loaded = modulesLoadedBy(['--help']);
    expect([...packagesIn(loaded)]).toEqual(['commander']);
    const own = loaded.filter((u) => u.startsWith('file:') && !u.includes('node_modules'));
    expect(own.map((u) => u.replace(/.*\/cli\//, 'cli/')).sort()).toEqual([
      'cli/errors.ts',
      'cli/gatewatch.ts',
      'cli/program.ts',
    ]);
  });

  it('rules validate loads the rule language, not the servers’ clients nor TypeBox', () => {
    const packages = packagesIn(modulesLoadedBy(['rules', 'validate', 'detections/rules/api-keys.gwr']));
    expect(packages.has('chevrotain')).toBe(true);
    for (const heavy of HEAVY.filter((p) => p !== 'chevrotain'))
      expect(packages.has(heavy), heavy).toBe(false);
  });

  it('a subcommand’s --help loads none of its code', () => {
    const packages = packagesIn(modulesLoadedBy(['serve', '--help']));
    for (const heavy of HEAVY) expect(packages.has(heavy), heavy).toBe(false);
  });

  it('the command tree’s help names what the commands accept (keys roles as api/auth/keys.ts has them)', async () => {
    const { ROLES } = await import('../api/auth/keys.ts');
    const r = runCli(['keys', 'create', '--help']);
    expect(r.stdout).toContain(`one of: ${ROLES.join(', ')}`);
  });
});
