import * as tf from '@tensorflow/tfjs';

/**
 * An optimizer updates parameters in place from their gradients. Its state
 * depends only on the gradients and learning rates it has seen, so workers
 * that apply the same averaged gradients keep identical parameters and state.
 */
export interface Optimizer {
  readonly name: string;
  /** One update; `grads[i]` belongs to `params[i]`. The caller keeps (and disposes) `grads`. */
  step(params: tf.Variable[], grads: tf.Tensor[], lr: number): void;
  /** Tensors of state (empty before the first step), for checkpoints and for checks that all workers agree. */
  state(): tf.Tensor[];
  /** Counters of state that are not tensors (LAMB's step count), for checkpoints. */
  counters(): Record<string, number>;
  /** Takes over state saved from `state()` and `counters()` of an optimizer with the same settings (copies the tensors). */
  loadState(tensors: tf.Tensor[], counters: Record<string, number>): void;
  dispose(): void;
  /** One line for the log, e.g. "novograd (beta1 0.95, beta2 0, eps 1e-8, weight decay 0, grad averaging)". */
  describe?(): string;
}

/** Throws when a step's arguments cannot belong together. */
export function checkStepArguments(params: tf.Variable[], grads: tf.Tensor[], lr: number): void {
  if (grads.length !== params.length) {
    throw new RangeError(`optimizer step: ${grads.length} gradients for ${params.length} parameters`);
  }
  if (!(lr >= 0 && Number.isFinite(lr))) throw new RangeError(`optimizer step: the learning rate must be finite and >= 0 (got ${lr})`);
}

/** The L2 norm of a whole tensor, as a float32 scalar. */
export function l2Norm(x: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.sum(tf.square(x)));
}

/** Both scalars > 0. */
export function bothPositive(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.logicalAnd(tf.greater(a, 0), tf.greater(b, 0));
}

/**
 * num / den where `usable`, else 1: the trust ratios of LAMB and LARS, which
 * leave a step unscaled when a parameter or its update is all zeros. (den is
 * replaced by 1 where unusable, so no 0 / 0 is ever computed.)
 */
export function ratioOrOne(num: tf.Tensor, den: tf.Tensor, usable: tf.Tensor): tf.Tensor {
  const one = tf.onesLike(num);
  return tf.where(usable, tf.div(num, tf.where(usable, den, one)), one);
}

/** Zero-filled variables shaped like `like`, not trainable. */
export function zerosLike(like: readonly tf.Tensor[]): tf.Variable[] {
  return like.map((t) => tf.variable(tf.zerosLike(t), false));
}

/** Variables holding copies of `tensors` (the optimizer's own, not trainable). */
export function variablesFrom(tensors: readonly tf.Tensor[]): tf.Variable[] {
  return tensors.map((t) => tf.variable(t.clone(), false));
}

/** Throws unless a saved state's tensors split into `parts` equal groups (m, v, ...). */
export function checkStateGroups(name: string, tensors: readonly tf.Tensor[], parts: number): void {
  if (tensors.length % parts !== 0) {
    throw new RangeError(`${name}: a saved state of ${tensors.length} tensors does not split into ${parts} equal groups`);
  }
}
