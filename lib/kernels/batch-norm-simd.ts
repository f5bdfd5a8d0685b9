import { HeapOwner, SimdFunctions, simdFunctions } from '../backend/wasm-kernels/simd-module';
import { FunctionBuilder } from '../backend/wasm-kernels/wasm-asm';
import {
  Affine, BatchNormStats, forwardCoefficients, gradCoefficients, GradCoefficients, ShiftedSums,
} from './batch-norm-math';

/**
 * The passes of batch-norm-math.ts as generated SIMD loops on the wasm heap,
 * for channel counts that are multiples of 4. The channel sums run over
 * blocks of rows: per block and four channels the float64 accumulators stay
 * in registers, then go to the float64 totals in memory.
 */

/** Rows per block: 64 rows of 640 channels are 160 KB, which stays in L2. */
const BLOCK_ROWS = 64;

/** Floats of heap scratch the passes need per channel. */
export const SCRATCH_FLOATS_PER_CHANNEL = 12;

interface SumsLoop {
  f: FunctionBuilder;
  /** Byte offset of the current four channels in the current row (add to a row pointer). */
  o: number;
  /** Low and high float64 halves of (b - shift) for the current four channels. */
  tLo: number; tHi: number;
  /** Two accumulator pairs, flushed to sumA and sumB. */
  aLo: number; aHi: number; bLo: number; bHi: number;
}

/**
 * name(p, q, blocks, rows, C4, shift, sumA, sumB) over `blocks` blocks of
 * `rows` rows of C4 bytes at p and q (same layout): `accumulate` adds to the
 * two accumulator pairs, given t = q - shift and the local holding p
 * (shift, sumA, sumB: float64[C]).
 */
