/**
 * Training-mode batch normalisation over the rows of an [R, C] matrix: one
 * pass for the channel sums (float64, around a per-channel shift so that
 * large means cost no precision), one pass to apply, each way. The sums and
 * the per-channel coefficients are shared with the SIMD kernels.
 */

export interface BatchNormStats {
  mean: Float32Array;
  /** Biased batch variance (divided by R), as used to normalise. */
  variance: Float32Array;
}

/** sum = sum over rows of (x - shift), sq = of (x - shift)^2, per channel. */
export interface ShiftedSums {
  shift: Float64Array;
  sum: Float64Array;
  sq: Float64Array;
}

/** y = x * scale + shift per channel (evaluated in float64, rounded once). */
export interface Affine {
  scale: Float32Array;
  shift: Float32Array;
}

/** dx = k1 * dy + k2 * x + k3 per channel (evaluated in float64, rounded once). */
export interface GradCoefficients {
  k1: Float32Array;
  k2: Float32Array;
  k3: Float32Array;
}

export function shiftedSums(x: Float32Array, C: number, sums: ShiftedSums): void {
  const { shift, sum, sq } = sums;
  const R = x.length / C;
  for (let c = 0; c < C; c++) shift[c] = R > 0 ? x[c] : 0;
  for (let r = 0, i = 0; r < R; r++) {
    for (let c = 0; c < C; c++, i++) {
      const d = x[i] - shift[c];
      sum[c] += d;
      sq[c] += d * d;
    }
  }
}

export function forwardCoefficients(
  sums: ShiftedSums, R: number, gamma: Float32Array, beta: Float32Array, epsilon: number,
  stats: BatchNormStats, affine: Affine,
): void {
  for (let c = 0; c < gamma.length; c++) {
    const d = sums.sum[c] / R;
    const mean = sums.shift[c] + d;
    const variance = Math.max(0, sums.sq[c] / R - d * d);
    // the shift uses the float32 scale, so that y - beta = (x - mean) * scale as stored
    const scale = Math.fround(gamma[c] / Math.sqrt(variance + epsilon));
    stats.mean[c] = mean;
    stats.variance[c] = variance;
    affine.scale[c] = scale;
    affine.shift[c] = beta[c] - mean * scale;
  }
}

export function applyAffine(x: Float32Array, affine: Affine, y: Float32Array): void {
  const { scale, shift } = affine;
  const C = scale.length;
  for (let i = 0; i < x.length; i += C) {
    for (let c = 0; c < C; c++) y[i + c] = x[i + c] * scale[c] + shift[c];
  }
}

export function batchNormForward(
  x: Float32Array, gamma: Float32Array, beta: Float32Array, epsilon: number,
  y: Float32Array, stats: BatchNormStats,
): void {
  const C = gamma.length;
  const sums: ShiftedSums = { shift: new Float64Array(C), sum: new Float64Array(C), sq: new Float64Array(C) };
  shiftedSums(x, C, sums);
  const affine: Affine = { scale: new Float32Array(C), shift: new Float32Array(C) };
  forwardCoefficients(sums, x.length / C, gamma, beta, epsilon, stats, affine);
  applyAffine(x, affine, y);
}

/** sumDy = sum over rows of dy, sumDyXc = of dy * (x - mean), per channel. */
export function gradSums(dy: Float32Array, x: Float32Array, mean: Float32Array, sumDy: Float64Array, sumDyXc: Float64Array): void {
  const C = mean.length;
  for (let i = 0; i < x.length; i += C) {
    for (let c = 0; c < C; c++) {
      const g = dy[i + c];
      sumDy[c] += g;
      sumDyXc[c] += g * (x[i + c] - mean[c]);
    }
  }
}

/**
 * With xhat = (x - mean) / sqrt(var + eps): dbeta = sum dy, dgamma = sum dy xhat,
 * dx = gamma / sqrt(var + eps) * (dy - dbeta / R - xhat dgamma / R).
 */
export function gradCoefficients(
  sumDy: Float64Array, sumDyXc: Float64Array, R: number, mean: Float32Array, variance: Float32Array,
  gamma: Float32Array, epsilon: number, dGamma: Float32Array, dBeta: Float32Array, k: GradCoefficients,
): void {
  for (let c = 0; c < gamma.length; c++) {
    const is = 1 / Math.sqrt(variance[c] + epsilon);
    const g = gamma[c] * is;
    const k2 = Math.fround(-g * is * is * sumDyXc[c] / R);
    dBeta[c] = sumDy[c];
    dGamma[c] = sumDyXc[c] * is;
    k.k1[c] = g;
    k.k2[c] = k2;
    k.k3[c] = -g * sumDy[c] / R - k2 * mean[c];
  }
}

export function applyGrad(dy: Float32Array, x: Float32Array, k: GradCoefficients, dx: Float32Array): void {
  const { k1, k2, k3 } = k;
  const C = k1.length;
  for (let i = 0; i < x.length; i += C) {
    for (let c = 0; c < C; c++) dx[i + c] = k1[c] * dy[i + c] + k2[c] * x[i + c] + k3[c];
  }
}

export function batchNormBackward(
  dy: Float32Array, x: Float32Array, mean: Float32Array, variance: Float32Array, gamma: Float32Array, epsilon: number,
  dx: Float32Array, dGamma: Float32Array, dBeta: Float32Array,
): void {
  const C = gamma.length;
  const sumDy = new Float64Array(C);
  const sumDyXc = new Float64Array(C);
  gradSums(dy, x, mean, sumDy, sumDyXc);
  const k: GradCoefficients = { k1: new Float32Array(C), k2: new Float32Array(C), k3: new Float32Array(C) };
  gradCoefficients(sumDy, sumDyXc, x.length / C, mean, variance, gamma, epsilon, dGamma, dBeta, k);
  applyGrad(dy, x, k, dx);
}
