import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration files share one broker and one Redis on a 2-core machine; each file uses its
    // own topics, consumer groups and key prefixes, so two files at a time is safe.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'services',
          include: ['test/contract/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          // Fails the run at once when Redis or Kafka is unreachable, instead of skipping.
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
