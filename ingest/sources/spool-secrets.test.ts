/**
 * The syslog spool is a store at rest too: what it writes while Redis is away is scrubbed as it
 * would be in Redis.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createScrubber } from '../transforms/scrub.ts';
import { Spool } from './spool.ts';

describe('syslog spool', () => {
  it('writes records scrubbed, and drains them as written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-spool-secrets-'));
    const spool = new Spool({
      dir,
      name: 'syslog',
      maxBytes: 1 << 20,
      scrub: createScrubber({ fingerprintSecret: 's'.repeat(16) }),
    });
    const secret = 'sp00led-Pa55word';
    expect(spool.append('198.51.100.1', [`GET /login?password=${secret} HTTP/1.1`, 'no secret here'])).toBe(
      true,
    );
    const written = readdirSync(dir)
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('');
    expect(written).toContain('no secret here');
    expect(written).toContain('password=[REDACTED:');
    expect(written).not.toContain(secret);
    const drained: string[] = [];
    await spool.drain(async (_peer, records) => {
      drained.push(...records);
    }, 10);
    expect(drained).toHaveLength(2);
    expect(drained.join('\n')).not.toContain(secret);
  });
});
