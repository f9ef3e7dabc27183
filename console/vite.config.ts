/**
 * The console's build: Preact with Vite, into console/dist (served by api/console.ts).
 * No inline scripts or styles in the output (the server's CSP forbids them), and the rule
 * editor (CodeMirror) in its own chunk, loaded by the pages that edit rule text.
 */
import { resolve } from 'node:path';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  build: {
    outDir: resolve(import.meta.dirname, 'dist'),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
  },
  // `npx vite --config console/vite.config.ts`: the console with hot reload, the API of a
  // `gatewatch serve` on 127.0.0.1:8080 behind it.
  server: {
    proxy: Object.fromEntries(
      ['/api', '/health', '/openapi.json'].map((path) => [path, 'http://127.0.0.1:8080']),
    ),
  },
  logLevel: 'warn',
});
