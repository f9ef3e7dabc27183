/**
 * What `serve` prints gets a newcomer to the API docs (issue 19, item 12): without
 * --public-docs /docs needs a key a browser cannot send, so the output says how to
 * authenticate (and the printed curl works); with --public-docs the printed link opens.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, spawnCli } from './test-helpers.ts';

const db = join(mkdtempSync(join(tmpdir(), 'gw-serve-')), 'store.sqlite');

/** Start serve, wait for its start-up message, return it with a stop function. */
async function serve(args: string[]) {
  const child = spawnCli(['serve', '--embedded', '--db', db, '--port', '0', ...args]);
  let err = '';
  const message = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      if (/API docs: .*\n/.test(err)) resolve(err);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  const url = /listening on (http:\/\/\S+)/.exec(message)![1]!;
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return { message, url, stdout: () => out, stop: () => child.kill('SIGTERM') };
}

describe('serve start-up message', () => {
  it('without --public-docs: says how to authenticate, and that way works', async () => {
    const key = JSON.parse(
      runCli(['keys', 'create', '--embedded', '--db', db, '--role', 'viewer', '--json']).stdout,
    ).token as string;
    const s = await serve([]);
    try {
      expect((await fetch(`${s.url}/docs`)).status).toBe(401);
      expect(s.message).toContain('--public-docs');
      expect(s.message).toContain(`keys create --embedded --db ${db}`);
      const curl = /curl -H "Authorization: Bearer <key>" (\S+)/.exec(s.message)?.[1];
      expect(curl).toBe(`${s.url}/openapi.json`);
      const spec = await fetch(curl!, { headers: { authorization: `Bearer ${key}` } });
      expect(spec.status).toBe(200);
      expect(((await spec.json()) as { openapi: string }).openapi).toMatch(/^3\./);
    } finally {
      s.stop();
    }
  });

  it('with --public-docs: the printed docs link opens without a key', async () => {
    const s = await serve(['--public-docs']);
    try {
      const link = /API docs: (\S+)/.exec(s.message)![1]!;
      expect((await fetch(link)).status).toBe(200);
    } finally {
      s.stop();
    }
  });

  it('--console-key prints a console link signed in with a new key of that role; a bad role is one line', async () => {
    const s = await serve(['--console-key', 'analyst']);
    try {
      expect(s.message).toContain(`console: ${s.url}/`);
      let link: RegExpExecArray | null = null;
      for (let i = 0; i < 100 && !link; i++) {
        link = /(http:\/\/\S+)\/#key=(\S+)/.exec(s.stdout());
        if (!link) await new Promise((r) => setTimeout(r, 100));
      }
      expect(link?.[1]).toBe(s.url);
      const r = await fetch(`${s.url}/api/v1/incidents?limit=1`, {
        headers: { authorization: `Bearer ${link![2]}` },
      });
      expect(r.status).toBe(200);
    } finally {
      s.stop();
    }
    const bad = runCli(['serve', '--embedded', '--db', db, '--console-key', 'root']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trimEnd().split('\n')).toEqual([
      'gatewatch: serve: --console-key must be one of viewer, analyst, admin, not "root"',
    ]);
  });
});
