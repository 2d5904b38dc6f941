import { describe, expect, it } from 'vitest';
import {
  compareProportions,
  fisherGreater,
  histogramOf,
  histogramQuantile,
  lnGamma,
  mannWhitneyBuckets,
  normalCdf,
  normalSf,
  verdictOf,
} from '../../src/releases/gate-stats.js';

// Reference values from SciPy 1.17 (scipy.stats.norm, fisher_exact, mannwhitneyu asymptotic with
// continuity correction), computed on this machine.
const h = (b: Record<string, number>) => histogramOf(Object.entries(b).map(([le, value]) => ({ le, value })));

describe('normal distribution', () => {
  it('gives the tails of the standard normal to 1e-7', () => {
    expect(normalSf(1.6448536)).toBeCloseTo(0.05, 7);
    expect(normalSf(3)).toBeCloseTo(0.0013498980316, 8);
    expect(normalCdf(-2)).toBeCloseTo(0.0227501319, 7);
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
  });

  it('computes ln Γ like the factorial', () => {
    expect(lnGamma(10)).toBeCloseTo(Math.log(362_880), 10);
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 10);
  });
});

describe('two proportions', () => {
  it('uses Fisher’s exact test on small counts (SciPy: 0.242857, 3.15104e-5)', () => {
    expect(fisherGreater(3, 4, 1, 4)).toBeCloseTo(0.242857142857, 9);
    const t = compareProportions(5, 100, 1, 1000);
    expect(t.test).toBe('fisher');
    expect(t.pValue).toBeCloseTo(3.151040092e-5, 10);
  });

  it('uses the pooled z-test on large counts (SciPy: z 2.05196, p 0.0200869)', () => {
    const t = compareProportions(60, 1000, 40, 1000);
    expect(t.test).toBe('z');
    expect(t.z).toBeCloseTo(2.051956704, 6);
    expect(t.pValue).toBeCloseTo(0.020086935, 6);
    console.log('z-test 60/1000 vs 40/1000:', t);
  });

  it('finds nothing when the ratios are equal, or when neither colour has errors', () => {
    expect(compareProportions(50, 10_000, 50, 10_000).pValue).toBeCloseTo(0.5, 6);
    expect(compareProportions(0, 500, 0, 5_000).pValue).toBe(1);
  });
});

describe('histograms', () => {
  const canary = h({ '0.1': 50, '0.25': 120, '0.5': 180, '1': 195, '+Inf': 200 });
  const stable = h({ '0.1': 80, '0.25': 160, '0.5': 190, '1': 198, '+Inf': 200 });

  it('interpolates quantiles like histogram_quantile', () => {
    expect(histogramQuantile(0.95, canary)).toBeCloseTo(0.8333333, 6);
    expect(histogramQuantile(0.95, stable)).toBeCloseTo(0.5, 6);
    expect(histogramQuantile(0.5, h({ '1': 0, '2': 10, '+Inf': 10 }))).toBeCloseTo(1.5, 9);
    // In the +Inf bucket: the largest finite bound.
    expect(histogramQuantile(0.99, h({ '1': 5, '+Inf': 10 }))).toBe(1);
    expect(histogramQuantile(0.5, h({}))).toBeUndefined();
  });

  it('keeps cumulative counts monotone and sums series of one le', () => {
    const x = histogramOf([
      { le: '0.1', value: 5 },
      { le: '0.1', value: 5 },
      { le: '0.2', value: 9.5 },
      { le: '+Inf', value: 12 },
    ]);
    expect(x.cumulative).toEqual([10, 10, 12]);
  });

  it('runs Mann-Whitney U over bucket counts with ties (SciPy: U 24805, p 6.01296e-6)', () => {
    const mw = mannWhitneyBuckets(canary, stable);
    expect(mw.u).toBe(24_805);
    expect(mw.pValue).toBeCloseTo(6.012955817e-6, 10);
    expect(mw.effect).toBeCloseTo(0.620125, 6);
    console.log('Mann-Whitney over buckets:', mw);
  });

  it('sees no shift between equal distributions and a significant one the other way round as not slower', () => {
    expect(mannWhitneyBuckets(canary, canary).pValue).toBeGreaterThan(0.45);
    expect(mannWhitneyBuckets(stable, canary).pValue).toBeGreaterThan(0.99);
  });

  it('handles histograms with different bounds', () => {
    const a = h({ '0.1': 10, '0.5': 20, '+Inf': 20 });
    const b = h({ '0.1': 10, '0.25': 15, '0.5': 20, '+Inf': 20 });
    expect(mannWhitneyBuckets(a, b).n1).toBe(20);
    expect(mannWhitneyBuckets(a, b).pValue).toBeGreaterThan(0.05);
  });
});

describe('verdict', () => {
  it('fails only beyond the margin with the confidence; marginal at the lower bar', () => {
    expect(verdictOf(0.01, true, 0.95, 0.8)).toBe('fail');
    expect(verdictOf(0.1, true, 0.95, 0.8)).toBe('marginal');
    expect(verdictOf(0.3, true, 0.95, 0.8)).toBe('pass');
    expect(verdictOf(1e-9, false, 0.95, 0.8)).toBe('pass');
  });
});
