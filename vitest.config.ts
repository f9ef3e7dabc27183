import { defineConfig } from 'vitest/config';

/**
 * Two projects, one command:
 * - `unit`: pure code, no servers (`*.test.ts`).
 * - `integration`: real Redis and Elasticsearch found or started by the global setup
 *   (`*.int.test.ts`). Files run one at a time: the machine has 2 cores and one shared
 *   Elasticsearch node, and each file isolates itself by index/queue prefix anyway.
 */
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: ['**/*.int.test.ts', 'node_modules/**', '.cache/**'],
          pool: 'threads',
          // Generous: the suite must pass on a loaded machine, and no test asserts on time.
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          exclude: ['node_modules/**', '.cache/**'],
          globalSetup: ['test/harness/global-setup.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
