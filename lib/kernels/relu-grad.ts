import * as tf from '@tensorflow/tfjs';
import { HeapOwner, simdFunctions } from '../backend/wasm-kernels/simd-module';
import { FunctionBuilder } from '../backend/wasm-kernels/wasm-asm';
import { elementwiseKernels, hasKernel, registerMissing, simdThenScalar } from './elementwise';

/**
 * ReLU's gradient in one pass. tfjs computes it as mul(dy, cast(step(x)))
 * (three kernels, two or three full-size passes); this kernel computes the
 * same product, dy * step(x), with step(x) = 1 for x > 0, NaN for NaN and 0
 * otherwise (step's values on every backend), so the results are identical
 * to the last bit, signed zeros and NaNs included.
 */
export const RELU_GRAD = 'FashionMnistReluGrad';

function scalarReluGrad(out: Float32Array, dy: Float32Array, x: Float32Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const v = x[i];
    out[i] = dy[i] * (v > 0 ? 1 : v !== v ? NaN : 0);
  }
}

/** reluGrad(out, dy, x, bytes): out = dy * ((x > 0 & 1.0) | (x != x & x)) over bytes (> 0, a multiple of 16). */
function buildReluGrad(): FunctionBuilder {
  const f = new FunctionBuilder('reluGrad', ['i32', 'i32', 'i32', 'i32']);
  const [out, dy, x, bytes] = [0, 1, 2, 3];
  const o = f.local('i32');
  const [one, v] = [f.local('v128'), f.local('v128')];
  f.f32(1).simd('f32x4.splat').set(one);
  f.i32(0).set(o);
  f.doWhile(o, 16, { local: bytes }, () => {
    f.get(out).get(o).i32Add();
    f.get(dy).get(o).i32Add().load('v128');
    f.get(x).get(o).i32Add().load('v128').tee(v).v128Zero().simd('f32x4.gt').get(one).simd('v128.and');
    f.get(v).get(v).simd('f32x4.ne').get(v).simd('v128.and').simd('v128.or');
    f.simd('f32x4.mul').store('v128');
  });
  return f;
}

function fill(out: Float32Array, [dy, x]: Float32Array[], _attrs: Record<string, unknown>, heap: HeapOwner | null): void {
  const fns = heap == null ? null : simdFunctions(heap, 'reluGrad', () => [buildReluGrad()]);
  const simd = fns == null ? null : (n4: number) => {
    fns['reluGrad'](out.byteOffset, dy.byteOffset, x.byteOffset, n4 * 4);
    return true;
  };
  simdThenScalar(out.length, simd, (from, to) => scalarReluGrad(out, dy, x, from, to));
}

/** dy * step(x): the fused kernel where the backend has it, else tfjs's own ops. */
export function reluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  if (hasKernel(RELU_GRAD, dy, x) && tf.util.arraysEqual(dy.shape, x.shape)) {
    return tf.engine().runKernel(RELU_GRAD, { dy, x }, {}) as tf.Tensor;
  }
  return tf.mul(dy, tf.cast(tf.step(x), 'float32'));
}

let registered = false;

/**
 * Replaces tfjs's gradient of the Relu kernel (for every backend: where the
 * fused kernel is missing it runs tfjs's ops) and registers the kernel for
 * wasm and cpu. Idempotent.
 */
export function registerReluGradient(): void {
  if (registered) return;
  registerMissing(elementwiseKernels(RELU_GRAD, ['dy', 'x'], fill));
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x] = saved;
      return { x: () => reluGrad(dy as tf.Tensor, x) };
    },
  });
  registered = true;
}
