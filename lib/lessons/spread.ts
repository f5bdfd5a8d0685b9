/** Repeated measurements summarized: the mean and the range, and the only differences a lesson claims. */

/** Mean, smallest and largest of repeated measurements. */
export interface Spread {
  mean: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread {
  if (values.length === 0) throw new RangeError('spread: no values');
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/** "12.3 (11.8-13.0)"; "-0.1 (-0.2 to 0.1)" when a minus sign would blur the range. */
export function formatSpread(s: Spread, digits = 1): string {
  if (s.n <= 1) return s.mean.toFixed(digits);
  const to = s.min < 0 ? ' to ' : '-';
  return `${s.mean.toFixed(digits)} (${s.min.toFixed(digits)}${to}${s.max.toFixed(digits)})`;
}

/** Whether two sets of at least two repeats each do not overlap: the only differences a lesson claims. */
export function separated(a: Spread, b: Spread): boolean {
  return a.n >= 2 && b.n >= 2 && (a.max < b.min || b.max < a.min);
}
