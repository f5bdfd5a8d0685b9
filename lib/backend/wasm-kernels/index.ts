import * as tf from '@tensorflow/tfjs';
import { conv2dGradientKernels } from './conv2d-grads';
import { depthwiseGradientKernels } from './depthwise-grads';
import { avgPoolGradKernel } from './avg-pool-grad';
import { batchMatMulKernel } from './batch-mat-mul';
import { maxPoolGradKernel } from './max-pool-grad';
import { noCopyKernels } from './no-copy';
import { sumKernel } from './sum';
import { registerReluGradient } from '../../kernels/relu-grad';

let registered = false;

/**
 * Gives the wasm backend the gradient kernels training needs: the ones it lacks
 * (Conv2DBackpropFilter, the depthwise backprops), a correct MaxPoolGrad, a
 * Conv2DBackpropInput that runs on XNNPACK, and faster versions of kernels a
 * training step spends time in (depthwise conv with multiplier 1, AvgPoolGrad,
 * transposed BatchMatMul, Sum over leading axes, and an Identity and
 * same-dtype Cast that share data). Where it can, the work runs in generated
 * SIMD loops on the wasm heap (simd-module.ts), else as before. Also
 * registers the one-pass ReLU gradient (lib/kernels/relu-grad.ts).
 * Call after the wasm backend is ready.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const configs = [
    ...conv2dGradientKernels(), ...depthwiseGradientKernels(), maxPoolGradKernel(), avgPoolGradKernel(), batchMatMulKernel(),
    sumKernel(), ...noCopyKernels(),
  ];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, 'wasm') != null) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  registerReluGradient();
  registered = true;
}
