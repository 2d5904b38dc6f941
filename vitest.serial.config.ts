import { defineConfig } from 'vitest/config';

// Suites that disturb every other user of the machine's daemons (e.g. restarting dockerd kills
// every Swarm task): one file at a time, after the parallel suite (see package.json "test").
export default defineConfig({
  test: {
    include: ['test/faults/serial/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    env: { TZ: 'UTC' },
  },
});
