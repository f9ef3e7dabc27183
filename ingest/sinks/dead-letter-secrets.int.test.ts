/**
 * Issue 18.2: a line that cannot be parsed still goes through secret scrubbing before it is
 * stored as a dead letter — in Elasticsearch (distributed) and in the SQLite file (embedded).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/load.ts';
import { indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { replay } from '../../embedded/replay.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { createNormalizer } from '../pipeline/normalize.ts';
import { processBatch } from '../pipeline/worker.ts';

const ctx = integrationContext('dead-letter-secrets');

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const JWT = `${b64url({ alg: 'HS256' })}.${b64url({ sub: 'svc-9' })}.ZGVhZC1sZXR0ZXItc2lnbmF0dXJlLXNlY3JldA`;
const SECRETS = {
  jwtSignature: JWT.slice(JWT.lastIndexOf('.') + 1),
  stripe: 'sk_live_51DeadLetterKeyAbCdEf',
  aws: 'AKIADEADLETTER000001',
  github: 'ghp_deadLetterGithubToken0123456789abcd',
  slack: 'xoxb-2000000001-deadletterslack',
  password: 'dl-Pa55word-in-a-form',
  cookie: 'dlSessionCookieValue77',
};

/** Lines no format parses, each carrying secrets (a Bearer JWT, a key in a query string, …). */
const LINES = [
  `GET /api/orders?api_key=${SECRETS.stripe}&page=2 -- no log format looks like this`,
  `{"headers":{"authorization":"Bearer ${JWT}","cookie":"session=${SECRETS.cookie}"}, "truncated`,
  `<<< upstream error: key ${SECRETS.aws} token ${SECRETS.github} hook ${SECRETS.slack} >>>`,
  `user=carol&password=${SECRETS.password}&remember=1`,
  `Authorization: Bearer ${JWT}`,
];

function expectScrubbed(stored: string): void {
  for (const [what, secret] of Object.entries(SECRETS)) expect(stored, what).not.toContain(secret);
  expect(stored).not.toContain(JWT);
  expect(stored).toContain('[REDACTED]');
  // no keyed fingerprint of a secret is stored either
  expect(stored).not.toMatch(/REDACTED:[0-9a-f]/);
}

afterAll(() => ctx.cleanup());

describe('dead letters keep no secret', () => {
  it('in Elasticsearch: the worker stores unparseable lines scrubbed, with their reasons', async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        elasticsearch: { url: ctx.elasticsearchUrl, indexPrefix: ctx.prefix },
        ingest: { fingerprintSecret: 'dead-letter-test-fingerprint-key' },
      },
    });
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    const outcome = await processBatch(
      // as a queue from before scrubbing would hold them: raw
      { source: 'edge', receivedAt: Date.now(), records: LINES },
      { es: ctx.es, prefix: ctx.prefix, normalize: createNormalizer(config), refresh: 'wait_for' },
    );
    expect(outcome.deadLetters).toBe(LINES.length);
    const index = indexNames(ctx.prefix).deadLetters;
    await ctx.es.indices.refresh({ index });
    const found = await ctx.es.search<Record<string, unknown>>({ index, size: 100 });
    expect(found.hits.hits).toHaveLength(LINES.length);
    expectScrubbed(JSON.stringify(found.hits.hits.map((h) => h._source)));
    // still useful: what was around the secrets is kept
    const raws = found.hits.hits.map((h) => String(h._source!.raw));
    expect(raws).toContain('user=carol&password=[REDACTED]&remember=1');
  });

  it('in the embedded SQLite file: a replay stores unparseable lines scrubbed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-dl-secrets-'));
    writeFileSync(join(dir, 'mixed.log'), `${LINES.join('\n')}\n`);
    const store = new EmbeddedStore(join(dir, 'gatewatch.sqlite'));
    try {
      const result = await replay([join(dir, 'mixed.log')], {
        config: loadConfig({ env: {} }),
        store,
        rules: [],
        now: () => Date.UTC(2026, 0, 1),
      });
      expect(result.deadLetters).toBe(LINES.length);
      const rows = store.db.prepare('SELECT raw, reason FROM dead_letters').all();
      expect(rows).toHaveLength(LINES.length);
      expectScrubbed(JSON.stringify(rows));
    } finally {
      store.close();
    }
  });
});
