/**
 * The statistics of the compare gates: plain functions, no I/O.
 *
 * - Error ratios: a one-sided two-proportion test of "the canary's error ratio is higher than the
 *   stable colour's": Fisher's exact test when an expected cell count is small (< 5), else the pooled
 *   two-proportion z-test (Agresti, *Categorical Data Analysis*, 3rd ed., §3.1 and §3.5).
 * - Latency: the Mann-Whitney U test over the two histograms' bucket counts, every observation in a
 *   bucket tied with the others there (mid-ranks, with the tie correction of the variance; Lehmann,
 *   *Nonparametrics*, ch. 1 §4), plus the quantile of each histogram interpolated like Prometheus's
 *   `histogram_quantile`.
 */

/**
 * erfc(x), Chebyshev fit with fractional error below 1.2e-7 everywhere (Press et al., *Numerical
 * Recipes in C*, 2nd ed., §6.2, `erfcc`). Ample for p-values compared with 0.05 or 0.2.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const ans =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? ans : 2 - ans;
}

/** P(Z ≤ z) for a standard normal Z: Φ(z) = erfc(−z/√2) / 2. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** P(Z > z), computed directly so tiny upper tails keep their precision. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0, Lanczos approximation g = 7, n = 9 (relative error about 1e-15). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0] as number;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += (LANCZOS[i] as number) / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

const lnChoose = (n: number, k: number) => lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);

/**
 * One-sided Fisher exact test: P(X ≥ a) where X, the canary's errors, is hypergeometric given the
 * margins (n1 canary requests, n0 stable requests, a + b errors in all).
 */
export function fisherGreater(a: number, n1: number, b: number, n0: number): number {
  const errors = a + b;
  const total = n1 + n0;
  const hi = Math.min(errors, n1);
  const denom = lnChoose(total, errors);
  let p = 0;
  for (let k = a; k <= hi; k++) p += Math.exp(lnChoose(n1, k) + lnChoose(n0, errors - k) - denom);
  return Math.min(1, p);
}

export interface ProportionTest {
  /** One-sided p-value of "the canary's ratio is higher". */
  pValue: number;
  test: 'fisher' | 'z';
  canaryRatio: number;
  stableRatio: number;
  z?: number;
}

/**
 * Is the canary's error ratio (e1 of n1) higher than the stable colour's (e0 of n0)? Fisher's exact
 * test when any expected cell count under "no difference" is below 5 (Cochran's rule), else the pooled
 * z-test. Counts from `increase()` may be fractional: they are rounded for Fisher.
 */
export function compareProportions(e1: number, n1: number, e0: number, n0: number): ProportionTest {
  const canaryRatio = n1 > 0 ? e1 / n1 : 0;
  const stableRatio = n0 > 0 ? e0 / n0 : 0;
  const pooled = (e1 + e0) / (n1 + n0);
  const expected = [n1 * pooled, n1 * (1 - pooled), n0 * pooled, n0 * (1 - pooled)];
  if (Math.min(...expected) < 5) {
    const [a, m1, b, m0] = [e1, n1, e0, n0].map(Math.round) as [number, number, number, number];
    return { pValue: fisherGreater(a, m1, b, m0), test: 'fisher', canaryRatio, stableRatio };
  }
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0));
  const z = (canaryRatio - stableRatio) / se;
  return { pValue: normalSf(z), test: 'z', canaryRatio, stableRatio, z };
}

/** One histogram: upper bounds (`le`, +Inf last) and the cumulative count at each. */
export interface Histogram {
  le: number[];
  cumulative: number[];
}

