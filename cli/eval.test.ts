/**
 * `eval` prints no colour codes when piped or with NO_COLOR (issue 19, item 13).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './test-helpers.ts';

const scenario = join(mkdtempSync(join(tmpdir(), 'gw-eval-')), 'scenario');

beforeAll(() => {
  const r = runCli([
    'scenario',
    'generate',
    '--out',
    scenario,
    '--hours',
    '0.5',
    '--attacks',
    'credential-stuffing-single-source',
  ]);
  expect(r.status, r.stderr).toBe(0);
});

describe('eval output', () => {
  it('has no colour codes when piped', () => {
    const r = runCli(['eval', scenario, '--rules', 'detections/rules']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('credential-stuffing-single-source');
    expect(r.stdout).not.toMatch(/\u001b\[/);
  });

  it('has no colour codes with NO_COLOR=1, and has them when FORCE_COLOR asks', () => {
    const plain = runCli(['eval', scenario], { env: { NO_COLOR: '1' } });
    expect(plain.stdout).toContain('all rules');
    expect(plain.stdout).not.toMatch(/\u001b\[/);
    const forced = runCli(['eval', scenario], { env: { FORCE_COLOR: '1' } });
    expect(forced.stdout).toMatch(/\u001b\[/);
  });
});
