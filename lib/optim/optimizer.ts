import * as tf from '@tensorflow/tfjs';

/**
 * An optimizer updates parameters in place from their gradients. Its state
 * depends only on the gradients and learning rates it has seen, so workers
 * that apply the same averaged gradients keep identical parameters and state.
 */
export interface Optimizer {
  readonly name: string;
  step(params: tf.Variable[], grads: tf.Tensor[], lr: number): void;
  /** Tensors of state, for checks that all workers agree. */
  state(): tf.Tensor[];
  dispose(): void;
}