/** Series of `sum by (le) (increase(…_bucket[w]))` into one histogram (sorted, cumulative kept monotone). */
export function histogramOf(series: Array<{ le: string; value: number }>): Histogram {
  const byLe = new Map<number, number>();
  for (const s of series) {
    const le = s.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.le);
    if (Number.isNaN(le) || Number.isNaN(s.value)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const le = [...byLe.keys()].sort((a, b) => a - b);
  let max = 0;
  // increase() of each bucket is extrapolated on its own: keep the cumulative counts monotone.
  const cumulative = le.map((l) => {
    max = Math.max(max, byLe.get(l) ?? 0);
    return max;
  });
  return { le, cumulative };
}

export const histogramCount = (h: Histogram) => h.cumulative.at(-1) ?? 0;

/** The count at or under `le` (the largest bound of h not above it), for histograms with other bounds. */
function cumulativeAt(h: Histogram, le: number): number {
  let c = 0;
  for (let i = 0; i < h.le.length && (h.le[i] as number) <= le; i++) c = h.cumulative[i] as number;
  return c;
}

/**
 * The q-quantile as Prometheus's `histogram_quantile` gives it: linear interpolation inside the
 * bucket holding rank q·count, the first bucket starting at 0; in the +Inf bucket, the largest finite
 * bound. undefined for an empty histogram.
 */
export function histogramQuantile(q: number, h: Histogram): number | undefined {
  const total = histogramCount(h);
  if (total <= 0 || h.le.length === 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < h.le.length; i++) {
    const upper = h.le[i] as number;
    const cum = h.cumulative[i] as number;
    if (cum < rank) continue;
    if (upper === Number.POSITIVE_INFINITY) {
      const finite = h.le.filter((l) => Number.isFinite(l));
      return finite.at(-1);
    }
    const lower = i === 0 ? Math.min(0, upper) : (h.le[i - 1] as number);
    const below = i === 0 ? 0 : (h.cumulative[i - 1] as number);
    const inBucket = cum - below;
    if (inBucket <= 0) return upper;
    return lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return h.le.filter((l) => Number.isFinite(l)).at(-1);
}

export interface RankTest {
  /** U of the canary: pairs (canary, stable) with the canary slower, ties counting half. */
  u: number;
  /** U / (n1·n0): the chance a canary request is slower than a stable one (0.5: no shift). */
  effect: number;
  z: number;
  /** One-sided p-value of "the canary is slower". */
  pValue: number;
  n1: number;
  n0: number;
}

/**
 * Mann-Whitney U over two histograms' bucket counts. Requests in one bucket are indistinguishable, so
 * each bucket is a group of ties: U counts, for each canary request, the stable requests in lower
 * buckets plus half those in its own; the variance uses the tie correction
 * σ² = n1·n0/12 · ((N+1) − Σ(t³ − t)/(N(N−1))), t the requests in a bucket of both histograms together.
 * A normal approximation with a continuity correction of ½ (sample sizes here are ≥ the gate's minimum).
 */
export function mannWhitneyBuckets(canary: Histogram, stable: Histogram): RankTest {
  const bounds = [...new Set([...canary.le, ...stable.le])].sort((a, b) => a - b);
  const n1 = histogramCount(canary);
  const n0 = histogramCount(stable);
  let u = 0;
  let ties = 0;
  let stableBelow = 0;
  let prevC = 0;
  let prevS = 0;
  for (const le of bounds) {
    const c = cumulativeAt(canary, le);
    const s = cumulativeAt(stable, le);
    const ci = c - prevC;
    const si = s - prevS;
    u += ci * (stableBelow + si / 2);
    const t = ci + si;
    ties += t * t * t - t;
    stableBelow += si;
    prevC = c;
    prevS = s;
  }
  const total = n1 + n0;
  const mean = (n1 * n0) / 2;
  const variance = total > 1 ? ((n1 * n0) / 12) * (total + 1 - ties / (total * (total - 1))) : 0;
  if (variance <= 0 || n1 === 0 || n0 === 0)
    return { u, effect: n1 * n0 > 0 ? u / (n1 * n0) : 0.5, z: 0, pValue: 1, n1, n0 };
  const diff = u - mean;
  const z = (diff - Math.sign(diff) * 0.5) / Math.sqrt(variance);
  return { u, effect: u / (n1 * n0), z, pValue: normalSf(z), n1, n0 };
}

export type Verdict = 'pass' | 'marginal' | 'fail';

/**
 * The rule both compare gates share. Worse beyond the margin with the gate's confidence: fail. Worse
 * beyond the margin, significant only at the lower `marginalConfidence`: marginal (a person decides).
 * Otherwise pass: not worse, or worse but within the margin (a difference the gate allows, however
 * certain), or beyond the margin by chance as far as the data can tell.
 */
export function verdictOf(
  pValue: number,
  beyondMargin: boolean,
  confidence: number,
  marginalConfidence: number,
): Verdict {
  if (!beyondMargin) return 'pass';
  if (pValue < 1 - confidence) return 'fail';
  if (pValue < 1 - marginalConfidence) return 'marginal';
  return 'pass';
}
