import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rulesFmt, rulesValidate } from './cli.ts';

function io() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'gwr-cli-'));
const good = join(dir, 'good.gwr');
const bad = join(dir, 'bad.gwr');
writeFileSync(good, 'rule ok {\n    title "OK"\n  severity low\n  where user.name exists }\n');
writeFileSync(bad, 'rule ko {\n  title "KO"\n  severity low\n  where source.ipp exists\n}\n');

describe('gatewatch rules validate', () => {
  it('exits 0 on valid files and prints a summary', async () => {
    const { out, io: s } = io();
    expect(await rulesValidate([good], { json: false }, s)).toBe(0);
    expect(out.stdout).toContain('1 rule(s) valid, 0 error(s)');
  });

  it('exits 1 on errors, with file:line:col diagnostics', async () => {
    const { out, io: s } = io();
    expect(await rulesValidate([dir], { json: false }, s)).toBe(1);
    expect(out.stderr).toContain(`${bad}:4:9: error: unknown field \`source.ipp\``);
  });

  it('--json output', async () => {
    const { out, io: s } = io();
    expect(await rulesValidate([dir], { json: true }, s)).toBe(1);
    const j = JSON.parse(out.stdout);
    expect(j.ok).toBe(false);
    expect(j.errors).toBe(1);
    expect(j.rules.map((r: { id: string }) => r.id)).toEqual(['ok']);
    expect(j.diagnostics[0]).toMatchObject({
      file: bad,
      line: 4,
      column: 9,
      code: 'unknown-field',
      hint: 'did you mean `source.ip`?',
    });
  });

  it('missing paths and no paths', async () => {
    expect(await rulesValidate([join(dir, 'nope.gwr')], { json: false }, io().io)).toBe(1);
    expect(await rulesValidate([], { json: false }, io().io)).toBe(2);
  });
});

describe('gatewatch rules fmt', () => {
  it('prints canonical text, --check and --write', async () => {
    const { out, io: s } = io();
    expect(await rulesFmt([good], {}, s)).toBe(0);
    expect(out.stdout).toBe('rule ok {\n  title "OK"\n  severity low\n  where user.name exists\n}\n');
    expect(await rulesFmt([good], { check: true }, io().io)).toBe(1);
    expect(await rulesFmt([good], { write: true }, io().io)).toBe(0);
    expect(readFileSync(good, 'utf8')).toBe(out.stdout);
    expect(await rulesFmt([good], { check: true }, io().io)).toBe(0);
  });

  it('refuses files with syntax errors', async () => {
    const broken = join(dir, 'broken.gwr');
    writeFileSync(broken, 'rule x {');
    const { out, io: s } = io();
    expect(await rulesFmt([broken], {}, s)).toBe(1);
    expect(out.stderr).toContain('broken.gwr:1:9: error:');
  });
});
