import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkPrerequisites, ProcessRegistry, RangeSetupError } from './processes.ts';

describe('range processes', () => {
  it('names the missing Debian package in one line', () => {
    expect(() => checkPrerequisites([{ pkg: 'hydra', paths: ['/nonexistent/bin/hydra'] }])).toThrow(
      new RangeSetupError('range: missing Debian package hydra — install with: apt-get install -y hydra'),
    );
    expect(() => checkPrerequisites([{ pkg: 'sh', paths: ['/bin/sh'] }])).not.toThrow();
  });

  it('stops a child and the processes it forked (its whole process group)', async () => {
    const reg = new ProcessRegistry();
    try {
      // a shell that forks a long sleep, like hydra forking its tasks
      const p = reg.spawn('forker', '/bin/sh', ['-c', 'sleep 300 & sleep 300 & wait']);
      await new Promise((r) => setTimeout(r, 300));
      const pgid = p.child.pid!;
      // live members of the group (a killed child whose parent is gone may linger as a zombie
      // until init reaps it; it runs nothing)
      const members = () =>
        execFileSync('ps', ['-eo', 'pgid=,stat='], { encoding: 'utf8' })
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter(([g, stat]) => g === String(pgid) && !stat?.startsWith('Z')).length;
      expect(members()).toBe(3);
      await reg.stop(p, 'SIGTERM', 2000);
      expect(members()).toBe(0);
      expect(reg.size).toBe(0);
    } finally {
      await reg.stopAll();
      reg.dispose();
    }
  });
});
