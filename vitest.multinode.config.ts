import { defineConfig } from 'vitest/config';

// Suites on the multi-node Swarm bed (scripts/multinode.sh): one file at a time, since they share the
// bed's three nodes, after the serial run (see package.json "test"). Images come from the bed's
// registry; a first `up` builds and pushes them, hence the long hook timeout.
export default defineConfig({
  test: {
    include: ['test/multinode/**/*.test.ts'],
    globalSetup: ['test/multinode/global-setup.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 300_000,
    hookTimeout: 900_000,
    env: { TZ: 'UTC' },
  },
});
