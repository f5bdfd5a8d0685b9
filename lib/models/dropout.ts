import * as tf from '@tensorflow/tfjs';

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
 * Dropout whose masks follow from a seed: a new mask every step, the same
 * sequence of masks in every run with that seed. (tfjs's Dropout with a seed
 * draws the same mask at every step.) Saved as a standard Dropout layer.
 */
export class SeededDropout extends StockDropoutClass {
  private calls = 0;

  constructor(private readonly baseSeed: number, args: DropoutArgs) {
    super(args);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (kwargs['training'] !== true || this.rate <= 0) return tf.clone(x);
    const seed = this.baseSeed * 1_000_003 + this.calls++;
    return tf.tidy(() => tf.dropout(x, this.rate, undefined, seed));
  }
}
