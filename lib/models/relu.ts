import * as tf from '@tensorflow/tfjs';
import { registerReluGradient } from '../kernels/relu-grad';

/**
 * tfjs's ReLU layer (saved as the standard 'ReLU'), with the one-pass
 * gradient of relu-grad.ts registered for the Relu kernel: same values as
 * tfjs's mul(dy, cast(step(x))), one kernel instead of three.
 */
export function reLU(name: string): tf.layers.Layer {
  registerReluGradient();
  return tf.layers.reLU({ name });
}
