import type { StepTimeline } from '../ddp/reducer';
/** What one epoch measured; one JSON line of `runs/<id>/metrics.jsonl`. */
export interface EpochMetrics {
  epoch: number;
  /** Seconds spent training in all epochs so far (validation excluded, as in the course). */
  cumulativeTime: number;
  /** Seconds spent training in this epoch. */
  epochTime: number;
  imagesPerSec: number;
  /** Mean training loss over the epoch's steps. */
  trainLoss: number;
  valLoss: number;
  valAccuracy: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Workers that trained (the global batch is workers x per-device batch). */
  workers: number;
  /**
   * Rank 0's seconds in this epoch: computing (forward, backward, update);
   * waiting for the slowest worker to finish its backward pass; waiting for
   * all-reduces after its own backward pass (the exposed communication).
   */
  computeSeconds: number;
  waitSeconds: number;
  allReduceSeconds: number;
  /** Rank 0's communication seconds on gradient buckets (hidden + exposed), and the part hidden under its backward pass. */
  communicationSeconds: number;
  hiddenSeconds: number;
  /** Rank 0's last step of the epoch: its backward pass, each gradient bucket's all-reduce, the wait. */
  timeline?: StepTimeline;
}

/** The course script's per-epoch line, character for character. */
export function formatEpochLine(m: EpochMetrics): string {
  return `Epoch = ${String(m.epoch).padStart(2)}: Cumulative Time = ${m.cumulativeTime.toFixed(3)}, ` +
    `Epoch Time = ${m.epochTime.toFixed(3)}, Images/sec = ${m.imagesPerSec.toFixed(2)}, ` +
    `Validation Loss = ${m.valLoss.toFixed(3)}, Validation Accuracy = ${m.valAccuracy.toFixed(3)}`;
}

/** The course's early stop: the last `patience` validation accuracies all reach the target. */
export function shouldStopEarly(accuracies: number[], target: number, patience: number): boolean {
  if (accuracies.length < patience) return false;
  return accuracies.slice(-patience).every((a) => a >= target);
}
