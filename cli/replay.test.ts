/**
 * `gatewatch replay` as a user runs it, into the embedded SQLite store (issue 19, items 5–9):
 * rotated and extensionless files, skipped files with reasons, dead letters by reason and
 * listed from the embedded store, progress with bytes, ETA and events/s, re-runs that keep API
 * keys and triage, and the demo's file being the one `serve --embedded` and `incidents` open.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli, spawnCli } from './test-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'gw-replay-cli-'));
const NGINX = join(ROOT, 'samples/formats/nginx.access.log');
const NGINX_LINES = readFileSync(NGINX, 'utf8').split('\n').filter(Boolean).length;

function ok(args: string[], options: Parameters<typeof runCli>[1] = {}) {
  const r = runCli(args, options);
  expect(r.status, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

describe('replay input files', () => {
  it('replays rotated and extensionless files named directly', () => {
    const rotated = join(dir, 'rotated');
    mkdirSync(rotated);
    copyFileSync(NGINX, join(rotated, 'access.log.1'));
    writeFileSync(join(rotated, 'access.log.2.gz'), gzipSync(readFileSync(NGINX)));
    copyFileSync(NGINX, join(rotated, 'access'));
    const r = ok([
      'replay',
      join(rotated, 'access.log.1'),
      join(rotated, 'access.log.2.gz'),
      join(rotated, 'access'),
      '--db',
      ':memory:',
    ]);
    expect(r.stdout).toContain(`Replayed ${NGINX_LINES * 3} lines from 3 file(s)`);
  });

  it('follows rotation suffixes in directories and reports every file it skipped, with why', () => {
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    copyFileSync(NGINX, join(logs, 'access.log'));
    copyFileSync(NGINX, join(logs, 'access.log.1'));
    writeFileSync(join(logs, 'access.log.2.gz'), gzipSync(readFileSync(NGINX)));
    writeFileSync(join(logs, 'labels.json'), '[]');
    writeFileSync(join(logs, 'report.pdf'), '%PDF');
    const r = ok(['replay', logs, '--db', ':memory:']);
    expect(r.stdout).toContain(`Replayed ${NGINX_LINES * 3} lines from 3 file(s)`);
    expect(r.stderr).toContain(`skipped ${join(logs, 'labels.json')}: scenario labels, not a log`);
    expect(r.stderr).toMatch(new RegExp(`skipped ${join(logs, 'report.pdf')}: not a log file name`));
  });
});

describe('dead letters', () => {
  it('summarises them by reason with examples, and lists them from the embedded store', () => {
    const garbage = join(dir, 'garbage.log');
    writeFileSync(garbage, 'hello world\nthis is not a log\n{"a":1}\nnor is this\n');
    const db = join(dir, 'dead.sqlite');
    const r = ok(['replay', garbage, '--db', db]);
    expect(r.stdout).toContain('4 dead letter(s): records that did not become events, by reason:');
    expect(r.stdout).toMatch(
      / 3 × no format matched the line\n\s+hello world\n\s+this is not a log\n\s+nor is this\n/,
    );
    expect(r.stdout).toMatch(/ 1 × no format matched the JSON record\n\s+\{"a":1\}/);
    expect(r.stdout).toContain(`ingest dead-letters list --embedded --db ${db}`);

    const list = ok(['ingest', 'dead-letters', 'list', '--embedded', '--db', db]);
    expect(list.stdout).toContain('no format matched the line');
    expect(list.stdout).toContain('    this is not a log');
    const json = JSON.parse(
      ok(['ingest', 'dead-letters', 'list', '--embedded', '--db', db, '--json']).stdout,
    );
    expect(json.map((d: { payload: string }) => d.payload).sort()).toEqual([
      'hello world',
      'nor is this',
      'this is not a log',
      '{"a":1}',
    ]);
  });
});

describe('progress', () => {
  it('--progress reports bytes of the total, events/s and the time left', () => {
    const gz = join(dir, 'progress.log.gz');
    writeFileSync(gz, gzipSync(readFileSync(NGINX)));
    const r = ok(['replay', gz, '--db', ':memory:', '--progress']);
    const size = readFileSync(gz).length;
    expect(r.stderr).toMatch(
      new RegExp(`replay: ${size} B of ${size} B \\(100 %\\), \\d+ events/s, ETA 0:00`),
    );
  });
});

describe('re-running a replay', () => {
  let scenario: string;
  beforeAll(() => {
    scenario = join(dir, 'scenario');
    ok([
      'scenario',
      'generate',
      '--out',
      scenario,
      '--hours',
      '0.5',
      '--attacks',
      'credential-stuffing-single-source',
    ]);
  });

  it('keeps API keys and triage; --fresh says what it deletes', () => {
    const db = join(dir, 'rerun.sqlite');
    const first = ok(['replay', scenario, '--db', db]);
    expect(first.stdout).toMatch(/[1-9]\d* incident\(s\):/);
    const key = ok(['keys', 'create', '--embedded', '--db', db, '--role', 'analyst', '--json']);
    const keyId = JSON.parse(key.stdout).key.id as string;
    const listed = JSON.parse(ok(['incidents', 'list', '--embedded', '--db', db, '--json']).stdout);
    const id = listed.items[0].id as string;
    ok(['incidents', 'triage', id, '--embedded', '--db', db, '--status', 'triaged', '--note', 'seen']);

    const again = ok(['replay', scenario, '--db', db]);
    expect(again.stdout).toMatch(/the store already held .* 1 API key/);
    const keys = JSON.parse(ok(['keys', 'list', '--embedded', '--db', db, '--json']).stdout);
    expect(keys.map((k: { id: string }) => k.id)).toEqual([keyId]);
    const after = JSON.parse(ok(['incidents', 'show', id, '--embedded', '--db', db, '--json']).stdout);
    expect(after.status).toBe('triaged');

    const fresh = ok(['replay', scenario, '--db', db, '--fresh']);
    expect(fresh.stderr).toMatch(
      new RegExp(
        `--fresh: deleted ${db}, which held \\d+ events, \\d+ incidents \\(1 triaged or commented\\), 1 API key\\(s\\)`,
      ),
    );
    expect(JSON.parse(ok(['keys', 'list', '--embedded', '--db', db, '--json']).stdout)).toEqual([]);
  });
});

describe('after the demo', () => {
  it('prints the next commands, and serve --embedded and incidents open the file the demo wrote', async () => {
    // the demo's own command line, run in a fresh working directory (its relative paths intact)
    const cwd = mkdtempSync(join(tmpdir(), 'gw-demo-'));
    for (const d of ['samples', 'detections']) symlinkSync(join(ROOT, d), join(cwd, d));
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<
      string,
      string
    >;
    const demo = scripts.demo!.split(/\s+/);
    expect(demo.slice(0, 2)).toEqual(['node', 'cli/gatewatch.ts']);
    const r = ok(demo.slice(2), { cwd, timeoutMs: 300_000 });
    const count = Number(/(\d+) incident\(s\):/.exec(r.stdout)![1]);
    expect(count).toBeGreaterThan(10);
    expect(r.stdout).toContain('Next, with the incidents in .cache/gatewatch.sqlite:');
    const steps = r.stdout.slice(r.stdout.indexOf('Next,')).split('\n').slice(1);
    const command = (name: string) =>
      steps
        .find((s) => s.includes(name))!
        .trim()
        .split(/\s{3,}/)[0]!
        .split(' ')
        .slice(2); // drop "npx gatewatch"

    // the printed `incidents list` shows the demo's incidents
    const list = ok([...command('incidents list'), '--json', '--limit', '500'], { cwd });
    expect(JSON.parse(list.stdout).items).toHaveLength(count);

    // the printed key command and `serve --embedded` (no --db) open that same file
    const key = JSON.parse(ok([...command('keys create'), '--json'], { cwd }).stdout).token as string;
    const serve = spawnCli([...command('serve --embedded'), '--port', '0'], { cwd });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = '';
        serve.stderr.on('data', (c: Buffer) => {
          err += c.toString();
          const m = /listening on (http:\/\/\S+)/.exec(err);
          if (m) resolve(m[1]!);
        });
        serve.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
      });
      const response = await fetch(`${url}/api/v1/incidents?limit=500`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { items: unknown[] }).items).toHaveLength(count);
    } finally {
      serve.kill('SIGTERM');
    }
  });
});
