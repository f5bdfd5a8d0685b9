import * as tf from '@tensorflow/tfjs';
import type { HeapOwner } from '../backend/wasm-kernels/simd-module';

type TensorInfo = tf.TensorInfo;
type Attrs = Record<string, unknown>;

/**
 * Fills `out` (float32, the first input's shape) from the float32 `inputs`,
 * element by element. `heap` is the wasm backend when the views lie in its
 * heap (generated SIMD loops can then run on them), else null (cpu).
 */
export type ElementwiseFill = (out: Float32Array, inputs: Float32Array[], attrs: Attrs, heap: HeapOwner | null) => void;

interface WasmBackendLike extends HeapOwner {
  /** Looking a tensor up moves its data here first when it lives on another backend. */
  dataIdMap: { get(dataId: object): unknown };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}
interface CpuBackendLike {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: unknown;
  attrs: Attrs;
}

/**
 * One kernel, for wasm and for cpu, whose float32 output has the shape of
 * input `names[0]` and is computed by `fill`. On wasm every view is taken
 * after the last allocation (an allocation can grow the heap and detach
 * earlier views).
 */
export function elementwiseKernels(kernelName: string, names: string[], fill: ElementwiseFill): tf.KernelConfig[] {
  const wasm = ({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const b = backend as WasmBackendLike;
    // Bring inputs that live on another backend over before taking any view:
    // the move allocates, which can grow (and so detach) the heap.
    for (const n of names) b.dataIdMap.get(inputs[n].dataId);
    const out = b.makeOutput(inputs[names[0]].shape, 'float32');
    fill(b.typedArrayFromHeap(out), names.map((n) => b.typedArrayFromHeap(inputs[n])), attrs, b);
    return out;
  };
  const cpu = ({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const b = backend as CpuBackendLike;
    const shape = inputs[names[0]].shape;
    const out = new Float32Array(shape.reduce((a, c) => a * c, 1));
    fill(out, names.map((n) => b.readSync(inputs[n].dataId)), attrs, null);
    return b.makeTensorInfo(shape, 'float32', out);
  };
  return [
    { kernelName, backendName: 'wasm', kernelFunc: wasm as unknown as tf.KernelFunc },
    { kernelName, backendName: 'cpu', kernelFunc: cpu as unknown as tf.KernelFunc },
  ];
}

/** Registers each config whose kernel is not registered yet. */
export function registerMissing(configs: tf.KernelConfig[]): void {
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, config.backendName) == null) tf.registerKernel(config);
  }
}

/**
 * Whether `kernelName` runs on the current backend for these (float32)
 * tensors; else callers take their tf-ops path.
 */
export function hasKernel(kernelName: string, ...tensors: tf.Tensor[]): boolean {
  return tensors.every((t) => t.dtype === 'float32') && tf.getKernel(kernelName, tf.getBackend()) != null;
}

/**
 * Splits n elements into a SIMD part (whole groups of 4) and a tail: `simd`
 * runs on the first n4 elements when n4 > 0 and it is given, `scalar` on
 * [from, n). Returns nothing; `simd` returns false when it cannot run, and
 * then `scalar` covers everything.
 */
export function simdThenScalar(n: number, simd: ((n4: number) => boolean) | null, scalar: (from: number, to: number) => void): void {
  const n4 = n - (n % 4);
  const done = n4 > 0 && simd != null && simd(n4) ? n4 : 0;
  if (done < n) scalar(done, n);
}
