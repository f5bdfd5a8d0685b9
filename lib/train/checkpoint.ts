/**
 * What a run needs to continue exactly where an epoch ended: the weights (BatchNorm statistics
 * included), the optimizer's state, dropout's random state and the metrics so far. The sampler and
 * the learning-rate schedule follow from the seed and the epoch, so the epoch is their position.
 */
import * as tf from '@tensorflow/tfjs';
import { dropoutCalls, setDropoutCalls } from '../models/dropout';
import type { TrainConfig } from './config';
import * as path from 'node:path';
import { CheckpointError, type CheckpointHeaderBase, encodeCheckpoint, readLatestCheckpoint, type SkippedCheckpoint, type TensorEntry, writeCheckpoint } from './checkpoint-file';
import type { EpochMetrics } from './metrics';
import type { Trainer } from './trainer';

export interface CheckpointHeader extends CheckpointHeaderBase {
  runId: string;
  /** Epochs completed: training continues with epoch + 1. */
  epoch: number;
  savedAt: string;
  config: TrainConfig;
  worldSize: number;
  /** model.getWeights() first (trainable and BatchNorm statistics), then the optimizer's tensors. */
  weightCount: number;
  optimizer: { name: string; counters: Record<string, number> };
  dropoutCalls: number[];
  metrics: EpochMetrics[];
}

/** A checkpoint read back: its file and what it restores. */
export interface Checkpoint {
  file: string;
  header: CheckpointHeader;
  values: Float32Array[];
}

const entry = (t: tf.Tensor): TensorEntry => ({ shape: [...t.shape] });

/** Writes the state after `epoch` (atomically) into the run folder; returns the file. */
export function saveCheckpoint(runDir: string, trainer: Trainer, state: {
  runId: string; epoch: number; config: TrainConfig; worldSize: number; metrics: EpochMetrics[];
}): string {
  const weights = trainer.model.getWeights();
  const optimizerTensors = trainer.optimizer.state();
  const tensors = [...weights, ...optimizerTensors];
  const header: CheckpointHeader = {
    runId: state.runId, epoch: state.epoch, savedAt: new Date().toISOString(), config: state.config, worldSize: state.worldSize,
    weightCount: weights.length, tensors: tensors.map(entry),
    optimizer: { name: trainer.optimizer.name, counters: trainer.optimizer.counters() },
    dropoutCalls: dropoutCalls(trainer.model), metrics: state.metrics,
  };
  const bytes = encodeCheckpoint(header, tensors.map((t) => t.dataSync() as Float32Array));
  return writeCheckpoint(runDir, state.epoch, bytes, { keepAll: state.config.keepCheckpoints });
}

/**
 * The newest whole checkpoint of a run folder (null: none yet, the run starts over), with the
 * damaged newer ones passed over. Throws when there are checkpoints but none reads back whole:
 * starting over would throw away work the user may still recover.
 */
export function loadCheckpoint(runDir: string): { checkpoint: Checkpoint | null; skipped: SkippedCheckpoint[] } {
  const { found, skipped } = readLatestCheckpoint<CheckpointHeader>(runDir);
  if (found == null && skipped.length > 0) {
    throw new CheckpointError(`no checkpoint in ${runDir} reads back whole (${skipped.map((s) => `${path.basename(s.file)}: ${s.reason}`).join('; ')}); ` +
      'restore the file from a copy, or start a new run without --resume');
  }
  return { checkpoint: found, skipped };
}

/** Puts a checkpoint's weights, optimizer state and dropout state into a trainer built from the same configuration. */
export function restoreCheckpoint(trainer: Trainer, checkpoint: Checkpoint): void {
  const { header, values } = checkpoint;
  const current = trainer.model.getWeights();
  const shapesFit = current.length === header.weightCount &&
    current.every((w, i) => w.shape.length === header.tensors[i].shape.length && w.shape.every((d, k) => d === header.tensors[i].shape[k]));
  if (!shapesFit) throw new RangeError(`${checkpoint.file}: its weights do not fit the model ${header.config.model} built from the run's configuration`);
  if (header.optimizer.name !== trainer.optimizer.name) {
    throw new RangeError(`${checkpoint.file}: it holds ${header.optimizer.name}'s state, the run trains with ${trainer.optimizer.name}`);
  }
  const tensors = values.map((v, i) => tf.tensor(v, header.tensors[i].shape));
  trainer.model.setWeights(tensors.slice(0, header.weightCount));
  trainer.optimizer.loadState(tensors.slice(header.weightCount), header.optimizer.counters);
  tf.dispose(tensors);
  setDropoutCalls(trainer.model, header.dropoutCalls);
}
