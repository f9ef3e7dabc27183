/**
 * What the API answers when rule work in the sandbox (sandbox.ts) is refused or stopped: a
 * problem that says what to do, never a bare 500.
 */
import { HttpProblem } from '../problem.ts';
import { SandboxBusyError, SandboxMemoryError, SandboxTimeoutError } from './sandbox.ts';

/** Run sandbox work; `kind` says whether it checks text (check) or reads stored events (preview). */
export async function sandboxed<T>(kind: 'check' | 'preview', work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof SandboxBusyError) {
      throw new HttpProblem(
        503,
        'busy',
        `rule ${kind === 'preview' ? 'previews' : 'checks'} are at capacity on this server; retry shortly`,
        { headers: { 'retry-after': '5' } },
      );
    }
    if (err instanceof SandboxTimeoutError || err instanceof SandboxMemoryError) {
      const why = err instanceof SandboxTimeoutError ? err.message : `stopped: it ${err.message}`;
      throw kind === 'preview'
        ? new HttpProblem(
            422,
            'preview-too-expensive',
            `the preview was ${why}; narrow the time range or the rule`,
          )
        : new HttpProblem(422, 'rule-too-complex', `checking this text was ${why}; shorten or split it`);
    }
    throw err;
  }
}
