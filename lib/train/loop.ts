import { createHash } from 'node:crypto';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../backend/select';
import { gatherBatch, loadFashionMnist, type Split } from '../data/fashion-mnist';
import type { Communicator } from '../ddp/communicator';
import { describeLinkModel, parseLinkModel } from '../ddp/links';
import { flatten, unflatten } from '../ddp/flat';
import type { World } from '../ddp/world';
import { activationFloatsPerImage, buildModel, countTrainableParameters } from '../models/index';
import { setBatchNormSync } from '../models/batch-norm';
import { createOptimizer } from '../optim/factory';
import { optimizerSpecOf, type TrainConfig } from './config';
import type { Outcome, TrainEvent, TrainResult } from './events';
import { activationBudget, maxMicroBatch } from './memory';
import { type EpochMetrics, shouldStopEarly } from './metrics';
import { permutation } from './random';
import { loadCheckpoint, restoreCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint';
import { readRun, RunRecord } from './run-record';
import { InterruptedError, watchStopSignals } from './stop-signals';
import { saveModel } from './save';
import { LearningRateSchedule } from './schedule';
import { shardBatches, stepsPerEpoch } from './sampler';
import { Trainer } from './trainer';

/** Training-set positions used by a run: all, or the first N of a fixed seeded shuffle. */
function trainIndices(split: Split, subset: number | null, seed: number): Int32Array {
  if (subset == null || subset >= split.count) return Int32Array.from({ length: split.count }, (_, i) => i);
  return permutation(split.count, 0x5eed + seed).slice(0, subset);
}

/** Makes every rank start from rank 0's weights (trainable and BatchNorm statistics). */
function broadcastWeights(model: tf.LayersModel, comm: Communicator): void {
  if (comm.size === 1) return;
  const weights = model.getWeights();
  const flat = flatten(weights);
  comm.broadcast(flat, 0);
  const synced = unflatten(flat, weights.map((w) => w.shape));
  model.setWeights(synced);
  tf.dispose(synced);
}

/**
 * Copies rank 0's BatchNorm running statistics to every rank (PyTorch's DDP
 * broadcasts these buffers from rank 0 too), so that all ranks validate and
 * save the same model.
 */
function broadcastBuffers(model: tf.LayersModel, comm: Communicator): void {
  if (comm.size === 1 || model.nonTrainableWeights.length === 0) return;
  const values = model.nonTrainableWeights.map((w) => w.read());
  const flat = flatten(values);
  comm.broadcast(flat, 0);
  const synced = unflatten(flat, values.map((v) => v.shape));
  model.nonTrainableWeights.forEach((w, i) => w.write(synced[i]));
  tf.dispose(synced);
}

/** SHA-256 of tensors' bytes: equal fingerprints on all ranks mean identical replicas. */
function fingerprint(tensors: tf.Tensor[]): string {
  const hash = createHash('sha256');
  for (const t of tensors) hash.update(new Uint8Array((t.dataSync() as Float32Array).slice().buffer));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Every rank loads the checkpoint itself (the run folder must be visible to all); rank 0's epoch
 * and file digest are broadcast so that ranks that read different files stop, rather than train
 * different replicas.
 */
function checkSameCheckpoint(checkpoint: Checkpoint | null, comm: Communicator): void {
  if (comm.size === 1) return;
  const digest = checkpoint == null ? 'none' : `${checkpoint.header.epoch}:${checkpoint.header.savedAt}`;
  const hash = createHash('sha256').update(digest).digest();
  const mine = Float32Array.from([checkpoint?.header.epoch ?? 0, hash.readUIntLE(0, 3), hash.readUIntLE(3, 3)]);
  const leaders = mine.slice();
  comm.broadcast(leaders, 0);
  if (leaders.some((v, i) => v !== mine[i])) {
    throw new RangeError(`rank ${comm.rank} read ${checkpoint == null ? 'no checkpoint' : `the checkpoint of epoch ${checkpoint.header.epoch} (${checkpoint.file})`}, ` +
      `rank 0 one of epoch ${leaders[0]}: every rank must see the same run folder (a filesystem shared by the nodes) to resume`);
  }
}

/** Loss and accuracy over the validation set, each rank taking every N-th image. */
function validate(trainer: Trainer, split: Split, count: number, comm: Communicator): { loss: number; accuracy: number } {
  const mine = Int32Array.from({ length: Math.ceil((count - comm.rank) / comm.size) }, (_, i) => comm.rank + i * comm.size);
  const batch = gatherBatch(split, mine);
  const local = mine.length > 0 ? trainer.evaluate(batch.images, batch.labels) : { loss: 0, accuracy: 0 };
  const sums = Float32Array.from([local.loss * mine.length, local.accuracy * mine.length, mine.length]);
  comm.allReduce(sums);
  return { loss: sums[0] / sums[2], accuracy: sums[1] / sums[2] };
}

/**
 * The model (initial weights from the seed), its optimizer and the micro-batch
 * that fits `budgetBytes` of activations: what a run of `config` trains with.
 */
export function buildTrainer(config: TrainConfig, budgetBytes: number): Trainer {
  const model = buildModel(config.model, config.seed, { dropout: config.dropout });
  const microBatch = Math.min(config.batchSize, config.microBatch ?? maxMicroBatch(budgetBytes, activationFloatsPerImage(model)));
  return new Trainer(model, createOptimizer(optimizerSpecOf(config)), microBatch);
}

/** Lets the event loop run (IPC to the launcher, progress display) between steps. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Trains as one rank of `world` (or alone) with the course script's
 * semantics: each rank its shard, gradients averaged every step, the same SGD
 * update everywhere, validation after every epoch, early stop at the target.
 * Rank 0 keeps the run record, checkpoints every epoch and saves the model.
 * With `config.resume` (a run folder, as resumeConfig resolves it) it continues
 * that run from its last checkpoint.
 */
export async function trainRank(
  config: TrainConfig, world: World, comm: Communicator, emit: (event: TrainEvent) => void,
): Promise<TrainResult> {
  const data = loadFashionMnist({ dataDir: config.dataDir });
  const engine = await initEngine(config.backend, { localRank: world.localRank, localWorkers: world.localWorldSize });
  if (engine.gpu != null) {
    // Every worker says which GPU it has (the launcher prefixes its workers' lines with their rank).
    console.log(`${world.launcher === 'builtin' ? '' : `[rank ${world.rank}] `}Device: ${engine.description}`);
  }
  const budget = activationBudget(engine, { localWorkers: world.localWorldSize, deviceMemoryGb: config.deviceMemoryGb });
  const trainer = buildTrainer(config, budget.bytes);
  const { model, microBatch } = trainer;
  const resumed = config.resume != null ? loadCheckpoint(config.resume) : null;
  const checkpoint = resumed?.checkpoint ?? null;
  if (checkpoint != null) restoreCheckpoint(trainer, checkpoint);
  checkSameCheckpoint(checkpoint, comm);
  setBatchNormSync(config.syncBn ? comm : null);
  broadcastWeights(model, comm);
  trainer.useCommunicator(comm, { bucketCapMb: config.bucketCapMb, overlap: config.overlap });
  const parameters = countTrainableParameters(model);
  const leader = world.rank === 0;

  const indices = trainIndices(data.train, config.trainSubset, config.seed);
  const valCount = Math.min(config.valSubset ?? data.test.count, data.test.count);
  const accumulation = config.accumulationSteps;
  // Each rank's share of a step: accumulation x batch-size images, cut into passes by the trainer.
  const rankBatch = config.batchSize * accumulation;
  const steps = stepsPerEpoch(indices.length, world.worldSize, rankBatch);
  const globalBatch = world.worldSize * rankBatch;
  const batchText = `${world.worldSize} x ${config.batchSize}${accumulation > 1 ? ` x ${accumulation} accumulation steps` : ''}`;
  if (steps === 0) {
    throw new RangeError(`a global batch of ${batchText} images is larger than the ` +
      `${indices.length} training images: lower --batch-size${accumulation > 1 ? ' or --accumulation-steps' : ''} or raise --train-subset`);
  }
  // The rules scale with the global batch: accumulation steps stand for devices.
  const schedule = new LearningRateSchedule({
    baseLr: config.baseLr, workers: world.worldSize * accumulation, scaleRule: config.scaleLr,
    warmupEpochs: config.warmupEpochs, warmupUnit: config.warmupPerIteration ? 'iteration' : 'epoch',
    warmupStartFactor: config.warmupStartFactor ?? undefined,
  });
  const restart = Number(process.env.TORCHELASTIC_RESTART_COUNT ?? 0);
  let record: RunRecord | null = null;
  if (leader && config.resume != null) {
    const info = readRun(config.resume).info;
    if (info.microBatch !== microBatch || info.worldSize !== world.worldSize || info.stepsPerEpoch !== steps) {
      throw new RangeError(`--resume ${config.resume}: the run trained ${info.worldSize} workers x passes of ${info.microBatch} images, ` +
        `${info.stepsPerEpoch} steps per epoch; now it would be ${world.worldSize} x ${microBatch}, ${steps} steps: ` +
        `resume with the same number of workers, and --micro-batch ${info.microBatch} if the device's memory differs`);
    }
    if (info.engine !== engine.description) {
      emit({ type: 'log', message: `warning: the run started on ${info.engine} and continues on ${engine.description}: engines round differently, so it will not be bit-identical to an uninterrupted run` });
    }
    record = RunRecord.reopen(config.resume, {
      config, metrics: checkpoint?.header.metrics ?? [], fromEpoch: checkpoint?.header.epoch ?? 0,
      reason: restart > 0 ? `restart ${restart} of ${config.maxRestarts}` : '--resume', skipped: resumed?.skipped ?? [],
    });
  } else if (leader) {
    record = RunRecord.create(config.runsDir, { config, engine: engine.description, parameters, stepsPerEpoch: steps, microBatch, worldSize: world.worldSize });
  }
  emit({
    type: 'start', runId: record?.id ?? '', runDir: record?.dir ?? '', engine: engine.description, parameters,
    worldSize: world.worldSize, trainImages: steps * globalBatch, valImages: valCount, stepsPerEpoch: steps, microBatch,
  });
  for (const reason of engine.skipped) emit({ type: 'log', message: `Engine skipped (--backend auto): ${reason}` });
  emit({ type: 'log', message: `Memory for activations: ${(budget.bytes / 1e9).toFixed(1)} GB per worker (${budget.source}): passes of at most ${microBatch} images` });
  emit({ type: 'log', message: `Optimizer: ${trainer.optimizer.describe?.() ?? trainer.optimizer.name}; ${schedule.describe()}` });
  if (world.worldSize > 1 || accumulation > 1) {
    const mb = trainer.reducer.bucketBytes.map((b) => (b / 1e6).toFixed(2));
    emit({
      type: 'log',
      message: `Global batch: ${batchText} = ${globalBatch} images per step; gradients in ${mb.length} bucket${mb.length > 1 ? 's' : ''} ` +
        `(${mb.join(', ')} MB), ${config.overlap ? 'each all-reduced as soon as the backward pass has filled it' : 'all-reduced after the backward pass (--no-overlap)'}`,
    });
  }
  if (resumed != null) {
    for (const skipped of resumed.skipped) emit({ type: 'log', message: `warning: passed over ${skipped.file}: ${skipped.reason}` });
    emit({
      type: 'log',
      message: checkpoint != null
        ? `Continuing from the checkpoint of epoch ${checkpoint.header.epoch} (${path.basename(checkpoint.file)}): epochs ${checkpoint.header.epoch + 1} to ${config.epochs}`
        : `No checkpoint in ${config.resume} yet: training it from epoch 1 again`,
    });
  }
  if (world.worldSize > 1) emit({ type: 'log', message: `Collectives: ${comm.description}` });
  if (config.simulatedLink && world.worldSize > 1) {
    emit({ type: 'log', message: `Between workers: a simulated link of ${describeLinkModel(parseLinkModel(config.simulatedLink))} (--simulated-link)` });
  }
  if (microBatch < config.batchSize && config.microBatch == null) {
    emit({
      type: 'log',
      message: `a batch of ${config.batchSize} does not fit the ${engine.name} engine's memory at once: each step runs ` +
        `micro-batches of at most ${microBatch} images and sums their gradients` +
        (model.layers.some((l) => l.getClassName() === 'BatchNormalization') ? ' (BatchNorm normalizes each micro-batch on its own)' : ''),
    });
  }

  const epochs: EpochMetrics[] = [...(checkpoint?.header.metrics ?? [])];
  let cumulativeTime = epochs.at(-1)?.cumulativeTime ?? 0;
  let outcome: Outcome = 'completed';
  const stop = watchStopSignals(world);
  let diverged: TrainResult['diverged'] = null;
  const batchBuffers = { images: new Float32Array(rankBatch * 784), labels: new Int32Array(rankBatch) };
  const datasetIndices = new Int32Array(rankBatch);
  try {
    for (let epoch = epochs.length + 1; epoch <= config.epochs && outcome === 'completed'; epoch++) {
      const batches = shardBatches({
        datasetSize: indices.length, numReplicas: world.worldSize, rank: world.rank, batchSize: rankBatch, seed: config.seed, epoch,
      });
      comm.barrier();
      trainer.reducer.setClockZero();
      const started = performance.now();
      let lr = schedule.lr(epoch - 1, 0, batches.length);
      let computeSeconds = 0;
      let waitSeconds = 0;
      let allReduceSeconds = 0;
      let communicationSeconds = 0;
      let hiddenSeconds = 0;
      let lossSum = 0;
      // Validations within the epoch: their time is not training time.
      let validatingSeconds = 0;
      for (let step = 0; step < batches.length; step++) {
        const stepStart = performance.now();
        batches[step].forEach((pos, i) => { datasetIndices[i] = indices[pos]; });
        const batch = gatherBatch(data.train, datasetIndices, batchBuffers);
        const { grads, loss, communication } = trainer.computeGradients(batch, accumulation);
        waitSeconds += communication.slowestWait;
        allReduceSeconds += communication.exposed;
        communicationSeconds += communication.communication;
        hiddenSeconds += communication.hidden;
        if (!Number.isFinite(loss)) {
          tf.dispose(grads);
          diverged = { epoch, step: step + 1 };
          outcome = 'diverged';
          emit({ type: 'log', message: `diverged at epoch ${epoch}, step ${step + 1}: the loss is ${loss}` });
          break;
        }
        lr = schedule.lr(epoch - 1, step, batches.length);
        trainer.applyGradients(grads, lr);
        computeSeconds += (performance.now() - stepStart) / 1000 - communication.slowestWait - communication.exposed;
        lossSum += loss;
        const elapsed = (performance.now() - started) / 1000 - validatingSeconds;
        emit({ type: 'step', epoch, step: step + 1, steps: batches.length, loss, imagesPerSec: ((step + 1) * globalBatch) / elapsed });
        if (config.validateEvery != null && (step + 1) % config.validateEvery === 0 && step + 1 < batches.length) {
          const paused = performance.now();
          broadcastBuffers(model, comm);
          const images = Math.min(config.validateEveryImages, valCount);
          const v = validate(trainer, data.test, images, comm);
          emit({
            type: 'validation', epoch, step: step + 1, globalStep: (epoch - 1) * batches.length + step + 1, seconds: cumulativeTime + elapsed,
            images, valLoss: v.loss, valAccuracy: v.accuracy, trainLoss: lossSum / (step + 1),
          });
          validatingSeconds += (performance.now() - paused) / 1000;
        }
        await yieldToEventLoop();
        if (stop.requested != null) {
          const kept = epoch > 1 ? `; the checkpoint of epoch ${epoch - 1} is kept: continue with --resume ${record?.dir ?? ''}` : '';
          throw new InterruptedError(`training was interrupted (${stop.requested}) in epoch ${epoch}, after step ${step + 1}${kept}`);
        }
      }
      if (outcome === 'diverged') break;
      comm.barrier();
      const epochTime = (performance.now() - started) / 1000 - validatingSeconds;
      broadcastBuffers(model, comm);
      cumulativeTime += epochTime;
      const { loss: valLoss, accuracy: valAccuracy } = validate(trainer, data.test, valCount, comm);
      const metrics: EpochMetrics = {
        epoch, cumulativeTime, epochTime, imagesPerSec: (batches.length * globalBatch) / epochTime,
        trainLoss: lossSum / batches.length, valLoss, valAccuracy, lr,
        workers: world.worldSize, computeSeconds, waitSeconds, allReduceSeconds, communicationSeconds, hiddenSeconds,
        ...(trainer.reducer.timeline ? { timeline: trainer.reducer.timeline } : {}),
      };
      epochs.push(metrics);
      emit({
        type: 'validation', epoch, step: batches.length, globalStep: epoch * batches.length, seconds: cumulativeTime,
        images: valCount, valLoss, valAccuracy, trainLoss: metrics.trainLoss,
      });
      // The checkpoint first: metrics.jsonl never gets ahead of what a resume can continue from.
      if (record != null) saveCheckpoint(record.dir, trainer, { runId: record.id, epoch, config, worldSize: world.worldSize, metrics: epochs });
      record?.addEpoch(metrics);
      emit({ type: 'epoch', metrics });
      if (shouldStopEarly(epochs.map((e) => e.valAccuracy), config.targetAccuracy, config.patience)) {
        outcome = 'early-stop';
        emit({ type: 'log', message: `Early stopping after epoch ${epoch}` });
      }
    }
    if (config.save != null && leader) {
      await saveModel(model, config.save);
      emit({ type: 'log', message: `saved the model to ${config.save} (model.json + weights.bin)` });
    }
    record?.finish({ outcome, message: diverged ? `diverged at epoch ${diverged.epoch}, step ${diverged.step}` : undefined });
  } catch (e) {
    try {
      record?.finish({ outcome: e instanceof InterruptedError ? 'interrupted' : 'failed', message: (e as Error).message });
    } catch {
      // A full disk may refuse end.json too: the error that stopped the run is the one to report.
    }
    trainer.optimizer.dispose();
    throw e;
  } finally {
    stop.dispose();
  }
  const replica = {
    weights: fingerprint(model.getWeights()),
    optimizerState: fingerprint(trainer.optimizer.state()),
  };
  trainer.optimizer.dispose();
  return { runId: record?.id ?? '', runDir: record?.dir ?? '', epochs, outcome, diverged, model, replicas: [replica] };
}
