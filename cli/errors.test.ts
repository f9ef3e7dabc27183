/**
 * Ordinary mistakes end with one line on stderr saying what is wrong and what to do, and a
 * non-zero exit — never a stack trace (issue 19, item 4). Each case runs the CLI as a process.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeUserError, EXIT, UserError } from './errors.ts';
import { type CliResult, runCli } from './test-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'gw-errors-'));

/** One line, no stack frames, the expected exit code, and the words that matter. */
function expectOneLine(r: CliResult, code: number, ...words: RegExp[]) {
  expect(r.status, r.stderr).toBe(code);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^gatewatch: /);
  for (const w of words) expect(r.stderr).toMatch(w);
}

let busy: Server;
let busyPort: number;
let closedPort: number;
beforeAll(async () => {
  busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  busyPort = (busy.address() as { port: number }).port;
  // a port nothing listens on: bound, then released
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
});
afterAll(() => new Promise((r) => busy.close(r)));

describe('user errors', () => {
  it('a missing file', () => {
    const r = runCli(['replay', join(dir, 'access.log'), '--db', ':memory:']);
    expectOneLine(r, EXIT.usage, /access\.log: no such file or directory/);
  });

  it('a directory with no logs', () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const r = runCli(['replay', empty, '--db', ':memory:']);
    expectOneLine(r, EXIT.usage, /no log files to replay in .*empty/, /give the log files/);
  });

  it('a port already in use', () => {
    const r = runCli(['serve', '--embedded', '--db', join(dir, 'serve.sqlite'), '--port', String(busyPort)], {
      timeoutMs: 60_000,
    });
    expectOneLine(r, EXIT.unavailable, new RegExp(`:${busyPort} is already in use`), /--port/);
  });

  it('keys create without --embedded when no Elasticsearch runs', () => {
    const r = runCli(['keys', 'create', '--role', 'viewer'], {
      env: { ELASTICSEARCH_URL: `http://127.0.0.1:${closedPort}` },
    });
    expectOneLine(r, EXIT.unavailable, /cannot reach Elasticsearch/, /--embedded/);
  });

  it('eval on a directory without its labels', () => {
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    writeFileSync(
      join(logs, 'access.log'),
      '127.0.0.1 - - [14/May/2024:13:00:00 +0000] "GET / HTTP/1.1" 200 1\n',
    );
    const r = runCli(['eval', logs]);
    expectOneLine(r, EXIT.usage, /has no labels\.jsonl or labels\.json/, /--labels FILE/);
  });

  it('a configuration file that does not exist', () => {
    const r = runCli(['--config', join(dir, 'nope.yaml'), 'keys', 'list', '--embedded']);
    expectOneLine(r, EXIT.config, /cannot read configuration file/, /--config/);
  });

  it('serve without Redis', () => {
    const r = runCli(['serve', '--port', '0'], {
      env: {
        REDIS_URL: `redis://127.0.0.1:${closedPort}`,
        ELASTICSEARCH_URL: `http://127.0.0.1:${closedPort}`,
      },
    });
    expectOneLine(r, EXIT.unavailable, /cannot reach Redis/, /serve --embedded/);
  });

  it('a bad flag value', () => {
    expectOneLine(
      runCli(['serve', '--embedded', '--port', 'eighty']),
      EXIT.usage,
      /--port must be a port number/,
    );
    expectOneLine(runCli(['replay', dir, '--since', 'yesterday']), EXIT.usage, /--since: "yesterday" is not/);
  });
});

describe('the boundary', () => {
  it('describes system errors from libraries in one line', () => {
    const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', path: '/x/y.log' });
    expect(describeUserError(enoent)).toEqual({
      message: '/x/y.log: no such file or directory (check the path)',
      exitCode: EXIT.usage,
    });
    expect(describeUserError(new UserError('m', 5))).toEqual({ message: 'm', exitCode: 5 });
    expect(describeUserError(new TypeError('x is undefined'))).toBeUndefined();
  });

  it('reports a bug in one line too, with the stack only under GATEWATCH_DEBUG', () => {
    const script = `import { withErrorBoundary } from '${new URL('./errors.ts', import.meta.url).href}';
await withErrorBoundary(async () => { throw new TypeError('boom'); });`;
    const run = (env: NodeJS.ProcessEnv) =>
      spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
    const plain = run({ ...process.env, GATEWATCH_DEBUG: '' });
    expect(plain.status).toBe(EXIT.software);
    expect(plain.stderr.trimEnd().split('\n')).toEqual([
      'gatewatch: unexpected error: boom (a bug: run again with GATEWATCH_DEBUG=1 for the stack trace and report it)',
    ]);
    const debug = run({ ...process.env, GATEWATCH_DEBUG: '1' });
    expect(debug.status).toBe(EXIT.software);
    expect(debug.stderr).toMatch(/TypeError: boom\n\s+at /);
  });
});
