import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { buildModel } from '../lib/models';
import { batchNorm } from '../lib/models/batch-norm';
import { Sgd } from '../lib/optim/sgd';
import { Trainer } from '../lib/train/trainer';

type GradCase = () => { inputs: tf.Tensor[]; f: (...xs: tf.Tensor[]) => tf.Scalar };

const normal = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** Every gradient kernel the models use, with the shapes and paddings they use it at. */
const CASES: Record<string, GradCase> = {
  'conv2d 3x3 same, no bias': () => ({ inputs: [normal([2, 6, 6, 3], 1), normal([3, 3, 3, 5], 2)], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').square().sum() }),
  'conv2d 3x3 valid (cnn)': () => ({ inputs: [normal([2, 13, 13, 4], 1), normal([3, 3, 4, 6], 2)], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid').square().sum() }),
  'conv2d 3x3 one input channel': () => ({ inputs: [normal([2, 28, 28, 1], 1), normal([3, 3, 1, 8], 2)], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').square().sum() }),
  'conv2d 1x1 skip path': () => ({ inputs: [normal([2, 7, 7, 16], 1), normal([1, 1, 16, 32], 2)], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').square().sum() }),
  'conv2d 3x3 wide': () => ({ inputs: [normal([3, 14, 14, 32], 1), normal([3, 3, 32, 64], 2)], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').square().sum() }),
  'depthwise 3x3 multiplier 1': () => ({ inputs: [normal([2, 7, 7, 8], 1), normal([3, 3, 8, 1], 2)], f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').square().sum() }),
  'depthwise 3x3 multiplier 2': () => ({ inputs: [normal([2, 7, 7, 4], 1), normal([3, 3, 4, 2], 2)], f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').square().sum() }),
  'depthwise 3x3 multiplier 10': () => ({ inputs: [normal([2, 6, 6, 3], 1), normal([3, 3, 3, 10], 2)], f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').square().sum() }),
  'depthwise 3x3 valid': () => ({ inputs: [normal([2, 6, 6, 2], 1), normal([3, 3, 2, 3], 2)], f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid').square().sum() }),
  'max-pool 2 after ReLU (ties)': () => ({ inputs: [normal([2, 8, 8, 3], 1)], f: (x) => tf.maxPool(tf.relu(x) as tf.Tensor4D, 2, 2, 'valid').mul(normal([2, 4, 4, 3], 5)).sum() }),
  'max-pool 2 odd size': () => ({ inputs: [normal([2, 13, 13, 3], 1)], f: (x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid').mul(normal([2, 6, 6, 3], 5)).sum() }),
  'average-pool 7': () => ({ inputs: [normal([2, 7, 7, 3], 1)], f: (x) => tf.avgPool(x as tf.Tensor4D, 7, 7, 'valid').mul(normal([2, 1, 1, 3], 5)).sum() }),
  'dense': () => ({ inputs: [normal([8, 20], 1), normal([20, 10], 2), normal([10], 3)], f: (x, w, b) => tf.relu(tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b)).square().sum() }),
  'softmax cross-entropy': () => ({ inputs: [normal([8, 10], 1)], f: (x) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10), x) as tf.Scalar }),
};

function gradsOn(backend: string, makeCase: GradCase): Float32Array[] {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const { inputs, f } = makeCase();
    return tf.grads(f)(inputs).map((g) => g.dataSync() as Float32Array);
  });
}

/** Largest |a - b| relative to the largest |a| of the tensor. */
function relativeError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / (scale || 1);
}

describe('wasm gradient kernels match the pure-JS cpu backend', () => {
  before(async () => {
    await initEngine('wasm');
  });

  for (const [name, makeCase] of Object.entries(CASES)) {
    it(name, () => {
      const expected = gradsOn('cpu', makeCase);
      const actual = gradsOn('wasm', makeCase);
      expected.forEach((e, i) => {
        const err = relativeError(e, actual[i]);
        assert.ok(err < 1e-4, `input ${i}: relative error ${err.toExponential(2)}`);
      });
    });
  }

  it('batch norm in training mode: fused kernels match tfjs own BatchNormalization', () => {
    const x = normal([4, 5, 5, 6], 7);
    const weights = normal([4, 5, 5, 6], 8);
    const stock = tf.layers.batchNormalization({ epsilon: 1e-5 });
    const ours = batchNorm('bn_test');
    stock.build(x.shape);
    ours.build(x.shape);
    const gammaBeta = [tf.randomUniform([6], 0.5, 1.5, 'float32', 9), tf.randomUniform([6], -1, 1, 'float32', 10)];
    stock.setWeights([...gammaBeta, tf.zeros([6]), tf.ones([6])]);
    ours.setWeights([...gammaBeta, tf.zeros([6]), tf.ones([6])]);
    for (const backend of ['cpu', 'wasm']) {
      tf.setBackend(backend);
      const lossOf = (layer: tf.layers.Layer) => (input: tf.Tensor) =>
        tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, weights)) as tf.Scalar;
      const expected = tf.grad(lossOf(stock))(x).dataSync() as Float32Array;
      const actual = tf.grad(lossOf(ours))(x).dataSync() as Float32Array;
      const err = relativeError(expected, actual);
      assert.ok(err < 1e-4, `${backend}: relative error ${err.toExponential(2)}`);
      const yStock = (stock.apply(x, { training: true }) as tf.Tensor).dataSync() as Float32Array;
      const yOurs = (ours.apply(x, { training: true }) as tf.Tensor).dataSync() as Float32Array;
      assert.ok(relativeError(yStock, yOurs) < 1e-5);
    }
  });

  // wideresnet-dw built narrow (its layers with 16 to 64 channels instead of 160 to 640): the pure-JS
  // cpu backend took 33 s for the full one's gradients on a 2-core VM.
  for (const modelName of ['cnn', 'wideresnet-dw'] as const) {
    it(`every parameter gradient of ${modelName}${modelName === 'cnn' ? '' : ' (narrow)'}, wasm vs cpu`, () => {
      const batch = {
        images: Float32Array.from({ length: 3 * 784 }, (_, i) => ((i * 7919) % 256) / 255),
        labels: Int32Array.from([1, 4, 9]),
      };
      const gradientsOn = (backend: string) => {
        tf.setBackend(backend);
        const trainer = new Trainer(buildModel(modelName, 3, modelName === 'cnn' ? {} : { widths: [1, 16, 16, 32, 64] }), new Sgd({ momentum: 0 }), 64);
        const { loss, grads } = trainer.computeGradients(batch);
        const arrays = grads.map((g) => g.dataSync() as Float32Array);
        tf.dispose(grads);
        return { loss, arrays, names: trainer.params.map((p) => p.name) };
      };
      const expected = gradientsOn('cpu');
      const actual = gradientsOn('wasm');
      assert.ok(Math.abs(expected.loss - actual.loss) < 1e-4 * Math.abs(expected.loss));
      // Some gradients are sums that cancel to about zero (the gamma of a BatchNorm
      // followed by another): measure every error against at least a thousandth
      // of the model's largest gradient, not against that near-zero value.
      const largest = Math.max(...expected.arrays.map((e) => e.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
      expected.arrays.forEach((e, i) => {
        const scale = Math.max(e.reduce((m, v) => Math.max(m, Math.abs(v)), 0), 1e-3 * largest);
        const a = actual.arrays[i];
        const err = e.reduce((m, v, j) => Math.max(m, Math.abs(v - a[j])), 0) / scale;
        assert.ok(err < 1e-4, `${expected.names[i]}: error ${err.toExponential(2)} of its scale`);
      });
    });
  }
});
