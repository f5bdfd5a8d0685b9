import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, ensureBatchNormKernels } from '../kernels/batch-norm-kernels';

import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology';
interface BatchNormArgs extends LayerArgs {
  momentum?: number;
  epsilon?: number;
}
interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): void;
}
interface StockBatchNorm extends tf.layers.Layer {
  momentum: number;
  epsilon: number;
  gamma: LayerVariableLike;
  beta: LayerVariableLike;
  movingMean: LayerVariableLike;
  movingVariance: LayerVariableLike;
}
type StockBatchNormClass = new (args: BatchNormArgs) => StockBatchNorm;

const StockBatchNormalization = tf.layers.batchNormalization({}).constructor as StockBatchNormClass;

interface BatchStats {
  mean: tf.Tensor;
  variance: tf.Tensor;
}

/** Collectives for synchronized BatchNorm; null: each worker normalizes with its own batch. */
interface StatsReducer {
  readonly rank: number;
  readonly size: number;
  allReduce(data: Float32Array): void;
}
let syncWith: StatsReducer | null = null;

/**
 * Makes every BatchNorm layer in this process normalize with the statistics
 * of the global batch (PyTorch's SyncBatchNorm), or, with null, of its own.
 */
export function setBatchNormSync(reducer: StatsReducer | null): void {
  syncWith = reducer != null && reducer.size > 1 ? reducer : null;
}

/**
 * Mean and biased variance of the global batch, from every rank's count,
 * mean and variance (Chan et al.'s parallel combination, in float64).
 */
function globalMoments(reducer: StatsReducer, rows: number, mean: Float32Array, variance: Float32Array): { mean: Float32Array; variance: Float32Array; rows: number } {
  const C = mean.length;
  const slot = 2 * C + 1;
  const gathered = new Float32Array(slot * reducer.size);
  const mine = reducer.rank * slot;
  gathered[mine] = rows;
  gathered.set(mean, mine + 1);
  gathered.set(variance, mine + 1 + C);
  reducer.allReduce(gathered);
  let total = 0;
  const gMean = new Float64Array(C);
  for (let r = 0; r < reducer.size; r++) {
    const n = gathered[r * slot];
    total += n;
    for (let c = 0; c < C; c++) gMean[c] += n * gathered[r * slot + 1 + c];
  }
  for (let c = 0; c < C; c++) gMean[c] /= total;
  const gVar = new Float64Array(C);
  for (let r = 0; r < reducer.size; r++) {
    const n = gathered[r * slot];
    for (let c = 0; c < C; c++) {
      const d = gathered[r * slot + 1 + c] - gMean[c];
      gVar[c] += n * (gathered[r * slot + 1 + C + c] + d * d);
    }
  }
  for (let c = 0; c < C; c++) gVar[c] /= total;
  return { mean: Float32Array.from(gMean), variance: Float32Array.from(gVar), rows: total };
}

/**
 * SyncBatchNorm's training step: normalize with the global batch's moments;
 * in the backward pass, sum dy and dy * xhat over all ranks. The parameter
 * gradients stay local (DDP averages them like every other gradient).
 */
function normalizeSynced(reducer: StatsReducer, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): { y: tf.Tensor; stats: BatchStats; rows: number } {
  const channels = x.shape[x.shape.length - 1];
  const rows = x.size / channels;
  let stats: BatchStats | null = null;
  let globalRows = rows;
  const forward = tf.customGrad((...args: (tf.Tensor | ((saved: tf.Tensor[]) => void))[]) => {
    const [xIn, g, b] = args as tf.Tensor[];
    const save = args[3] as (saved: tf.Tensor[]) => void;
    const x2 = tf.reshape(xIn, [rows, channels]);
    const { mean: localMean, variance: localVariance } = tf.moments(x2, 0);
    const moments = globalMoments(reducer, rows, localMean.dataSync() as Float32Array, localVariance.dataSync() as Float32Array);
    globalRows = moments.rows;
    const mean = tf.tensor1d(moments.mean);
    const variance = tf.tensor1d(moments.variance);
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    const xHat = tf.mul(tf.sub(x2, mean), invStd);
    stats = { mean: tf.keep(mean), variance: tf.keep(variance) };
    save([xHat, invStd, g]);
    return {
      value: tf.reshape(tf.add(tf.mul(xHat, g), b), xIn.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxHat, sInvStd, sGamma] = saved;
        const dy2 = tf.reshape(dy, [rows, channels]);
        const dBeta = tf.sum(dy2, 0);
        const dGamma = tf.sum(tf.mul(dy2, sxHat), 0);
        const sums = new Float32Array(2 * channels);
        sums.set(dBeta.dataSync() as Float32Array);
        sums.set(dGamma.dataSync() as Float32Array, channels);
        reducer.allReduce(sums);
        const meanDy = tf.tensor1d(sums.subarray(0, channels).map((v) => v / globalRows));
        const meanDyXhat = tf.tensor1d(sums.subarray(channels).map((v) => v / globalRows));
        const centered = tf.sub(tf.sub(dy2, meanDy), tf.mul(sxHat, meanDyXhat));
        return [tf.reshape(tf.mul(centered, tf.mul(sGamma, sInvStd)), dy.shape), dGamma, dBeta];
      },
    };
  });
  const y = forward(x, gamma, beta);
  return { y, stats: stats as unknown as BatchStats, rows: globalRows };
}

