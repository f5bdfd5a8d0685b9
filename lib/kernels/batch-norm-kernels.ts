import * as tf from '@tensorflow/tfjs';
import type { HeapOwner } from '../backend/wasm-kernels/simd-module';
import { batchNormBackward, batchNormForward } from './batch-norm-math';
import { SCRATCH_FLOATS_PER_CHANNEL, simdBatchNormBackward, simdBatchNormForward } from './batch-norm-simd';

type TensorInfo = tf.TensorInfo;

export const BATCH_NORM_TRAIN = 'FashionMnistBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD = 'FashionMnistBatchNormTrainGrad';

/** Reads and writes float32 tensor data on the engines whose memory JavaScript can see. */
interface Memory {
  read(info: TensorInfo): Float32Array;
  /** Allocates outputs, then hands their views to `fill` (views taken after all allocations). */
  outputs(shapes: number[][], fill: (views: Float32Array[], scratch: Float32Array | null) => void, scratchFloats?: number): TensorInfo[];
  /** Where generated SIMD loops can run on this memory (the wasm heap), else null. */
  heap: HeapOwner | null;
}

interface WasmBackendLike extends HeapOwner {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
  disposeData(dataId: object): boolean;
}
interface CpuBackendLike {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

function wasmMemory(backend: WasmBackendLike): Memory {
  return {
    read: (info) => backend.typedArrayFromHeap(info),
    outputs(shapes, fill, scratchFloats) {
      const infos = shapes.map((s) => backend.makeOutput(s, 'float32'));
      const scratch = scratchFloats ? backend.makeOutput([scratchFloats], 'float32') : null;
      fill(infos.map((i) => backend.typedArrayFromHeap(i)), scratch && backend.typedArrayFromHeap(scratch));
      if (scratch) backend.disposeData(scratch.dataId);
      return infos;
    },
    heap: backend,
  };
}

function cpuMemory(backend: CpuBackendLike): Memory {
  return {
    read: (info) => backend.readSync(info.dataId),
    outputs(shapes, fill) {
      const views = shapes.map((s) => new Float32Array(s.reduce((a, b) => a * b, 1)));
      fill(views, null);
      return shapes.map((s, i) => backend.makeTensorInfo(s, 'float32', views[i]));
    },
    heap: null,
  };
}

function kernels(backendName: 'wasm' | 'cpu', memoryOf: (backend: unknown) => Memory): tf.KernelConfig[] {
  const forward = (args: { inputs: Record<string, TensorInfo>; backend: unknown; attrs: Record<string, unknown> }) => {
    const { x, gamma, beta } = args.inputs;
    const epsilon = args.attrs['epsilon'] as number;
    const memory = memoryOf(args.backend);
    const C = gamma.shape[0];
    return memory.outputs([x.shape, [C], [C]], ([y, mean, variance], scratch) => {
      const [xs, gs, bs] = [memory.read(x), memory.read(gamma), memory.read(beta)];
      const stats = { mean, variance };
      const simd = memory.heap != null && scratch != null && simdBatchNormForward(memory.heap, xs, gs, bs, epsilon, y, stats, scratch);
      if (!simd) batchNormForward(xs, gs, bs, epsilon, y, stats);
    }, memory.heap ? SCRATCH_FLOATS_PER_CHANNEL * C : 0);
  };
  const backward = (args: { inputs: Record<string, TensorInfo>; backend: unknown; attrs: Record<string, unknown> }) => {
    const { dy, x, mean, variance, gamma } = args.inputs;
    const epsilon = args.attrs['epsilon'] as number;
    const memory = memoryOf(args.backend);
    const C = gamma.shape[0];
    return memory.outputs([x.shape, [C], [C]], ([dx, dGamma, dBeta], scratch) => {
      const [dys, xs, ms, vs, gs] = [dy, x, mean, variance, gamma].map((t) => memory.read(t));
      const simd = memory.heap != null && scratch != null &&
        simdBatchNormBackward(memory.heap, dys, xs, ms, vs, gs, epsilon, dx, dGamma, dBeta, scratch);
      if (!simd) batchNormBackward(dys, xs, ms, vs, gs, epsilon, dx, dGamma, dBeta);
    }, memory.heap ? SCRATCH_FLOATS_PER_CHANNEL * C : 0);
  };
  return [
    { kernelName: BATCH_NORM_TRAIN, backendName, kernelFunc: forward as unknown as tf.KernelFunc },
    { kernelName: BATCH_NORM_TRAIN_GRAD, backendName, kernelFunc: backward as unknown as tf.KernelFunc },
  ];
}

const registeredFor = new Set<string>();

/**
 * Fused batch-norm kernels for the engines whose tensors live in JavaScript
 * memory (wasm, cpu). Returns whether the current backend has them.
 */
export function ensureBatchNormKernels(): boolean {
  const name = tf.getBackend();
  if (name !== 'wasm' && name !== 'cpu') return false;
  if (!registeredFor.has(name)) {
    const configs = name === 'wasm'
      ? kernels('wasm', (b) => wasmMemory(b as WasmBackendLike))
      : kernels('cpu', (b) => cpuMemory(b as CpuBackendLike));
    for (const config of configs) if (tf.getKernel(config.kernelName, name) == null) tf.registerKernel(config);
    registeredFor.add(name);
  }
  return true;
}
