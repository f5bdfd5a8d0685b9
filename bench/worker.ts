/**
 * One benchmark configuration (engine x model x batch) in its own process:
 * `node dist/bench/worker.js '<WorkerJob JSON>'`. Started by bench/training.ts,
 * pinned to one core with taskset; prints its WorkerResult on stdout.
 *
 * A step is what training does: forward + backward (Trainer.computeGradients,
 * split into micro-batches when the batch does not fit the engine's memory
 * budget) + SGD momentum 0.9 update (Trainer.applyGradients). One warm-up step
 * is not timed; then steps are timed until both min-steps and min-seconds are
 * reached, or until the next step would overrun the time limit.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError, initEngine, type EngineName } from '../lib/backend/select';
import { gatherBatch, loadFashionMnist } from '../lib/data/fashion-mnist';
import { activationFloatsPerImage, buildModel } from '../lib/models';
import { Sgd } from '../lib/optim/sgd';
import { activationBudget, maxMicroBatch, microBatchSizes } from '../lib/train/memory';
import { permutation } from '../lib/train/random';
import { Trainer, type Batch } from '../lib/train/trainer';
import { RESULT_MARKER, type WorkerJob, type WorkerResult } from './protocol';

/** Distinct batches cycled through, so steps do not all see the same images. */
const DISTINCT_BATCHES = 4;

const now = () => performance.now() / 1000;

function log(message: string): void {
  process.stderr.write(`[${process.pid}] ${message}\n`);
}

function makeBatches(batch: number): { batches: Batch[]; inputs: string } {
  try {
    const data = loadFashionMnist({ verify: false });
    const order = permutation(data.train.count, 0);
    const batches: Batch[] = [];
    for (let b = 0; b < DISTINCT_BATCHES; b++) {
      const start = (b * batch) % (data.train.count - batch);
      batches.push(gatherBatch(data.train, order.subarray(start, start + batch)));
    }
    return { batches, inputs: 'fashion-mnist train' };
  } catch (e) {
    log(`Fashion-MNIST not readable (${(e as Error).message.split('\n')[0]}); using random inputs`);
    const batches: Batch[] = [];
    for (let b = 0; b < DISTINCT_BATCHES; b++) {
      const images = new Float32Array(batch * 784);
      for (let i = 0; i < images.length; i++) images[i] = Math.random();
      const labels = new Int32Array(batch);
      for (let i = 0; i < batch; i++) labels[i] = Math.floor(Math.random() * 10);
      batches.push({ images, labels });
    }
    return { batches, inputs: 'random' };
  }
}

function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength;
}

async function run(job: WorkerJob, t0: number): Promise<WorkerResult> {
  const base = { engine: job.engine, model: job.model, batch: job.batch };
  let engine;
  try {
    engine = await initEngine(job.engine as EngineName);
  } catch (e) {
    if (e instanceof BackendError) return { ...base, status: 'unavailable', error: e.message };
    throw e;
  }
  const { batches, inputs } = makeBatches(job.batch);
  const model = buildModel(job.model, 0);
  const microBatch = Math.min(job.batch, maxMicroBatch(activationBudget(engine, { localWorkers: 1, deviceMemoryGb: null }).bytes, activationFloatsPerImage(model)));
  const trainer = new Trainer(model, new Sgd({ momentum: 0.9 }), microBatch);
  const common = {
    ...base, engineDescription: engine.description, inputs,
    microBatches: microBatchSizes(job.batch, microBatch),
  };

  const step = (i: number): number => {
    const { loss, grads } = trainer.computeGradients(batches[i % batches.length]);
    trainer.applyGradients(grads, 0.01);
    return loss;
  };

  const startupSeconds = now() - t0;
  log(`${job.engine} ${job.model} batch ${job.batch}: warm-up step (micro-batches ${common.microBatches.join('+')})`);
  const w0 = now();
  const firstLoss = step(0);
  const warmupSeconds = now() - w0;
  // The warm-up step is the slowest (kernel set-up, heap growth): an upper
  // bound for one step. Skip when even one timed step would overrun.
  const projected = now() - t0 + warmupSeconds;
  if (projected > job.limitSeconds) {
    const needed = Math.max(job.minSteps, Math.ceil(job.minSeconds / warmupSeconds));
    return {
      ...common, status: 'skipped', startupSeconds, warmupSeconds, firstLoss,
      estimatedSeconds: now() - t0 + needed * warmupSeconds,
      wasmHeapBytes: wasmHeapBytes(),
    };
  }

  log(`${job.engine} ${job.model} batch ${job.batch}: warm-up ${warmupSeconds.toFixed(1)} s, timing`);
  let steps = 0;
  let lastLoss = firstLoss;
  let stoppedAtBudget = false;
  const s0 = now();
  const c0 = process.cpuUsage();
  let lastStep = warmupSeconds;
  for (;;) {
    const a = now();
    lastLoss = step(steps + 1);
    steps++;
    lastStep = now() - a;
    const elapsed = now() - s0;
    if (steps >= job.minSteps && elapsed >= job.minSeconds) break;
    if (now() - t0 + lastStep > job.limitSeconds) {
      stoppedAtBudget = true;
      break;
    }
  }
  // Everything above already waited for its results (the loss is read back
  // every step); read a parameter anyway so asynchronous engines are done.
  trainer.params[trainer.params.length - 1].dataSync();
  const seconds = now() - s0;
  const cpu = process.cpuUsage(c0);
  const cpuShare = (cpu.user + cpu.system) / 1e6 / seconds;
  return {
    ...common, status: 'ok', startupSeconds, warmupSeconds, steps, seconds,
    imagesPerSec: (job.batch * steps) / seconds, cpuShare, stoppedAtBudget,
    firstLoss, lastLoss, numTensors: tf.memory().numTensors, wasmHeapBytes: wasmHeapBytes(),
  };
}

async function main(): Promise<void> {
  const t0 = now();
  const job = JSON.parse(process.argv[2] ?? '{}') as WorkerJob;
  let result: WorkerResult;
  try {
    result = await run(job, t0);
  } catch (e) {
    const err = e as Error;
    result = {
      engine: job.engine, model: job.model, batch: job.batch,
      status: 'error', error: err.stack ?? String(err),
    };
  }
  process.stdout.write(RESULT_MARKER + JSON.stringify(result) + '\n', () => process.exit(0));
}

void main();
