import * as tf from '@tensorflow/tfjs';
import {
  DROPOUT, DROPOUT_GRAD, DropoutAttrs, dropoutKey, dropThreshold, registerDropoutKernels,
} from '../kernels/dropout-kernels';
import { dropoutMaskOps } from '../kernels/dropout-mask-ops';
import { hasKernel } from '../kernels/elementwise';

import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology';
interface DropoutArgs extends LayerArgs {
  rate: number;
  seed?: number;
}
interface StockDropout extends tf.layers.Layer {
  rate: number;
}
const StockDropoutClass = tf.layers.dropout({ rate: 0.5 }).constructor as new (args: DropoutArgs) => StockDropout;

/**
 * Inverted dropout with the mask of call `call` of a layer seeded `seed`
 * (dropout-kernels.ts): kept elements are x / (1 - rate), dropped ones 0, and
 * the gradient is dy / (1 - rate) where kept, 0 where dropped. The mask is the
 * same on every backend. On wasm and cpu one kernel does each direction and
 * the backward pass regenerates the mask; elsewhere tensor ops build the mask
 * on the engine's device (dropout-mask-ops.ts) and the backward pass keeps it.
 */
export function seededDropout(x: tf.Tensor, rate: number, seed: number, call: number): tf.Tensor {
  dropThreshold(rate);
  registerDropoutKernels();
  const [key0, key1] = dropoutKey(seed, call);
  const attrs: DropoutAttrs = { rate, key0, key1 };
  const keep = 1 - rate;
  const fused = hasKernel(DROPOUT, x) && hasKernel(DROPOUT_GRAD, x);
  const op = tf.customGrad((...args: (tf.Tensor | ((saved: tf.Tensor[]) => void))[]) => {
    const xIn = args[0] as tf.Tensor;
    const save = args[1] as (saved: tf.Tensor[]) => void;
    if (fused) {
      return {
        value: tf.engine().runKernel(DROPOUT, { x: xIn }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
        gradFunc: (dy: tf.Tensor) => tf.engine().runKernel(DROPOUT_GRAD, { dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
      };
    }
    const mask = dropoutMaskOps(xIn.shape, rate, [key0, key1]);
    save([mask]);
    return {
      value: tf.mul(tf.div(xIn, keep), mask),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.div(tf.mul(dy, saved[0]), keep),
    };
  });
  return op(x);
}

/**
 * Dropout whose masks follow from a seed: a new mask every step, the same
 * sequence of masks in every run with that seed and on every engine. (tfjs's
 * Dropout with a seed draws the same mask at every step.) Saved as a standard
 * Dropout layer.
 */
export class SeededDropout extends StockDropoutClass {
  private calls = 0;

  constructor(private readonly baseSeed: number, args: DropoutArgs) {
    super(args);
  }

  /** Masks drawn so far: the layer's random state, kept in checkpoints. */
  get callCount(): number {
    return this.calls;
  }

  set callCount(calls: number) {
    if (!Number.isSafeInteger(calls) || calls < 0) throw new RangeError(`${this.name}: a call count must be a non-negative integer (got ${calls})`);
    this.calls = calls;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (kwargs['training'] !== true || this.rate <= 0) return tf.clone(x);
    const call = this.calls++;
    return tf.tidy(() => seededDropout(x, this.rate, this.baseSeed, call));
  }
}

/** The call counts of a model's seeded dropout layers, in layer order. */
export function dropoutCalls(model: tf.LayersModel): number[] {
  return model.layers.filter((l): l is SeededDropout => l instanceof SeededDropout).map((l) => l.callCount);
}

/** Sets them back (from a checkpoint), so that the next masks are the ones an uninterrupted run draws. */
export function setDropoutCalls(model: tf.LayersModel, calls: readonly number[]): void {
  const layers = model.layers.filter((l): l is SeededDropout => l instanceof SeededDropout);
  if (layers.length !== calls.length) throw new RangeError(`${calls.length} dropout call counts for a model with ${layers.length} dropout layers`);
  layers.forEach((layer, i) => { layer.callCount = calls[i]; });
}
