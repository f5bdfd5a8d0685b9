/**
 * Autograd hooks for TensorFlow.js, which has none: while a tap runs, each trainable weight a layer
 * reads is passed through an identity whose gradient function hands the weight's gradient to a hook
 * the moment the backward pass has computed it, then returns it unchanged. PyTorch's DDP registers
 * the same kind of hook on each parameter's gradient accumulator.
 */
import * as tf from '@tensorflow/tfjs';

/** `param`: the weight's index in the model's trainable weights. */
export type GradientHook = (param: number, grad: tf.Tensor) => void;

interface ReadableWeight {
  read(): tf.Tensor;
}

export class GradientTap {
  private hook: GradientHook | null = null;
  private readonly weights: ReadableWeight[];
  private readonly reads: (() => tf.Tensor)[];

  constructor(model: tf.LayersModel) {
    this.weights = model.trainableWeights as unknown as ReadableWeight[];
    this.reads = this.weights.map((w) => w.read.bind(w));
    this.weights.forEach((weight, param) => {
      const plain = this.reads[param];
      const identity = (x: tf.Tensor) => ({
        value: x.clone(),
        gradFunc: (dy: tf.Tensor) => {
          this.hook?.(param, dy);
          return dy;
        },
      });
      const tapped = tf.customGrad(identity as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;
      weight.read = () => (this.hook ? tapped(plain()) : plain());
    });
  }

  /** Runs `f` (a forward and backward pass) with `hook` receiving every weight's gradient. */
  run<T>(hook: GradientHook, f: () => T): T {
    this.hook = hook;
    try {
      return f();
    } finally {
      this.hook = null;
    }
  }

  /** Gives the weights their own read() back. */
  remove(): void {
    this.weights.forEach((weight, param) => { weight.read = this.reads[param]; });
  }
}
