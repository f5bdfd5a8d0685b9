/**
 * Every model on an engine that has none of this project's kernels and only the kernels tfjs-node
 * 4.22 implements (test/fixtures/stand-in-gpu: tfjs's cpu kernels under those names): what
 * TensorFlow runs on a GPU. A kernel outside that list is not registered there, so calling one
 * fails the test. Gradients, an SGD update and evaluation must match the cpu engine with this
 * project's kernels (the fused dropout, ReLU and BatchNorm passes). Both WideResNets are built
 * narrow (the same layers, 8 to 32 channels instead of 160 to 640): tfjs's cpu kernels take about
 * 7 minutes for one step of the full wideresnet, and the full wideresnet-dw made its case take 47 s
 * on a 2-core VM.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { gatherBatch, loadFashionMnist } from '../lib/data/fashion-mnist';
import { DEFAULT_CONFIG, MODEL_NAMES, optimizerSpecOf, type ModelName } from '../lib/train/config';
import { buildModel } from '../lib/models/index';
import { DROPOUT } from '../lib/kernels/dropout-kernels';
import { createOptimizer } from '../lib/optim/factory';
import { Trainer, type Batch } from '../lib/train/trainer';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const standIn = require(path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'stand-in-gpu', 'node-kernels.js')) as {
  NODE_KERNELS: string[];
  registerWithNodeKernels(name: string): string[];
};
const FOREIGN = 'tfjs-node-kernels-only';
const NARROW = [1, 8, 8, 16, 32];

interface Outcome {
  grads: Float32Array[];
  weights: Float32Array[];
  loss: number;
  evalLoss: number;
}

/** One step of `model` on `backend`: gradients (dropout on), the default update (SGD, momentum 0.9), evaluation. */
async function step(backend: string, model: ModelName, batch: Batch): Promise<Outcome> {
  await tf.setBackend(backend);
  const net = buildModel(model, 3, model.startsWith('wideresnet') ? { widths: NARROW } : {});
  const trainer = new Trainer(net, createOptimizer(optimizerSpecOf(DEFAULT_CONFIG)), batch.labels.length);
  const { grads, loss } = trainer.computeGradients(batch);
  const gradValues = grads.map((g) => g.dataSync() as Float32Array);
  trainer.applyGradients(grads, 0.05);
  const weights = net.getWeights().map((w) => w.dataSync() as Float32Array);
  const { loss: evalLoss } = trainer.evaluate(batch.images, batch.labels);
  trainer.optimizer.dispose();
  net.dispose();
  return { grads: gradValues, weights, loss, evalLoss };
}

/** Largest |a - b| relative to the largest |a|, over a list of arrays. */
function relativeDifference(a: Float32Array[], b: Float32Array[]): number {
  let diff = 0;
  let scale = 1e-30;
  a.forEach((x, k) => x.forEach((v, i) => {
    diff = Math.max(diff, Math.abs(v - b[k][i]));
    scale = Math.max(scale, Math.abs(v));
  }));
  return diff / scale;
}

describe("every model on an engine with tfjs-node 4.22's kernels only", () => {
  let batch: Batch;
  before(async () => {
    await initEngine('cpu');
    const copied = standIn.registerWithNodeKernels(FOREIGN);
    assert.ok(copied.length > 100, `${copied.length} kernels`);
    const data = loadFashionMnist({});
    batch = gatherBatch(data.train, Int32Array.from([0, 1]));
  });
  after(async () => {
    await tf.setBackend('cpu');
    tf.removeBackend(FOREIGN);
  });

  for (const model of MODEL_NAMES) {
    it(`${model}${model.startsWith('wideresnet') ? ' (narrow)' : ''}: the same gradients, update and evaluation as with this project's kernels (within 1e-5)`, async () => {
      const mine = await step('cpu', model, batch);
      if (model !== 'cnn') assert.ok(tf.getKernel(DROPOUT, 'cpu') != null, "the cpu engine ran this project's dropout kernel");
      const foreign = await step(FOREIGN, model, batch);
      const ours = tf.getKernelsForBackend(FOREIGN).map((k) => k.kernelName).filter((k) => !standIn.NODE_KERNELS.includes(k));
      assert.deepEqual(ours, [], 'no kernel outside tfjs-node\'s list was registered for the foreign engine');
      assert.ok(Math.abs(mine.loss - foreign.loss) <= 1e-5 * Math.abs(mine.loss), `loss ${mine.loss} against ${foreign.loss}`);
      const g = relativeDifference(mine.grads, foreign.grads);
      assert.ok(g <= 1e-5, `gradients differ by ${g} (relative)`);
      const w = relativeDifference(mine.weights, foreign.weights);
      assert.ok(w <= 1e-5, `weights after the update differ by ${w} (relative)`);
      assert.ok(Math.abs(mine.evalLoss - foreign.evalLoss) <= 1e-5 * Math.abs(mine.evalLoss), `evaluation ${mine.evalLoss} against ${foreign.evalLoss}`);
    });
  }
});
