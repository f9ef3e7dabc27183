import { describe, expect, it } from 'vitest';
import { freePort, MissingPrerequisiteError, requireCommand, which } from './processes.ts';

describe('test harness prerequisites', () => {
  it('finds tools on PATH', () => {
    expect(which('sh')).toMatch(/\/sh$/);
  });

  it('fails at once with one line naming what to install', () => {
    let error: unknown;
    try {
      requireCommand('gatewatch-no-such-tool', 'install it with `apt-get install -y gatewatch-no-such-tool`');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MissingPrerequisiteError);
    expect((error as Error).message).toBe(
      'test harness: `gatewatch-no-such-tool` not found — install it with `apt-get install -y gatewatch-no-such-tool`',
    );
    expect((error as Error).message).not.toContain('\n');
  });

  it('hands out free loopback ports', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
  });
});
