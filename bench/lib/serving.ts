import { sleep } from './stats.js';

/**
 * Until `streak` requests in a row answer `colour`, each on a fresh connection (a reload may reset
 * idle keep-alive ones). `pauseMs` between misses polls gently where flightdeck shares the CPU.
 */
export async function untilServing(
  url: string,
  colour: string,
  { streak = 20, pauseMs = 0 }: { streak?: number; pauseMs?: number } = {},
): Promise<void> {
  let seen = 0;
  while (seen < streak) {
    const body = await fetch(url, { headers: { connection: 'close' } })
      .then((r) => r.text())
      .then(
        (t) => t.trim(),
        () => 'error',
      );
    seen = body === colour ? seen + 1 : 0;
    if (seen === 0 && pauseMs > 0) await sleep(pauseMs);
  }
}
