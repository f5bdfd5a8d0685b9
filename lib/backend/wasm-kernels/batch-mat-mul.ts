import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { dispose, heapF32, sizeOf } from './heap';
import { accumulateMatMul, MatMulPlan } from './simd-matmul';

type TensorInfo = tf.TensorInfo;

/** dst[k, n] = src[n, k] for an [N, K] matrix. */
function transpose(src: Float32Array, N: number, K: number, dst: Float32Array): void {
  const block = 32;
  for (let n0 = 0; n0 < N; n0 += block) {
    for (let k0 = 0; k0 < K; k0 += block) {
      const nEnd = Math.min(N, n0 + block);
      const kEnd = Math.min(K, k0 + block);
      for (let n = n0; n < nEnd; n++) for (let k = k0; k < kEnd; k++) dst[k * N + n] = src[n * K + k];
    }
  }
}

/**
 * BatchMatMul with a transposed operand (the gradients of a dense layer) on
 * the SIMD matmul; other cases, and batch broadcasting, stay with XNNPACK.
 * Null when it does not apply.
 */
function simdBatchMatMul(backend: BackendWasm, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo | null {
  const rank = a.shape.length;
  if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32' || rank < 2 || b.shape.length !== rank) return null;
  const batch = sizeOf(a.shape.slice(0, -2));
  if (batch !== sizeOf(b.shape.slice(0, -2))) return null;
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const [M, K] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const N = transposeB ? bRows : bCols;
  if (N % 4 !== 0 || K !== (transposeB ? bCols : bRows) || M * N * K === 0) return null;
  const plan: MatMulPlan = transposeA ? { M, N, aK: M * 4, aM: 4 } : { M, N, aK: 4, aM: K * 4 };
  const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
  const bt = transposeB ? backend.makeOutput([K, N], 'float32') : null;
  const outView = heapF32(backend, out);
  const aOffset = heapF32(backend, a).byteOffset;
  const bView = heapF32(backend, b);
  const btView = bt && heapF32(backend, bt);
  outView.fill(0);
  let ok = true;
  for (let i = 0; i < batch && ok; i++) {
    let bOffset = bView.byteOffset + i * K * N * 4;
    if (btView != null) {
      transpose(bView.subarray(i * K * N, (i + 1) * K * N), N, K, btView);
      bOffset = btView.byteOffset;
    }
    ok = accumulateMatMul(backend, plan, aOffset + i * M * K * 4, bOffset, outView.byteOffset + i * M * N * 4, K);
  }
  if (bt != null) dispose(backend, bt);
  if (ok) return out;
  dispose(backend, out);
  return null;
}

export function batchMatMulKernel(): tf.KernelConfig {
  const original = tf.getKernel('BatchMatMul', 'wasm');
  if (original == null) throw new Error('wasm backend has no BatchMatMul kernel');
  const kernelFunc = (args: { inputs: { a: TensorInfo; b: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }) => {
    const { inputs: { a, b }, backend, attrs } = args;
    return simdBatchMatMul(backend, a, b, attrs['transposeA'] === true, attrs['transposeB'] === true) ?? original.kernelFunc(args as never);
  };
  return { kernelName: 'BatchMatMul', backendName: 'wasm', setupFunc: original.setupFunc, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
