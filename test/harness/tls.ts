/**
 * A throw-away TLS key pair for tests of TLS listeners: a self-signed certificate for
 * localhost and 127.0.0.1 (so clients that validate it, such as librelp, accept it), made with
 * openssl.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { requireCommand } from './processes.ts';

/** Writes key.pem and cert.pem into `dir`; returns their paths. */
export function selfSignedCertificate(dir: string): { key: string; cert: string } {
  const openssl = requireCommand('openssl', 'install openssl to make a test certificate');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const made = spawnSync(openssl, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`);
  return { key, cert };
}
