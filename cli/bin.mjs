#!/usr/bin/env node
// The `gatewatch` executable (package.json "bin": `npx gatewatch`, or `gatewatch` on the PATH
// after `npm link`). Plain JavaScript so that any Node can start it: the CLI itself is
// TypeScript run by Node 24's type stripping. On such a Node it runs in this process; on an
// older one (the system Node that runs npm) it runs in the project's own Node 24, the `node`
// dev dependency, with the same arguments, standard streams and exit status.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = realpathSync(fileURLToPath(import.meta.url));
const entry = new URL('./gatewatch.ts', `file://${here}`);

if (process.features.typescript) {
  await import(entry.href);
} else {
  const node = fileURLToPath(new URL('../node_modules/node/bin/node', `file://${here}`));
  if (!existsSync(node)) {
    process.stderr.write(
      `gatewatch: needs Node.js 24 (this is ${process.version}) — run \`npm install\` in ${fileURLToPath(new URL('..', `file://${here}`))} to fetch it, or put Node 24 on the PATH\n`,
    );
    process.exit(69);
  }
  const child = spawn(node, [fileURLToPath(entry), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Ctrl-C reaches the whole process group; this launcher waits for the CLI to finish.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => child.kill(signal));
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}
