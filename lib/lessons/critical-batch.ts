/**
 * Lesson 06 beyond the course: how many steps, and how long, each global batch needs to reach a
 * target accuracy (the critical batch size of McCandlish et al. 2018 and Shallue et al. 2018),
 * read from validations every few steps; and the gap between training and test loss that large
 * batches are said to widen (Keskar et al. 2017).
 */
import type { DeviceResult } from './devices';

/** When one run (one seed) first reached the target, at the resolution of its validations. */
export interface TargetReach {
  label: string;
  globalBatch: number;
  seed: number;
  /** null: never reached. */
  steps: number | null;
  images: number | null;
  /** Training seconds: measured, or projected for emulated devices. */
  seconds: number | null;
  timeIs: DeviceResult['timeIs'];
}

export function reachOf(result: DeviceResult, target: number): TargetReach {
  const hit = result.experiment.validations.find((v) => v.valAccuracy >= target);
  const base = { label: result.label, globalBatch: result.globalBatch, seed: result.seed, timeIs: result.timeIs };
  if (hit == null) return { ...base, steps: null, images: null, seconds: null };
  // Emulated devices run on the projected time per step of their epoch.
  const seconds = result.timeIs === 'projected'
    ? (hit.globalStep * result.seconds[0]) / result.stepsPerEpoch
    : hit.seconds;
  return { ...base, steps: hit.globalStep, images: hit.globalStep * result.globalBatch, seconds };
}

/**
 * McCandlish et al.'s steps against batch, S(B) = S_min (1 + B_crit / B), fitted in relative error
 * (every batch counts alike, not the thousands of steps of the smallest) to the mean steps of each
 * batch: below B_crit doubling the batch nearly halves the steps, above it the steps stop falling.
 * null with fewer than two batches or a fit that is not positive.
 */
export function fitCriticalBatch(points: { globalBatch: number; steps: number }[]): { minSteps: number; criticalBatch: number } | null {
  if (new Set(points.map((p) => p.globalBatch)).size < 2) return null;
  // S = a + b / B, each row divided by its S: [1/S, 1/(B S)] . [a, b] = 1.
  const rows = points.map((p) => ({ u: 1 / p.steps, v: 1 / (p.globalBatch * p.steps) }));
  const suu = rows.reduce((s, r) => s + r.u * r.u, 0);
  const suv = rows.reduce((s, r) => s + r.u * r.v, 0);
  const svv = rows.reduce((s, r) => s + r.v * r.v, 0);
  const su = rows.reduce((s, r) => s + r.u, 0);
  const sv = rows.reduce((s, r) => s + r.v, 0);
  const det = suu * svv - suv * suv;
  if (!(Math.abs(det) > 1e-12 * suu * svv)) return null;
  const minSteps = (su * svv - sv * suv) / det;
  const slope = (suu * sv - suv * su) / det;
  if (!(minSteps > 0) || !(slope > 0)) return null;
  return { minSteps, criticalBatch: slope / minSteps };
}

/** Test loss minus training loss after the last epoch (the training loss is the mean over that epoch's steps). */
export function generalizationGap(result: DeviceResult): number {
  const last = result.experiment.epochs[result.experiment.epochs.length - 1];
  return last.valLoss - last.trainLoss;
}
