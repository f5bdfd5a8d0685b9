import type * as tf from '@tensorflow/tfjs';
import type { EpochMetrics } from './metrics';

export interface StartEvent {
  type: 'start';
  runId: string;
  runDir: string;
  engine: string;
  parameters: number;
  worldSize: number;
  /** Images all workers train on per epoch together. */
  trainImages: number;
  valImages: number;
  stepsPerEpoch: number;
  microBatch: number;
}
export interface StepEvent {
  type: 'step';
  epoch: number;
  step: number;
  steps: number;
  /** Mean loss of the step over all workers. */
  loss: number;
  /** All workers together, since the epoch started. */
  imagesPerSec: number;
}
/** A validation: within an epoch (every --validate-every steps, on a subset) or at its end (all validation images). */
export interface ValidationEvent {
  type: 'validation';
  epoch: number;
  /** Steps done in this epoch, and since training started. */
  step: number;
  globalStep: number;
  /** Training seconds so far, validations not counted. */
  seconds: number;
  images: number;
  valLoss: number;
  valAccuracy: number;
  /** The mean training loss of the epoch's steps so far. */
  trainLoss: number;
}
export interface EpochEvent {
  type: 'epoch';
  metrics: EpochMetrics;
}
export interface LogEvent {
  type: 'log';
  message: string;
}
export type TrainEvent = StartEvent | StepEvent | ValidationEvent | EpochEvent | LogEvent;

export type Outcome = 'completed' | 'early-stop' | 'diverged';

export interface TrainResult {
  runId: string;
  runDir: string;
  epochs: EpochMetrics[];
  outcome: Outcome;
  /** Where the loss stopped being finite, when it did. */
  diverged: { epoch: number; step: number } | null;
  /** The trained model, when it was trained in this process (one worker). */
  model: tf.LayersModel | null;
  /** Per rank, in rank order: fingerprints of the final weights and optimizer state. */
  replicas: ReplicaFingerprint[];
}

export interface ReplicaFingerprint {
  weights: string;
  optimizerState: string;
}

export interface TrainHooks {
  onEvent?: (event: TrainEvent) => void;
  /** Process ids of the worker processes, once they are started (several devices). */
  onWorkers?: (pids: number[]) => void;
}
