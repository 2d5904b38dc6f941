import { defineConfig } from 'vitest/config';

/**
 * The fast layer: pure rules and step handlers against in-memory fakes. No Docker, Redis, nginx or
 * network, so `npx vitest run --config vitest.unit.config.ts` finishes in seconds.
 */
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    // These files share no mutable module state, so one module graph per worker is safe and several
    // times cheaper than a fresh one per file (zod, date-fns and the schemas load once). A file that
    // needs vi.mock, vi.stubGlobal or module-level state must not rely on a fresh module instance.
    pool: 'threads',
    isolate: false,
    testTimeout: 5_000,
    env: { TZ: 'UTC' },
  },
});
