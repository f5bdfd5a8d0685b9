import type * as tf from '@tensorflow/tfjs';
import { HeapOwner, simdFunctions } from '../backend/wasm-kernels/simd-module';
import { FunctionBuilder } from '../backend/wasm-kernels/wasm-asm';
import { elementwiseKernels, registerMissing, simdThenScalar } from './elementwise';

/**
 * Dropout with a counter-based mask. Element i of a call keyed (k0, k1) is kept when
 *   bits(i) = ((a * h(i) + k1) mod 2^32) >>> 8 >= threshold,   a = k0 | 1 (odd),
 * threshold = rate * 2^24 rounded, so a fraction `rate` is dropped. h(i) is a fixed hash of the
 * index (lowbias32 twice): it breaks the index's structure once and for all, and the key's
 * multiply-shift (Dietzfelbinger's universal hash) makes every call's mask a fresh one. The
 * bits depend only on the key and the index, so the generated SIMD loop (wasm), the JS loop
 * (cpu) and tensor ops on any other engine (dropout-mask-ops.ts, exact in float32) give the
 * same mask, and the fused kernels regenerate it in the backward pass instead of storing it.
 *
 * Both directions compute what tf.dropout's ops compute, given the mask m
 * (1 kept, 0 dropped) and keep = float32(1 - rate):
 *   forward  y  = (x / keep) * m     (tf.dropout: div(x, keep) * mask)
 *   backward dx = (dy * m) / keep    (the gradients of its mul, then its div)
 * Both are x / keep where kept and x * 0 (a signed zero, NaN for NaN or
 * infinite x) where dropped.
 */

export const DROPOUT = 'FashionMnistDropout';
export const DROPOUT_GRAD = 'FashionMnistDropoutGrad';

/** The mask's key: two 32-bit words. */
export type DropoutKey = [number, number];

const M1 = 0x7feb352d;
const M2 = 0x846ca68b;
/** The index hash's constants. */
const H0 = 0x9e3779b9;
const H1 = 0x85ebca6b;

