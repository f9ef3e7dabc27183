/**
 * Issue 18.6, embedded mode: without a configured secret each database keeps its own, in the
 * SQLite file: a key seen again in the same file has the same fingerprint, another file's
 * fingerprints are unrelated, and a configured secret wins.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import { createIdentityResolver } from '../ingest/transforms/identity.ts';
import { replay } from './replay.ts';
import { EmbeddedStore } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'gw-embedded-secret-'));
const API_KEY = 'embedded-test-api-key-0001';
const line = (n: number) =>
  JSON.stringify({
    request: {
      id: `r${n}`,
      uri: `/v1/items/${n}`,
      method: 'GET',
      headers: { host: 'api.example', 'x-api-key': API_KEY },
    },
    response: { status: 200 },
    latencies: { kong: 1, proxy: 5, request: 7 },
    client_ip: '203.0.113.5',
    started_at: 1_704_448_800_000 + n * 1000,
  });
const file = (name: string, n: number) => {
  const path = join(dir, name);
  writeFileSync(path, `${line(n)}\n`);
  return path;
};

async function fingerprintIn(
  db: string,
  input: string,
  ingest: Record<string, unknown> = {},
): Promise<string> {
  const store = new EmbeddedStore(db);
  try {
    await replay([input], {
      config: loadConfig({ env: {}, overrides: { ingest } }),
      store,
      rules: [],
      now: () => 0,
    });
    const docs = store.db.prepare('SELECT doc FROM events').all() as { doc: string }[];
    const fps = docs.map(
      (d) =>
        (JSON.parse(d.doc) as { gatewatch?: { api_key?: { fingerprint?: string } } }).gatewatch?.api_key
          ?.fingerprint,
    );
    expect(new Set(fps).size).toBe(1);
    return fps[0]!;
  } finally {
    store.close();
  }
}

describe('embedded fingerprint secret', () => {
  it('is kept per database file: same key, same fingerprint in one file, another in another', async () => {
    const a = join(dir, 'a.sqlite');
    const first = await fingerprintIn(a, file('one.log', 1));
    const again = await fingerprintIn(a, file('two.log', 2));
    expect(again).toBe(first);
    const other = await fingerprintIn(join(dir, 'b.sqlite'), file('three.log', 3));
    expect(other).not.toBe(first);
    // it lives in the file
    const store = new EmbeddedStore(a);
    try {
      const kept = store.getJson<{ secret: string }>('fingerprint-secret')!.secret;
      expect(createIdentityResolver({ fingerprintSecret: kept }).fingerprint(API_KEY)).toBe(first);
    } finally {
      store.close();
    }
  });

  it('uses a configured secret instead', async () => {
    const own = 'embedded-configured-secret-0123456789';
    expect(await fingerprintIn(join(dir, 'c.sqlite'), file('four.log', 4), { fingerprintSecret: own })).toBe(
      createIdentityResolver({ fingerprintSecret: own }).fingerprint(API_KEY),
    );
  });
});
