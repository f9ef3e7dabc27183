/**
 * Entry point of the test API as its own process: `node range/api/main.ts --seed N --port P`.
 * Prints "listening <port>" once it accepts connections; exits on SIGTERM/SIGINT.
 */
import { buildWorld } from '../world.ts';
import { createRangeApi } from './server.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const seed = Number(arg('seed') ?? '1');
const port = Number(arg('port') ?? '0');
if (!Number.isInteger(seed) || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('range api: --seed and --port must be integers');
  process.exit(2);
}
const server = createRangeApi(buildWorld(seed));
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  console.log(`listening ${typeof addr === 'object' && addr !== null ? addr.port : port}`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
