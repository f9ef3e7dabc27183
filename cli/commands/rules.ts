/**
 * `gatewatch rules validate|fmt` — the rule language's CI tools (parser/cli.ts).
 */
import { rulesFmt, rulesValidate } from '../../parser/cli.ts';

const io = { stdout: process.stdout, stderr: process.stderr };

export async function validate(paths: string[], opts: { json?: boolean }): Promise<void> {
  process.exitCode = await rulesValidate(paths, { json: opts.json ?? false }, io);
}

export async function fmt(paths: string[], opts: { write?: boolean; check?: boolean }): Promise<void> {
  process.exitCode = await rulesFmt(paths, opts, io);
}
