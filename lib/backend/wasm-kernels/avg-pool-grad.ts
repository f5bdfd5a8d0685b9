import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { simdPoolGrad } from './simd-pool';

type TensorInfo = tf.TensorInfo;

/** AvgPoolGrad: a SIMD loop where windows tile the input (global pooling), else wasm's own kernel. */
export function avgPoolGradKernel(): tf.KernelConfig {
  const original = tf.getKernel('AvgPoolGrad', 'wasm');
  if (original == null) throw new Error('wasm backend has no AvgPoolGrad kernel');
  const kernelFunc = (args: { inputs: { dy: TensorInfo; input: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }) => {
    const { inputs: { dy, input }, backend, attrs } = args;
    const { filterSize, strides, pad } = attrs as {
      filterSize: [number, number] | number; strides: [number, number] | number; pad: 'valid' | 'same' | number;
    };
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad as never);
    return simdPoolGrad('avg', backend, dy, input, info) ?? original.kernelFunc(args as never);
  };
  return { kernelName: 'AvgPoolGrad', backendName: 'wasm', setupFunc: original.setupFunc, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
