import * as tf from '@tensorflow/tfjs';
import { conv2dGradientKernels } from './conv2d-grads';
import { depthwiseGradientKernels } from './depthwise-grads';
import { maxPoolGradKernel } from './max-pool-grad';

let registered = false;

/**
 * Gives the wasm backend the gradient kernels training needs: the ones it lacks
 * (Conv2DBackpropFilter, the depthwise backprops), a correct MaxPoolGrad, and a
 * Conv2DBackpropInput that runs on XNNPACK. Call after the wasm backend is ready.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const configs = [...conv2dGradientKernels(), ...depthwiseGradientKernels(), maxPoolGradKernel()];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, 'wasm') != null) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  registered = true;
}