function buildSums(name: string, accumulate: (loop: SumsLoop, p: number) => void): FunctionBuilder {
  const f = new FunctionBuilder(name, ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [p, q, blocks, rows, C4, shift, sumA, sumB] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [block, cv, cv2, o, end, blockBytes] = Array.from({ length: 6 }, () => f.local('i32'));
  const [sLo, sHi, tLo, tHi, aLo, aHi, bLo, bHi, v] = Array.from({ length: 9 }, () => f.local('v128'));
  const loop: SumsLoop = { f, o, tLo, tHi, aLo, aHi, bLo, bHi };
  f.get(rows).get(C4).i32Mul().set(blockBytes).i32(0).set(block);
  f.doWhile(block, 1, { local: blocks }, () => {
    f.i32(0).set(cv);
    f.doWhile(cv, 16, { local: C4 }, () => {
      f.get(cv).get(cv).i32Add().set(cv2);
      f.get(shift).get(cv2).i32Add().load('v128').set(sLo);
      f.get(shift).get(cv2).i32Add().load('v128', 16).set(sHi);
      for (const acc of [aLo, aHi, bLo, bHi]) f.v128Zero().set(acc);
      f.get(cv).tee(o).get(blockBytes).i32Add().set(end);
      f.doWhile(o, { local: C4 }, { local: end }, () => {
        f.get(q).get(o).i32Add().load('v128').set(v);
        f.get(v).simd('f64x2.promote_low_f32x4').get(sLo).simd('f64x2.sub').set(tLo);
        f.get(v).promoteHigh().get(sHi).simd('f64x2.sub').set(tHi);
        accumulate(loop, p);
      });
      for (const [sum, lo, hi] of [[sumA, aLo, aHi], [sumB, bLo, bHi]]) {
        f.get(sum).get(cv2).i32Add().get(sum).get(cv2).i32Add().load('v128').get(lo).simd('f64x2.add').store('v128');
        f.get(sum).get(cv2).i32Add().get(sum).get(cv2).i32Add().load('v128', 16).get(hi).simd('f64x2.add').store('v128', 16);
      }
    });
    f.get(p).get(blockBytes).i32Add().set(p);
    f.get(q).get(blockBytes).i32Add().set(q);
  });
  return f;
}

/** acc += value, for a float64x2 accumulator and a value pushed by `push`. */
function addTo(f: FunctionBuilder, acc: number, push: () => void): void {
  f.get(acc);
  push();
  f.simd('f64x2.add').set(acc);
}

/** forwardSums(x, x, ...): sumA += x - shift, sumB += (x - shift)^2. */
function buildForwardSums(): FunctionBuilder {
  return buildSums('forwardSums', ({ f, tLo, tHi, aLo, aHi, bLo, bHi }) => {
    addTo(f, aLo, () => f.get(tLo));
    addTo(f, aHi, () => f.get(tHi));
    addTo(f, bLo, () => f.get(tLo).get(tLo).simd('f64x2.mul'));
    addTo(f, bHi, () => f.get(tHi).get(tHi).simd('f64x2.mul'));
  });
}

/** gradSums(dy, x, ..., mean, sumDy, sumDyXc): sumA += dy, sumB += dy * (x - mean). */
function buildGradSums(): FunctionBuilder {
  return buildSums('gradSums', ({ f, o, tLo, tHi, aLo, aHi, bLo, bHi }, dy) => {
    const [g, gLo, gHi] = [f.local('v128'), f.local('v128'), f.local('v128')];
    f.get(dy).get(o).i32Add().load('v128').set(g);
    f.get(g).simd('f64x2.promote_low_f32x4').set(gLo);
    f.get(g).promoteHigh().set(gHi);
    addTo(f, aLo, () => f.get(gLo));
    addTo(f, aHi, () => f.get(gHi));
    addTo(f, bLo, () => f.get(gLo).get(tLo).simd('f64x2.mul'));
    addTo(f, bHi, () => f.get(gHi).get(tHi).simd('f64x2.mul'));
  });
}

/** Pushes, as float64x2, the current half (channels 0-1 or 2-3) of an operand. */
type Push = () => void;

/**
 * Builds name(out, p, q, rows, C4, k), which writes out = `value` for each
 * row and four channels, two at a time in float64: `value` pushes the result
 * given pushers for p, q and coefficient vector i (k holds float64[C] vectors
 * back to back). Computing in float64 and rounding once gives exactly what
 * the JS loops of batch-norm-math.ts give.
 */
function buildApply(name: string, value: (f: FunctionBuilder, p: Push, q: Push, k: (i: number) => void) => void): FunctionBuilder {
  const f = new FunctionBuilder(name, ['i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [out, p, q, rows, C4, k] = [0, 1, 2, 3, 4, 5];
  const [end, cv, kc, C8] = Array.from({ length: 4 }, () => f.local('i32'));
  const [pv, qv] = [f.local('v128'), f.local('v128')];
  f.get(rows).get(C4).i32Mul().get(out).i32Add().set(end);
  f.get(C4).get(C4).i32Add().set(C8);
  f.doWhile(out, { local: C4 }, { local: end }, () => {
    f.i32(0).set(cv);
    f.doWhile(cv, 16, { local: C4 }, () => {
      f.get(p).get(cv).i32Add().load('v128').set(pv);
      f.get(q).get(cv).i32Add().load('v128').set(qv);
      f.get(k).get(cv).i32Add().get(cv).i32Add().set(kc);
      f.get(out).get(cv).i32Add();
      for (const half of [0, 1]) {
        const widen = (v: number) => () => {
          f.get(v);
          if (half === 0) f.simd('f64x2.promote_low_f32x4');
          else f.promoteHigh();
        };
        value(f, widen(pv), widen(qv), (i) => {
          f.get(kc);
          for (let j = 0; j < i; j++) f.get(C8).i32Add();
          f.load('v128', half * 16);
        });
        f.simd('f32x4.demote_f64x2_zero');
      }
      f.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]).store('v128');
    });
    f.get(p).get(C4).i32Add().set(p);
    f.get(q).get(C4).i32Add().set(q);
  });
  return f;
}

/** y = x * scale + shift, k = [scale, shift]. */
function buildAffine(): FunctionBuilder {
  return buildApply('affine', (f, x, _q, k) => {
    x();
    k(0);
    f.simd('f64x2.mul');
    k(1);
    f.simd('f64x2.add');
  });
}

/** dx = k1 * dy + k2 * x + k3, k = [k1, k2, k3]. */
function buildGradApply(): FunctionBuilder {
  return buildApply('gradApply', (f, dy, x, k) => {
    k(0);
    dy();
    f.simd('f64x2.mul');
    k(1);
    x();
    f.simd('f64x2.mul');
    f.simd('f64x2.add');
    k(2);
    f.simd('f64x2.add');
  });
}

function batchNormFunctions(owner: HeapOwner): SimdFunctions | null {
  return simdFunctions(owner, 'batchNorm', () => [
    buildForwardSums(), buildGradSums(), buildAffine(), buildGradApply(),
  ]);
}

/** Calls a sums function over all R rows: whole blocks, then the rest. */
function sumRows(
  fn: (p: number, q: number, blocks: number, rows: number) => void, p: number, q: number, R: number, C4: number,
): void {
  const blocks = Math.floor(R / BLOCK_ROWS);
  if (blocks > 0) fn(p, q, blocks, BLOCK_ROWS);
  const rest = R - blocks * BLOCK_ROWS;
  const skip = blocks * BLOCK_ROWS * C4;
  if (rest > 0) fn(p + skip, q + skip, 1, rest);
}

/** Six float64[C] views into heap scratch of SCRATCH_FLOATS_PER_CHANNEL * C floats (8-byte aligned). */
function scratchViews(scratch: Float32Array, C: number): Float64Array[] {
  return Array.from({ length: 6 }, (_, i) => new Float64Array(scratch.buffer, scratch.byteOffset + i * 8 * C, C));
}

/** Copies float32 coefficient vectors into float64 heap vectors, back to back from the first. */
function copyToFloat64(from: Float32Array[], to: Float64Array[]): void {
  from.forEach((v, i) => to[i].set(v));
}

function usable(C: number, x: Float32Array, scratch: Float32Array): boolean {
  return C % 4 === 0 && x.length > 0 && scratch.byteOffset % 8 === 0 && scratch.buffer === x.buffer;
}

/** batchNormForward on heap views; false when the SIMD path does not apply. */
export function simdBatchNormForward(
  owner: HeapOwner, x: Float32Array, gamma: Float32Array, beta: Float32Array, epsilon: number,
  y: Float32Array, stats: BatchNormStats, scratch: Float32Array,
): boolean {
  const C = gamma.length;
  const fns = usable(C, x, scratch) ? batchNormFunctions(owner) : null;
  if (fns == null) return false;
  const R = x.length / C;
  const [shift, sum, sq, ...coefficients] = scratchViews(scratch, C);
  for (let c = 0; c < C; c++) shift[c] = x[c];
  sum.fill(0);
  sq.fill(0);
  sumRows((p, q, blocks, rows) => fns['forwardSums'](p, q, blocks, rows, C * 4, shift.byteOffset, sum.byteOffset, sq.byteOffset),
    x.byteOffset, x.byteOffset, R, C * 4);
  const sums: ShiftedSums = { shift, sum, sq };
  const affine: Affine = { scale: new Float32Array(C), shift: new Float32Array(C) };
  forwardCoefficients(sums, R, gamma, beta, epsilon, stats, affine);
  copyToFloat64([affine.scale, affine.shift], coefficients);
  fns['affine'](y.byteOffset, x.byteOffset, 0, R, C * 4, coefficients[0].byteOffset);
  return true;
}

/** batchNormBackward on heap views; false when the SIMD path does not apply. */
export function simdBatchNormBackward(
  owner: HeapOwner, dy: Float32Array, x: Float32Array, mean: Float32Array, variance: Float32Array,
  gamma: Float32Array, epsilon: number, dx: Float32Array, dGamma: Float32Array, dBeta: Float32Array,
  scratch: Float32Array,
): boolean {
  const C = gamma.length;
  const fns = usable(C, x, scratch) ? batchNormFunctions(owner) : null;
  if (fns == null) return false;
  const R = x.length / C;
  const [mean64, sumDy, sumDyXc, ...coefficients] = scratchViews(scratch, C);
  mean64.set(mean);
  sumDy.fill(0);
  sumDyXc.fill(0);
  sumRows((p, q, blocks, rows) => fns['gradSums'](p, q, blocks, rows, C * 4, mean64.byteOffset, sumDy.byteOffset, sumDyXc.byteOffset),
    dy.byteOffset, x.byteOffset, R, C * 4);
  const k: GradCoefficients = { k1: new Float32Array(C), k2: new Float32Array(C), k3: new Float32Array(C) };
  gradCoefficients(sumDy, sumDyXc, R, mean, variance, gamma, epsilon, dGamma, dBeta, k);
  copyToFloat64([k.k1, k.k2, k.k3], coefficients);
  fns['gradApply'](dx.byteOffset, dy.byteOffset, x.byteOffset, R, C * 4, coefficients[0].byteOffset);
  return true;
}
