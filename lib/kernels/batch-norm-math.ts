/**
 * Training-mode batch normalisation over the rows of an [R, C] matrix, in
 * two passes forward and two backward, with per-channel sums in float64.
 */

export interface BatchNormStats {
  mean: Float32Array;
  /** Biased batch variance (divided by R), as used to normalise. */
  variance: Float32Array;
}

export function batchNormForward(
  x: Float32Array, gamma: Float32Array, beta: Float32Array, epsilon: number,
  y: Float32Array, stats: BatchNormStats,
): void {
  const C = gamma.length;
  const R = x.length / C;
  const sum = new Float64Array(C);
  for (let r = 0, i = 0; r < R; r++) for (let c = 0; c < C; c++, i++) sum[c] += x[i];
  for (let c = 0; c < C; c++) sum[c] /= R;
  const sq = new Float64Array(C);
  for (let r = 0, i = 0; r < R; r++) {
    for (let c = 0; c < C; c++, i++) {
      const d = x[i] - sum[c];
      sq[c] += d * d;
    }
  }
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const variance = sq[c] / R;
    stats.mean[c] = sum[c];
    stats.variance[c] = variance;
    scale[c] = gamma[c] / Math.sqrt(variance + epsilon);
    shift[c] = beta[c] - sum[c] * scale[c];
  }
  for (let r = 0, i = 0; r < R; r++) for (let c = 0; c < C; c++, i++) y[i] = x[i] * scale[c] + shift[c];
}

/**
 * With xhat = (x - mean) / sqrt(var + eps): dbeta = sum dy, dgamma = sum dy xhat,
 * dx = gamma / sqrt(var + eps) * (dy - dbeta / R - xhat dgamma / R).
 */
export function batchNormBackward(
  dy: Float32Array, x: Float32Array, mean: Float32Array, variance: Float32Array, gamma: Float32Array, epsilon: number,
  dx: Float32Array, dGamma: Float32Array, dBeta: Float32Array,
): void {
  const C = gamma.length;
  const R = x.length / C;
  const invStd = new Float64Array(C);
  for (let c = 0; c < C; c++) invStd[c] = 1 / Math.sqrt(variance[c] + epsilon);
  const sumDy = new Float64Array(C);
  const sumDyXc = new Float64Array(C);
  for (let r = 0, i = 0; r < R; r++) {
    for (let c = 0; c < C; c++, i++) {
      sumDy[c] += dy[i];
      sumDyXc[c] += dy[i] * (x[i] - mean[c]);
    }
  }
  const k1 = new Float32Array(C);
  const k2 = new Float32Array(C);
  const k3 = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const is = invStd[c];
    dBeta[c] = sumDy[c];
    dGamma[c] = sumDyXc[c] * is;
    const g = gamma[c] * is;
    k1[c] = g;
    k2[c] = -g * is * is * sumDyXc[c] / R;
    k3[c] = -g * sumDy[c] / R - k2[c] * mean[c];
  }
  for (let r = 0, i = 0; r < R; r++) for (let c = 0; c < C; c++, i++) dx[i] = k1[c] * dy[i] + k2[c] * x[i] + k3[c];
}
