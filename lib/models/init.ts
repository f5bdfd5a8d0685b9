import * as tf from '@tensorflow/tfjs';
import type { Initializer } from '@tensorflow/tfjs-layers/dist/initializers';

/**
 * PyTorch's default initialisation (kaiming_uniform with a = sqrt(5)):
 * weights and biases uniform in +-1/sqrt(fan_in), fan_in = inputs per output
 * (in_channels / groups x kernel area). Each layer gets its own seed so that a
 * run's seed fixes every initial weight.
 */
export class SeededInit {
  private next: number;

  constructor(seed: number) {
    this.next = seed * 7919 + 1;
  }

  uniform(fanIn: number): Initializer {
    const bound = 1 / Math.sqrt(fanIn);
    return tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: this.next++ });
  }

  /** A seed for a layer that draws randomness while it runs (dropout). */
  seed(): number {
    return this.next++;
  }
}
