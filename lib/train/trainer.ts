import * as tf from '@tensorflow/tfjs';
import { type Communicator, SoloCommunicator } from '../ddp/communicator';
import { GradientTap } from '../ddp/gradient-hooks';
import { DEFAULT_REDUCER_OPTIONS, Reducer, type ReducerOptions, type StepCommunication } from '../ddp/reducer';
import type { Optimizer } from '../optim/optimizer';
import { microBatchSizes } from './memory';

/** One step's gradients, averaged over the ranks, in the order of `model.trainableWeights`. */
export interface Gradients {
  /** Mean loss over the global batch. */
  loss: number;
  grads: tf.Tensor[];
  /** This rank's images. */
  images: number;
  communication: StepCommunication;
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
 * computeGradients (forward and backward per worker, the reducer averaging the
 * gradients across workers as they come) -> applyGradients (the same update
 * everywhere). Alone, the reducer works in a world of one.
 */
export class Trainer {
  readonly params: tf.Variable[];
  private readonly tap: GradientTap;
  reducer: Reducer;

  constructor(
    readonly model: tf.LayersModel,
    readonly optimizer: Optimizer,
    /** Largest batch a forward and backward pass may take at once. */
    readonly microBatch: number,
  ) {
    this.params = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    this.tap = new GradientTap(model);
    this.reducer = new Reducer(this.params.map((p) => p.shape), new SoloCommunicator(), DEFAULT_REDUCER_OPTIONS);
  }

  /** Averages gradients over `comm`'s ranks from now on, with these buckets. */
  useCommunicator(comm: Communicator, options: ReducerOptions = DEFAULT_REDUCER_OPTIONS): void {
    this.reducer = new Reducer(this.params.map((p) => p.shape), comm, options);
  }

  /**
   * Gradients of the mean loss over the batch, averaged over the ranks. The batch is cut into
   * `accumulationSteps` equal parts, each a backward pass of its own whose gradients are summed
   * locally, the all-reduce starting only in the last one (PyTorch's no_sync); a part larger than
   * the micro-batch is cut again. Each pass's loss is weighted n_i / n, which gives the gradient of
   * the whole batch up to float rounding (BatchNorm normalizes each pass by its own statistics).
   */
  computeGradients(batch: Batch, accumulationSteps = 1): Gradients {
    const n = batch.labels.length;
    if (!Number.isInteger(accumulationSteps) || accumulationSteps < 1 || n % accumulationSteps !== 0) {
      throw new RangeError(`a batch of ${n} images cannot be cut into ${accumulationSteps} equal accumulation steps`);
    }
    const sizes = Array.from({ length: accumulationSteps }, () => microBatchSizes(n / accumulationSteps, this.microBatch)).flat();
    let lossSum = 0;
    let offset = 0;
    sizes.forEach((size, pass) => {
      const weight = size / n;
      let passLoss: tf.Scalar | null = null;
      this.reducer.beginPass(pass === 0, pass === sizes.length - 1, () => lossSum + (passLoss?.dataSync()[0] ?? 0));
      const { value, grads } = this.tap.run(this.reducer.hook, () => tf.tidy(() => {
        const xs = tf.tensor4d(batch.images.subarray(offset * 784, (offset + size) * 784), [size, 28, 28, 1]);
        const ys = tf.tensor1d(batch.labels.subarray(offset, offset + size), 'int32');
        return tf.variableGrads(() => {
          const logits = this.model.apply(xs, { training: true }) as tf.Tensor;
          passLoss = tf.mul(crossEntropy(logits, ys), weight) as tf.Scalar;
          return passLoss;
        }, this.params);
      }));
      lossSum += value.dataSync()[0];
      passLoss = null; // disposed with the pass: a bucket started later (--no-overlap) reads lossSum alone
      tf.dispose([value, ...Object.values(grads)]);
      offset += size;
    });
    const reduced = this.reducer.finish();
    return { loss: reduced.loss, grads: reduced.grads, images: n, communication: reduced.communication };
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
