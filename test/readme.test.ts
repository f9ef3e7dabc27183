/**
 * The README's configuration for running without Docker stays copyable: the file its snippet
 * writes is a valid configuration with every kind of source, and the commands it runs exist.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';

const readme = readFileSync('README.md', 'utf8');
const section = readme.slice(readme.indexOf('### Running without Docker'));

describe('README: running without Docker', () => {
  it('writes a complete, valid configuration (as the shell would expand it)', () => {
    const heredoc = /cat > gatewatch\.yaml <<EOF\n([\s\S]*?)\nEOF\n/.exec(section);
    expect(heredoc, 'the section writes gatewatch.yaml with a heredoc').not.toBeNull();
    const yaml = heredoc![1]!.replace(/\$\(openssl rand -hex (\d+)\)/g, (_, n: string) =>
      randomBytes(Number(n)).toString('hex'),
    );
    const file = join(mkdtempSync(join(tmpdir(), 'gw-readme-')), 'gatewatch.yaml');
    writeFileSync(file, yaml);
    const config = loadConfig({ file, env: {} });
    expect(config.ingest.sources.map((s) => s.type).sort()).toEqual(['file', 'http', 'syslog']);
    expect(config.ingest.sources.find((s) => s.type === 'http')!.tokens[0]).toMatch(/^[0-9a-f]{48}$/);
    expect(config.ingest.fingerprintSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(config.ingest.relpPort).toBeDefined();
  });

  it('runs every process with commands that exist', () => {
    const commands = [
      ...section.matchAll(/npx gatewatch --config gatewatch\.yaml ([a-z -]+?)(?: --| *#|$)/gm),
    ].map((m) => m[1]!.trim());
    expect(commands).toEqual(['ingest sources', 'ingest worker', 'detect worker', 'serve', 'keys create']);
    for (const command of commands) {
      const help = execFileSync(process.execPath, ['cli/gatewatch.ts', ...command.split(' '), '--help'], {
        encoding: 'utf8',
      });
      expect(help).toContain(`Usage: gatewatch ${command}`);
    }
  });
});
