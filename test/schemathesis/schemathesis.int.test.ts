/**
 * Runs test/schemathesis/run.sh (schemathesis against the live API, driven by its OpenAPI
 * document) on the harness's Elasticsearch and Redis. Fails with one line when schemathesis
 * is not installed: never skipped silently.
 */
import { spawn, spawnSync } from 'node:child_process';
import { expect, inject, test } from 'vitest';

function schemathesisPresent(): boolean {
  if (spawnSync('sh', ['-c', 'command -v schemathesis'], { stdio: 'ignore' }).status === 0) return true;
  return spawnSync('python3', ['-c', 'import schemathesis'], { stdio: 'ignore' }).status === 0;
}

test('schemathesis finds no 5xx and no response breaking its own schema', async () => {
  if (!schemathesisPresent()) {
    throw new Error('schemathesis is not installed: pip install schemathesis');
  }
  const child = spawn('test/schemathesis/run.sh', [], {
    env: {
      ...process.env,
      ELASTICSEARCH_URL: inject('elasticsearchUrl'),
      REDIS_URL: inject('redisUrl'),
      ST_MAX_EXAMPLES: process.env.ST_MAX_EXAMPLES ?? '10',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) {
    // The failures section carries the reproducing requests; the summary follows it.
    const at = output.indexOf('FAILURES');
    const from = Math.max(at, 0);
    console.error(output.slice(from, from + 40_000));
  }
  expect(code, 'schemathesis run failed (output above)').toBe(0);
  expect(output).toMatch(/passed/);
});
