import { type RingCostModel, ringAllReduceMs } from '../launch/ring-benchmark';
import type { ModelName } from '../train/config';
import { runExperiment } from './experiment';

/** Throughput of one number of workers, and rank 0's time per step split three ways. */
export interface ScalingPoint {
  workers: number;
  imagesPerSec: number;
  /** Against one worker (measured) or against the ideal (projected). */
  speedUp: number;
  efficiency: number;
  computeMs: number;
  waitMs: number;
  allReduceMs: number;
}

export interface ScalingOptions {
  model: ModelName;
  /** Per worker, as in the course. */
  batchSize: number;
  workers: number[];
  /** Steps per epoch; two epochs run and the second is measured. */
  steps: number;
  oversubscribe?: boolean;
}

/**
 * Weak scaling as the course measures it: each worker keeps its batch, so N
 * workers train N times the images per step; the second epoch is measured.
 */
export async function measureScaling(options: ScalingOptions): Promise<ScalingPoint[]> {
  const points: ScalingPoint[] = [];
  for (const workers of options.workers) {
    const experiment = await runExperiment(`${workers} worker${workers > 1 ? 's' : ''}`, {
      model: options.model, batchSize: options.batchSize, numGpus: workers, epochs: 2, targetAccuracy: 1,
      trainSubset: options.steps * workers * options.batchSize, valSubset: 200,
      oversubscribe: options.oversubscribe ?? false,
    });
    const m = experiment.epochs[experiment.epochs.length - 1];
    const steps = options.steps;
    const base = points[0]?.imagesPerSec ?? m.imagesPerSec;
    points.push({
      workers, imagesPerSec: m.imagesPerSec, speedUp: m.imagesPerSec / base, efficiency: m.imagesPerSec / (base * workers),
      computeMs: (m.computeSeconds / steps) * 1000, waitMs: (m.waitSeconds / steps) * 1000, allReduceMs: (m.allReduceSeconds / steps) * 1000,
    });
  }
  return points;
}

export interface ProjectionOptions {
  /** Milliseconds one worker computes per step (forward, backward, update). */
  computeMs: number;
  batchSize: number;
  /** Bytes of gradients averaged per step (4 x parameters). */
  gradientBytes: number;
  ring: RingCostModel;
  workers: number[];
}

/**
 * The cost model: step time = compute + ring all-reduce, where the ring costs
 * 2 (N-1) x latency + 2 (N-1)/N x bytes / bandwidth. It leaves out waiting for
 * the slowest worker and any overlap of communication with the backward pass.
 */
export function projectScaling(options: ProjectionOptions): ScalingPoint[] {
  return options.workers.map((workers) => {
    const allReduceMs = ringAllReduceMs(options.ring, workers, options.gradientBytes);
    const stepMs = options.computeMs + allReduceMs;
    const imagesPerSec = (workers * options.batchSize * 1000) / stepMs;
    const single = (options.batchSize * 1000) / options.computeMs;
    return {
      workers, imagesPerSec, speedUp: imagesPerSec / single, efficiency: imagesPerSec / (single * workers),
      computeMs: options.computeMs, waitMs: 0, allReduceMs,
    };
  });
}
