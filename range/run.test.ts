import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import { getFormat } from '../ingest/formats/index.ts';
import { type Lane, LOG_FILES } from './gateways.ts';
import { gatewatchConfig, LOG_FORMATS, main, runRange } from './run.ts';

const dir = mkdtempSync(join(tmpdir(), 'range-run-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runRange: bad options get one line, before anything starts', () => {
  it('refuses a run too short for the tool attacks, an unknown lane, a used output directory', async () => {
    await expect(runRange({ seed: 1, durationMs: 30_000, outDir: join(dir, 'a') })).rejects.toThrow(
      'range: the traffic must last between 100 s and 4 h (got 30 s)',
    );
    await expect(
      runRange({ seed: 1, durationMs: 120_000, outDir: join(dir, 'b'), lanes: ['waf', 'iis' as Lane] }),
    ).rejects.toThrow('range: unknown lane "iis"; lanes: waf, waf-detect, haproxy');
    const used = join(dir, 'used');
    await import('node:fs').then((fs) => fs.mkdirSync(used));
    writeFileSync(join(used, 'old.log'), 'x');
    await expect(runRange({ seed: 1, durationMs: 120_000, outDir: used })).rejects.toThrow(
      /^range: output directory .*used is not empty; choose a new or empty one$/,
    );
  });

  it('the CLI prints the one line and exits non-zero', async () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['--out', join(dir, 'c'), '--minutes', '1'])).toBe(1);
      expect(err.mock.calls.map((c) => String(c[0]))).toEqual([
        'range: the traffic must last between 100 s and 4 h (got 60 s)\n',
      ]);
      expect(await main(['--out', join(dir, 'd'), '--seed', 'x'])).toBe(2);
    } finally {
      err.mockRestore();
    }
  });
});

describe('the gatewatch.yaml a run writes', () => {
  it('loads, names a registered format for every log, and names the HAProxy captures', () => {
    const out = join(dir, 'out');
    const path = join(dir, 'gatewatch.yaml');
    writeFileSync(path, gatewatchConfig(out));
    const config = loadConfig({ file: path, env: {} });
    expect(config.ingest.sources.map((s) => [s.format, s.paths])).toEqual(
      (Object.keys(LOG_FILES) as (keyof typeof LOG_FILES)[]).map((k) => [
        LOG_FORMATS[k],
        [join(out, LOG_FILES[k])],
      ]),
    );
    for (const s of config.ingest.sources) expect(getFormat(s.format!), s.format).toBeDefined();
    expect(config.ingest.sources.find((s) => s.format === 'haproxy.http')?.fieldMap).toEqual({
      'capture.request.0': '@header:host',
      'capture.request.1': 'user_agent.original',
      'capture.request.2': '@header:x-api-key',
      'capture.request.3': '@header:authorization',
    });
  });
});
