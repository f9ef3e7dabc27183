#!/usr/bin/env node
/**
 * The `gatewatch` command: the command tree (cli/program.ts) inside the CLI's error boundary
 * (cli/errors.ts). A command's code is imported only when it runs.
 */
import { enableCompileCache } from 'node:module';

// Keep V8's compiled code (and Node's type-stripped TypeScript) between runs, in the OS
// temporary directory: a command then starts in about half the CPU time. Best effort.
enableCompileCache();

const { withErrorBoundary } = await import('./errors.ts');
const { buildProgram } = await import('./program.ts');
await withErrorBoundary(() => buildProgram().parseAsync(process.argv));
