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
      const { y, stats } = normalizeInTraining(x, this.gamma.read(), this.beta.read(), this.epsilon);
      const rows = x.size / x.shape[x.shape.length - 1];
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
