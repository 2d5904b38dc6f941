import { createServer } from 'node:net';

// Ports handed out by freePort. Test files run two at a time, each in its own process: asking the
// kernel for "any free port" lets two of them get the same one between the check and the bind, and
// then a suite talks to another suite's server. So each vitest worker (VITEST_POOL_ID, unique among
// the workers running at once) draws from its own block, below the kernel's ephemeral range
// (32768-60999) where no outgoing connection lands, and never hands a port out twice.
const BLOCK = 1_000;
// 10000-27999 without 18000-18999: the fixed ports suites publish are 18080 and 28200 up.
const BLOCKS = Array.from({ length: 18 }, (_, i) => 10_000 + i * BLOCK).filter((b) => b !== 18_000);
const slot = (() => {
  const pool = Number(process.env.VITEST_POOL_ID);
  // Outside vitest (bench, scripts): one of the upper blocks, by pid.
  return Number.isInteger(pool) && pool >= 1 && pool <= 8
    ? pool - 1
    : 8 + (process.pid % (BLOCKS.length - 8));
})();
const first = BLOCKS[slot] as number;
let cursor = 0;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free loopback TCP port of this process's own block, never the same one twice. */
export async function freePort(): Promise<number> {
  while (cursor < BLOCK) {
    const port = first + cursor++;
    if (await bindable(port)) return port;
  }
  throw new Error(`freePort: all ${BLOCK} ports from ${first} are used`);
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`,
  );
}
