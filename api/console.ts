/**
 * Serves the analyst console (console/, built into console/dist by `npm run build:console`,
 * which `npm install` runs) at `/`: its page at `/` and at every client-side path, its
 * hashed assets under `/assets/`. The files hold no data, so they need no key; everything
 * the console shows comes from the API with the key the analyst signs in with, sent as a
 * header (never a cookie). Strict Content-Security-Policy: scripts and style sheets only from
 * this origin, no inline script, no framing.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { HttpProblem } from './problem.ts';

export const CONSOLE_DIST = resolve(import.meta.dirname, '..', 'console', 'dist');

/** Paths the console's router answers (the server sends its page for each). */
export const CONSOLE_PAGES = [
  '/',
  '/incidents',
  '/incidents/*',
  '/entities/*',
  '/rules',
  '/rules/*',
  '/events',
  '/inventory',
  '/operations',
];
export const CONSOLE_ASSETS = '/assets/*';

/** Every route of the console (public, not part of the API's OpenAPI document). */
export const CONSOLE_ROUTES = [...CONSOLE_PAGES, CONSOLE_ASSETS];

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Style attributes only (never <style> elements or scripts): CodeMirror sets a few on its
  // editor (e.g. tab-size) and they cannot run code.
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin');
}

export async function consolePlugin(app: FastifyInstance, opts: { root?: string }): Promise<void> {
  const root = opts.root ?? CONSOLE_DIST;
  const built = existsSync(join(root, 'index.html'));
  // sendFile only: the routes are declared here, each with its access level.
  await app.register(fastifyStatic, { root, serve: false });
  const page = async (_request: unknown, reply: FastifyReply) => {
    if (!built) {
      throw new HttpProblem(
        503,
        'console-not-built',
        'the console is not built: run `npm run build:console` (npm install does it)',
      );
    }
    return secure(reply)
      .header('cache-control', 'no-cache')
      .sendFile('index.html', root, { cacheControl: false });
  };
  for (const url of CONSOLE_PAGES) {
    app.get(url, { config: { access: 'public', rateLimit: false }, schema: { hide: true } }, page);
  }
  app.get<{ Params: { '*': string } }>(
    CONSOLE_ASSETS,
    { config: { access: 'public', rateLimit: false }, schema: { hide: true } },
    async (request, reply) => {
      const file = request.params['*'];
      if (!built || !/^[A-Za-z0-9_.-]+$/.test(file) || !existsSync(join(root, 'assets', file))) {
        throw new HttpProblem(404, 'not-found', `no console asset ${file}`);
      }
      // Names carry a content hash: cached for good.
      return secure(reply)
        .header('cache-control', 'public, max-age=31536000, immutable')
        .sendFile(file, join(root, 'assets'), { cacheControl: false });
    },
  );
}
