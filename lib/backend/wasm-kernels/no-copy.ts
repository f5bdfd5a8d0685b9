import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;

/**
 * Identity, and Cast to the same dtype, share the input's data (as Reshape
 * and the cpu backend's Identity do) instead of copying it: tensors are never
 * written in place. Training calls them on every large activation (clone,
 * gradient bookkeeping, ReLU's and Multiply's gradients).
 */
function shareData(backend: BackendWasm, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function noCopyKernels(): tf.KernelConfig[] {
  const identity = tf.getKernel('Identity', 'wasm');
  const cast = tf.getKernel('Cast', 'wasm');
  if (identity == null || cast == null) throw new Error('wasm backend has no Identity or Cast kernel');
  return [
    {
      kernelName: 'Identity', backendName: 'wasm',
      kernelFunc: ((args: { inputs: { x: TensorInfo }; backend: BackendWasm }) =>
        args.inputs.x.dtype === 'string' ? identity.kernelFunc(args as never) : shareData(args.backend, args.inputs.x)) as unknown as tf.KernelFunc,
    },
    {
      kernelName: 'Cast', backendName: 'wasm',
      kernelFunc: ((args: { inputs: { x: TensorInfo }; backend: BackendWasm; attrs: { dtype: tf.DataType } }) =>
        args.inputs.x.dtype === args.attrs.dtype && args.attrs.dtype !== 'string'
          ? shareData(args.backend, args.inputs.x)
          : cast.kernelFunc(args as never)) as unknown as tf.KernelFunc,
    },
  ];
}
