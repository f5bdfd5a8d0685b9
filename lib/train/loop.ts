import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../backend/select';
import { gatherBatch, loadFashionMnist, type Split } from '../data/fashion-mnist';
import { activationFloatsPerImage, buildModel, countTrainableParameters } from '../models';
import { Sgd } from '../optim/sgd';
import type { TrainConfig } from './config';
import { maxMicroBatch } from './memory';
import { type EpochMetrics, shouldStopEarly } from './metrics';
import { permutation } from './random';
import { RunRecord } from './run-record';
import { saveModel } from './save';
import { shardBatches, stepsPerEpoch } from './sampler';
import { Trainer } from './trainer';

export interface StartEvent {
  type: 'start';
  runId: string;
  runDir: string;
  engine: string;
  parameters: number;
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
  loss: number;
  imagesPerSec: number;
}
export interface EpochEvent {
  type: 'epoch';
  metrics: EpochMetrics;
}
export interface LogEvent {
  type: 'log';
  message: string;
}
export type TrainEvent = StartEvent | StepEvent | EpochEvent | LogEvent;

export interface TrainResult {
  runId: string;
  runDir: string;
  epochs: EpochMetrics[];
  outcome: 'completed' | 'early-stop' | 'diverged';
  /** Where the loss stopped being finite, when it did. */
  diverged: { epoch: number; step: number } | null;
  model: tf.LayersModel;
}

export interface TrainHooks {
  onEvent?: (event: TrainEvent) => void;
}

/** Training-set positions used by a run: all, or the first N of a fixed seeded shuffle. */
function trainIndices(split: Split, subset: number | null, seed: number): Int32Array {
  if (subset == null || subset >= split.count) return Int32Array.from({ length: split.count }, (_, i) => i);
  return permutation(split.count, 0x5eed + seed).slice(0, subset);
}

/** Chooses the learning rate of a step (the schedules of later lessons plug in here). */
function learningRate(config: TrainConfig): number {
  return config.baseLr;
}

/**
 * Trains one model on one worker with the course script's semantics: SGD
 * with momentum, per-epoch validation, early stop at the target accuracy.
 */
export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const emit = hooks.onEvent ?? (() => undefined);
  const data = loadFashionMnist({ dataDir: config.dataDir });
  const engine = await initEngine(config.backend);
  const model = buildModel(config.model, config.seed);
  const parameters = countTrainableParameters(model);
  const microBatch = Math.min(config.batchSize, maxMicroBatch(engine.name, activationFloatsPerImage(model)));
  const trainer = new Trainer(model, new Sgd({ momentum: config.momentum }), microBatch);

  const indices = trainIndices(data.train, config.trainSubset, config.seed);
  const valCount = Math.min(config.valSubset ?? data.test.count, data.test.count);
  const val = gatherBatch(data.test, Int32Array.from({ length: valCount }, (_, i) => i));
  const steps = stepsPerEpoch(indices.length, 1, config.batchSize);
  if (steps === 0) {
    throw new RangeError(`--batch-size ${config.batchSize} is larger than the ${indices.length} training images: lower --batch-size or raise --train-subset`);
  }
  const record = new RunRecord(config.runsDir, {
    config, engine: engine.description, parameters, stepsPerEpoch: steps, microBatch,
  });
  emit({
    type: 'start', runId: record.id, runDir: record.dir, engine: engine.description, parameters,
    trainImages: steps * config.batchSize, valImages: valCount, stepsPerEpoch: steps, microBatch,
  });
  if (microBatch < config.batchSize) {
    emit({
      type: 'log',
      message: `a batch of ${config.batchSize} does not fit the ${engine.name} engine's memory at once: each step runs ` +
        `micro-batches of at most ${microBatch} images and sums their gradients` +
        (model.layers.some((l) => l.getClassName() === 'BatchNormalization') ? ' (BatchNorm normalizes each micro-batch on its own)' : ''),
    });
  }

  const epochs: EpochMetrics[] = [];
  let cumulativeTime = 0;
  let outcome: TrainResult['outcome'] = 'completed';
  let diverged: TrainResult['diverged'] = null;
  const batchBuffers = { images: new Float32Array(config.batchSize * 784), labels: new Int32Array(config.batchSize) };
  const datasetIndices = new Int32Array(config.batchSize);
  try {
    for (let epoch = 1; epoch <= config.epochs && outcome === 'completed'; epoch++) {
      const batches = shardBatches({
        datasetSize: indices.length, numReplicas: 1, rank: 0, batchSize: config.batchSize, seed: config.seed, epoch,
      });
      const lr = learningRate(config);
      const started = performance.now();
      let lossSum = 0;
      for (let step = 0; step < batches.length; step++) {
        batches[step].forEach((pos, i) => { datasetIndices[i] = indices[pos]; });
        const batch = gatherBatch(data.train, datasetIndices, batchBuffers);
        const { loss, grads } = trainer.computeGradients(batch);
        if (!Number.isFinite(loss)) {
          tf.dispose(grads);
          diverged = { epoch, step: step + 1 };
          outcome = 'diverged';
          emit({ type: 'log', message: `diverged at epoch ${epoch}, step ${step + 1}: the loss is ${loss}` });
          break;
        }
        trainer.applyGradients(grads, lr);
        lossSum += loss;
        const elapsed = (performance.now() - started) / 1000;
        emit({ type: 'step', epoch, step: step + 1, steps: batches.length, loss, imagesPerSec: ((step + 1) * config.batchSize) / elapsed });
      }
      if (outcome === 'diverged') break;
      const epochTime = (performance.now() - started) / 1000;
      cumulativeTime += epochTime;
      const { loss: valLoss, accuracy: valAccuracy } = trainer.evaluate(val.images, val.labels);
      const metrics: EpochMetrics = {
        epoch, cumulativeTime, epochTime, imagesPerSec: (batches.length * config.batchSize) / epochTime,
        trainLoss: lossSum / batches.length, valLoss, valAccuracy, lr,
      };
      epochs.push(metrics);
      record.addEpoch(metrics);
      emit({ type: 'epoch', metrics });
      if (shouldStopEarly(epochs.map((e) => e.valAccuracy), config.targetAccuracy, config.patience)) {
        outcome = 'early-stop';
        emit({ type: 'log', message: `Early stopping after epoch ${epoch}` });
      }
    }
    if (config.save != null) {
      await saveModel(model, config.save);
      emit({ type: 'log', message: `saved the model to ${config.save} (model.json + weights.bin)` });
    }
    record.finish({ outcome, message: diverged ? `diverged at epoch ${diverged.epoch}, step ${diverged.step}` : undefined });
  } catch (e) {
    record.finish({ outcome: 'failed', message: (e as Error).message });
    throw e;
  } finally {
    trainer.optimizer.dispose();
  }
  return { runId: record.id, runDir: record.dir, epochs, outcome, diverged, model };
}
