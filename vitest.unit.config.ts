import { defineConfig } from 'vitest/config';

/**
 * The fast layer: pure rules and step handlers against in-memory fakes. No Docker, Redis, nginx or
 * network, so `npx vitest run --config vitest.unit.config.ts` finishes in seconds.
 */
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 5_000,
    env: { TZ: 'UTC' },
  },
});
