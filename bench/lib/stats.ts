/**
 * Small, distribution-free statistics for benchmarks on a noisy shared machine: medians, spreads and a
 * confidence interval for a median from order statistics (no normality assumed: run times here are
 * skewed by whatever else the 2 cores are doing).
 */

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** min, max, interquartile range, and (max - min) / median in percent. */
export function spread(xs: readonly number[]) {
  const med = median(xs);
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  return {
    median: med,
    min,
    max,
    q1: quantile(xs, 0.25),
    q3: quantile(xs, 0.75),
    rangePercent: ((max - min) / med) * 100,
  };
}

function binomCdfHalf(n: number, k: number): number {
  let sum = 0;
  let c = 1; // C(n, 0)
  for (let i = 0; i <= k; i++) {
    sum += c;
    c = (c * (n - i)) / (i + 1);
  }
  return sum / 2 ** n;
}

/**
 * Confidence interval for the median of `xs` from order statistics: [x(k), x(n+1-k)] with the largest
 * k whose coverage 1 - 2·P(Bin(n, ½) ≤ k-1) is still ≥ `level`. With fewer than 6 values no k reaches
 * 95%; the widest interval (min, max) is returned with its real, lower coverage.
 */
export function medianCi(xs: readonly number[], level = 0.95) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  let k = 1;
  while (k + 1 <= n / 2 && 1 - 2 * binomCdfHalf(n, k) >= level) k++;
  const coverage = 1 - 2 * binomCdfHalf(n, k - 1);
  return { low: s[k - 1]!, high: s[n - k]!, coverage };
}

export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
