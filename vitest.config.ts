import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Unit tests run first on their own (vitest.unit.config.ts); suites that restart shared daemons run
    // alone afterwards (vitest.serial.config.ts), then the multi-node bed's (vitest.multinode.config.ts).
    exclude: [...configDefaults.exclude, 'test/faults/serial/**', 'test/unit/**', 'test/multinode/**'],
    // Integration suites start real servers; keep two cores from thrashing.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: { TZ: 'UTC' },
  },
});
