import * as tf from '@tensorflow/tfjs';
import type { Optimizer } from '../optim/optimizer';
import { microBatchSizes } from './memory';

/** One step's gradients, in the order of `model.trainableWeights`. */
export interface Gradients {
  /** Mean loss over the batch. */
  loss: number;
  grads: tf.Tensor[];
  images: number;
}

export interface Batch {
  /** [n, 28, 28, 1] floats in [0, 1]. */
  images: Float32Array;
  labels: Int32Array;
}

function crossEntropy(logits: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  const oneHot = tf.oneHot(labels, logits.shape[1] as number);
  return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
}

/**
 * A model and its optimizer, split the way data-parallel training needs:
 * computeGradients (per worker) -> average across workers -> applyGradients
 * (the same update everywhere).
 */
export class Trainer {
  readonly params: tf.Variable[];

  constructor(
    readonly model: tf.LayersModel,
    readonly optimizer: Optimizer,
    /** Largest batch a forward and backward pass may take at once. */
    readonly microBatch: number,
  ) {
    this.params = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  }

  /**
   * Gradients of the mean loss over the batch. Batches larger than the
   * micro-batch are split and their gradients summed with weights n_i / n,
   * which gives the same result up to float rounding (BatchNorm then
   * normalizes each micro-batch by its own statistics).
   */
  computeGradients(batch: Batch): Gradients {
    const n = batch.labels.length;
    const sizes = microBatchSizes(n, this.microBatch);
    let sum: tf.Tensor[] | null = null;
    let lossSum = 0;
    let offset = 0;
    for (const size of sizes) {
      const weight = size / n;
      const { value, grads } = tf.tidy(() => {
        const xs = tf.tensor4d(batch.images.subarray(offset * 784, (offset + size) * 784), [size, 28, 28, 1]);
        const ys = tf.tensor1d(batch.labels.subarray(offset, offset + size), 'int32');
        return tf.variableGrads(() => {
          const logits = this.model.apply(xs, { training: true }) as tf.Tensor;
          return tf.mul(crossEntropy(logits, ys), weight) as tf.Scalar;
        }, this.params);
      });
      lossSum += value.dataSync()[0];
      value.dispose();
      const ordered = this.params.map((p) => grads[p.name]);
      if (sum == null) {
        sum = ordered;
      } else {
        const previous: tf.Tensor[] = sum;
        sum = previous.map((s, i) => tf.add(s, ordered[i]));
        tf.dispose([...previous, ...ordered]);
      }
      offset += size;
    }
    return { loss: lossSum, grads: sum as tf.Tensor[], images: n };
  }

  /** Applies (already averaged) gradients and disposes them. */
  applyGradients(grads: tf.Tensor[], lr: number): void {
    this.optimizer.step(this.params, grads, lr);
    tf.dispose(grads);
  }

  /** Mean loss and accuracy over a set, in inference mode. */
  evaluate(images: Float32Array, labels: Int32Array, chunk = 500): { loss: number; accuracy: number } {
    const n = labels.length;
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < n; start += chunk) {
      const size = Math.min(chunk, n - start);
      const [loss, hits] = tf.tidy(() => {
        const xs = tf.tensor4d(images.subarray(start * 784, (start + size) * 784), [size, 28, 28, 1]);
        const ys = tf.tensor1d(labels.subarray(start, start + size), 'int32');
        const logits = this.model.apply(xs, { training: false }) as tf.Tensor2D;
        const lossValue = tf.mul(crossEntropy(logits, ys), size);
        const hitCount = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), ys), 'int32'));
        return [lossValue.dataSync()[0], hitCount.dataSync()[0]];
      });
      lossSum += loss;
      correct += hits;
    }
    return { loss: lossSum / n, accuracy: correct / n };
  }
}