/**
 * Training-mode batch normalisation over all axes but the last, with the
 * closed-form gradient. (tfjs's own gradient tiles every [C] vector to the
 * input's full shape and spends most of a WideResNet step there.) On wasm and
 * cpu one fused kernel does each direction; elsewhere tfjs ops do.
 */
function normalizeInTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): { y: tf.Tensor; stats: BatchStats } {
  const channels = x.shape[x.shape.length - 1];
  const rows = x.size / channels;
  const fused = ensureBatchNormKernels();
  let stats: BatchStats | null = null;
  const forward = tf.customGrad((...args: (tf.Tensor | ((saved: tf.Tensor[]) => void))[]) => {
    const [xIn, g, b] = args as tf.Tensor[];
    const save = args[3] as (saved: tf.Tensor[]) => void;
    const x2 = tf.reshape(xIn, [rows, channels]) as tf.Tensor2D;
    let y: tf.Tensor;
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (fused) {
      [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x: x2, gamma: g, beta: b }, { epsilon }) as tf.Tensor[];
    } else {
      mean = tf.mean(x2, 0);
      variance = tf.mean(tf.square(tf.sub(x2, mean)), 0);
      y = tf.add(tf.mul(tf.sub(x2, mean), tf.mul(tf.rsqrt(tf.add(variance, epsilon)), g)), b);
    }
    stats = { mean: tf.keep(mean), variance: tf.keep(variance) };
    save([x2, mean, variance, g]);
    return {
      value: tf.reshape(y, xIn.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sMean, sVariance, sGamma] = saved;
        const dy2 = tf.reshape(dy, [rows, channels]);
        if (fused) {
          const [dx, dGamma, dBeta] = tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD,
            { dy: dy2, x: sx, mean: sMean, variance: sVariance, gamma: sGamma }, { epsilon }) as tf.Tensor[];
          return [tf.reshape(dx, dy.shape), dGamma, dBeta];
        }
        const invStd = tf.rsqrt(tf.add(sVariance, epsilon));
        const xHat = tf.mul(tf.sub(sx, sMean), invStd);
        const dBeta = tf.sum(dy2, 0);
        const dGamma = tf.sum(tf.mul(dy2, xHat), 0);
        const centered = tf.sub(tf.sub(dy2, tf.div(dBeta, rows)), tf.mul(xHat, tf.div(dGamma, rows)));
        return [tf.reshape(tf.mul(centered, tf.mul(sGamma, invStd)), dy.shape), dGamma, dBeta];
      },
    };
  });
  const y = forward(x, gamma, beta);
  return { y, stats: stats as unknown as BatchStats };
}

/**
 * BatchNormalization with PyTorch's semantics and a fast training gradient.
 * It keeps the stock layer's class name, config and weights, so a saved model
 * is a standard tfjs model. Running statistics: r = (1 - m) r + m batch, with
 * the unbiased batch variance, as torch.nn.BatchNorm2d(momentum = m) does.
 */
export class BatchNorm extends StockBatchNormalization {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const training = kwargs['training'] === true;
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (!training) return super.call(inputs, kwargs) as tf.Tensor;
    return tf.tidy(() => {
      const synced = syncWith != null
        ? normalizeSynced(syncWith, x, this.gamma.read(), this.beta.read(), this.epsilon)
        : { ...normalizeInTraining(x, this.gamma.read(), this.beta.read(), this.epsilon), rows: x.size / x.shape[x.shape.length - 1] };
      const { y, stats, rows } = synced;
      const keep = this.momentum;
      const unbiased = tf.mul(stats.variance, rows / Math.max(1, rows - 1));
      this.movingMean.write(tf.add(tf.mul(this.movingMean.read(), keep), tf.mul(tf.reshape(stats.mean, [-1]), 1 - keep)));
      this.movingVariance.write(tf.add(tf.mul(this.movingVariance.read(), keep), tf.mul(tf.reshape(unbiased, [-1]), 1 - keep)));
      tf.dispose([stats.mean, stats.variance]);
      return y;
    });
  }
}

/** PyTorch's BatchNorm2d defaults: eps 1e-5, running-average momentum 0.1. */
export function batchNorm(name: string): BatchNorm {
  return new BatchNorm({ name, momentum: 0.9, epsilon: 1e-5 });
}
