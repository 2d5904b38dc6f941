/** Small statistics for the benchmarks: nearest-rank percentiles, rounding, bounded concurrency. */

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

export const median = (xs: number[]) => pct(xs, 50);

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Runs fn(0…n-1) with at most `concurrency` in flight; results in index order. */
export async function inBatches<T>(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<T>,
): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
