/**
 * The CLI's error boundary. A mistake a user can make — a missing file, a port in use, a
 * server that is not running, a configuration value — ends the command with one line on
 * stderr saying what is wrong and what to do, and a non-zero exit code; never a stack trace.
 * Commands throw UserError for the mistakes they check; the boundary also recognises the
 * system and connection errors that reach it from libraries (ENOENT, EADDRINUSE,
 * ECONNREFUSED, the Elasticsearch client's ConnectionError). Anything else is a bug: one line
 * too, with the stack under GATEWATCH_DEBUG=1.
 *
 * Imports nothing heavy: it wraps every command, including `--help`.
 */

/** Exit codes (sysexits.h where one fits). */
export const EXIT = {
  /** The command ran and found something wrong (rule errors, a failed test). */
  failure: 1,
  /** The command was called wrongly: a bad flag value, a missing or unreadable input. */
  usage: 2,
  /** A server or service the command needs is unavailable. */
  unavailable: 69,
  /** A bug: an error nobody anticipated. */
  software: 70,
  /** The configuration is invalid. */
  config: 78,
} as const;

/** A mistake the user can fix: `message` says what is wrong and what to do. */
export class UserError extends Error {
  override name = 'UserError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(message);
    this.exitCode = exitCode;
  }
}

interface SystemError extends Error {
  code?: string;
  path?: string;
  address?: string;
  port?: number;
  syscall?: string;
}

/** The URL an Elasticsearch client error was about, when it says. */
function elasticsearchUrl(err: unknown): string | undefined {
  const meta = (err as { meta?: { meta?: { connection?: { url?: URL | string } } } }).meta;
  const url = meta?.meta?.connection?.url;
  return url === undefined ? undefined : String(url).replace(/\/$/, '');
}

/** The one line and exit code for an error, or undefined when it is not a user's mistake. */
export function describeUserError(err: unknown): { message: string; exitCode: number } | undefined {
  if (err instanceof UserError) return { message: err.message, exitCode: err.exitCode };
  if (!(err instanceof Error)) return undefined;
  // core/config/load.ts (by name: importing it would load TypeBox into every command)
  if (err.name === 'ConfigError') return { message: err.message, exitCode: EXIT.config };
  if (err.name === 'ConnectionError' || err.name === 'NoLivingConnectionsError') {
    const url = elasticsearchUrl(err) ?? 'the configured URL';
    return {
      message: `cannot reach Elasticsearch at ${url} (${err.message}): start it, or point elasticsearch.url / ELASTICSEARCH_URL at it`,
      exitCode: EXIT.unavailable,
    };
  }
  if (err.name === 'ResponseError') {
    const status = (err as { meta?: { statusCode?: number } }).meta?.statusCode;
    if (status === 401 || status === 403)
      return {
        message: `Elasticsearch refused the credentials (${status}): check elasticsearch.username / password / apiKey`,
        exitCode: EXIT.config,
      };
  }
  const sys = err as SystemError;
  switch (sys.code) {
    case 'ENOENT':
      if (sys.path)
        return { message: `${sys.path}: no such file or directory (check the path)`, exitCode: EXIT.usage };
      break;
    case 'EACCES':
    case 'EPERM':
      if (sys.path)
        return {
          message: `${sys.path}: permission denied (check the file's permissions)`,
          exitCode: EXIT.usage,
        };
      if (sys.syscall === 'listen')
        return {
          message: `not allowed to listen on ${sys.address ?? ''}:${sys.port ?? ''}: choose a port above 1023`,
          exitCode: EXIT.usage,
        };
      break;
    case 'EISDIR':
      if (sys.path) return { message: `${sys.path} is a directory; give a file`, exitCode: EXIT.usage };
      break;
    case 'EADDRINUSE':
      return {
        message: `${sys.address ?? 'the address'}:${sys.port ?? ''} is already in use: stop the process listening there, or choose another port (--port or the configuration)`,
        exitCode: EXIT.unavailable,
      };
    case 'EADDRNOTAVAIL':
      return {
        message: `cannot listen on ${sys.address ?? 'that address'}: it is not an address of this machine (--host)`,
        exitCode: EXIT.usage,
      };
    case 'ECONNREFUSED':
      return {
        message: `nothing answers at ${sys.address ?? ''}:${sys.port ?? ''} (connection refused): start the server, or check its URL in the configuration`,
        exitCode: EXIT.unavailable,
      };
  }
  return undefined;
}

/** Run the CLI; print a user error in one line and set the exit code. */
export async function withErrorBoundary(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    const known = describeUserError(err);
    if (known) {
      process.stderr.write(`gatewatch: ${known.message}\n`);
      process.exit(known.exitCode);
    }
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
    if (process.env.GATEWATCH_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? message}\n`);
    else
      process.stderr.write(
        `gatewatch: unexpected error: ${message} (a bug: run again with GATEWATCH_DEBUG=1 for the stack trace and report it)\n`,
      );
    process.exit(EXIT.software);
  }
}
