import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;
type Attrs = Record<string, unknown>;

/**
 * Runs another wasm kernel directly on TensorInfos, the way the wasm backend's
 * own composite kernels do. The caller disposes what it gets back.
 */
export function runKernel(
  backend: BackendWasm,
  kernelName: string,
  inputs: Record<string, TensorInfo>,
  attrs: Attrs = {},
): TensorInfo {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (kernel == null) throw new Error(`wasm kernel ${kernelName} is not registered`);
  const out = kernel.kernelFunc({ inputs, backend, attrs } as never);
  return Array.isArray(out) ? out[0] : out;
}

/** A same-data view with another shape (no copy); dispose it like any output. */
export function reshapeInfo(backend: BackendWasm, x: TensorInfo, shape: number[]): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

export function dispose(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * A Float32Array over the tensor's bytes in the wasm heap. Views are detached
 * when the heap grows: take them after the last allocation, use them at once.
 */
export function heapF32(backend: BackendWasm, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info as never) as Float32Array;
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