/** Chris Wellons' lowbias32: a bijective 32-bit hash with good avalanche. Returns an unsigned value. */
export function mix32(value: number): number {
  let x = value | 0;
  x ^= x >>> 16;
  x = Math.imul(x, M1);
  x ^= x >>> 15;
  x = Math.imul(x, M2);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The low and high 32-bit words of an integer (a double up to 2^53, negatives as two's complement). */
function words(value: number): [number, number] {
  const v = Math.floor(value);
  return [v >>> 0, Math.floor(v / 4294967296) >>> 0];
}

/**
 * The key of call number `call` of the layer seeded `seed`: every
 * (seed, call) pair gets its own pseudo-random key.
 */
export function dropoutKey(seed: number, call: number): DropoutKey {
  let h = 0x6a09e667;
  for (const w of [...words(seed), ...words(call)]) h = mix32((h ^ w) + 0x9e3779b9);
  return [h, mix32(h ^ 0xbb67ae85)];
}

/** Elements whose bits are below this are dropped: round(rate * 2^24), for 0 <= rate < 1. */
export function dropThreshold(rate: number): number {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must be in [0, 1), got ${rate}`);
  return Math.min(Math.round(rate * 16777216), 16777215);
}

/** The fixed hash of element i's index, the same for every call (an unsigned 32-bit value). */
export function indexHash(i: number): number {
  return mix32(mix32((i + H0) | 0) ^ H1);
}

/** The random bits of element i: 24 bits. */
export function maskBits(i: number, key: DropoutKey): number {
  return (((Math.imul(key[0] | 1, indexHash(i)) + key[1]) >>> 0) >>> 8);
}

/** The keep-mask (1 kept, 0 dropped) of n elements, computed in JavaScript. */
export function dropoutMask(n: number, rate: number, key: DropoutKey): Float32Array {
  const threshold = dropThreshold(rate);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) mask[i] = maskBits(i, key) >= threshold ? 1 : 0;
  return mask;
}

export interface DropoutAttrs {
  rate: number;
  key0: number;
  key1: number;
}

/** The JS loop: elements [from, to) of either direction. */
function scalarDropout(out: Float32Array, x: Float32Array, from: number, to: number, attrs: DropoutAttrs, forward: boolean): void {
  const key: DropoutKey = [attrs.key0, attrs.key1];
  const threshold = dropThreshold(attrs.rate);
  const keep = Math.fround(1 - attrs.rate);
  for (let i = from; i < to; i++) {
    const m = maskBits(i, key) >= threshold ? 1 : 0;
    // Float32 rounding after each operation, as the ops and the SIMD loop round.
    out[i] = forward ? Math.fround(x[i] / keep) * m : Math.fround(x[i] * m) / keep;
  }
}

/** mix32 of the i32x4 on the stack, in place (t: a v128 scratch local). */
function mix32x4(f: FunctionBuilder, t: number): void {
  const xorShift = (bits: number) => f.tee(t).get(t).i32(bits).simd('i32x4.shr_u').simd('v128.xor');
  xorShift(16);
  f.i32x4Const(M1).simd('i32x4.mul');
  xorShift(15);
  f.i32x4Const(M2).simd('i32x4.mul');
  xorShift(16);
}

/**
 * name(out, x, bytes, a, k1, threshold, keep): out = (x / keep) * m, a = k0 | 1,
 * (forward) or (x * m) / keep (backward) over `bytes` (> 0, a multiple of 16)
 * bytes from element 0.
 */
function buildDropout(name: string, forward: boolean): FunctionBuilder {
  const f = new FunctionBuilder(name, ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'f32']);
  const [out, x, bytes, k0, k1, threshold, keep] = [0, 1, 2, 3, 4, 5, 6];
  const o = f.local('i32');
  const [counter, multiplier, key1, limit, keepV, one, t, m] = Array.from({ length: 8 }, () => f.local('v128'));
  f.i32(H0 | 0).simd('i32x4.splat').i32x4Lanes([0, 1, 2, 3]).simd('i32x4.add').set(counter);
  f.get(k0).simd('i32x4.splat').set(multiplier);
  f.get(k1).simd('i32x4.splat').set(key1);
  f.get(threshold).simd('i32x4.splat').set(limit);
  f.get(keep).simd('f32x4.splat').set(keepV);
  f.f32(1).simd('f32x4.splat').set(one);
  f.i32(0).set(o);
  f.doWhile(o, 16, { local: bytes }, () => {
    f.get(counter);
    mix32x4(f, t);
    f.i32x4Const(H1).simd('v128.xor');
    mix32x4(f, t);
    f.get(multiplier).simd('i32x4.mul').get(key1).simd('i32x4.add').i32(8).simd('i32x4.shr_u');
    f.get(limit).simd('i32x4.ge_u').get(one).simd('v128.and').set(m);
    f.get(out).get(o).i32Add();
    f.get(x).get(o).i32Add().load('v128');
    if (forward) f.get(keepV).simd('f32x4.div').get(m).simd('f32x4.mul');
    else f.get(m).simd('f32x4.mul').get(keepV).simd('f32x4.div');
    f.store('v128');
    f.get(counter).i32x4Const(4).simd('i32x4.add').set(counter);
  });
  return f;
}

function dropoutFill(forward: boolean) {
  return (out: Float32Array, [x]: Float32Array[], raw: Record<string, unknown>, heap: HeapOwner | null): void => {
    const attrs = raw as unknown as DropoutAttrs;
    const fns = heap == null ? null : simdFunctions(heap, 'dropout', () => [buildDropout('forward', true), buildDropout('backward', false)]);
    const simd = fns == null ? null : (n4: number) => {
      fns[forward ? 'forward' : 'backward'](out.byteOffset, x.byteOffset, n4 * 4, attrs.key0 | 1, attrs.key1 | 0,
        dropThreshold(attrs.rate) | 0, Math.fround(1 - attrs.rate));
      return true;
    };
    simdThenScalar(out.length, simd, (from, to) => scalarDropout(out, x, from, to, attrs, forward));
  };
}

let registered = false;

/** Registers the forward (input x) and backward (input dy) kernels for wasm and cpu, once. */
export function registerDropoutKernels(): void {
  if (registered) return;
  registered = true;
  registerMissing([
    ...elementwiseKernels(DROPOUT, ['x'], dropoutFill(true)),
    ...elementwiseKernels(DROPOUT_GRAD, ['dy'], dropoutFill(false)),
  ] as tf.KernelConfig[]);
}
