import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapF32, sizeOf } from './heap';
import { simdFunctions } from './simd-module';
import { FunctionBuilder } from './wasm-asm';

type TensorInfo = tf.TensorInfo;

/** Rows per block: four channels of a block are summed in a register, then added to out. */
const BLOCK_ROWS = 64;

/** colSums(x, blocks, rows, C4, out): out[c] += sum over blocks * rows rows of x[r, c]. */
function buildColumnSums(): FunctionBuilder {
  const f = new FunctionBuilder('colSums', ['i32', 'i32', 'i32', 'i32', 'i32']);
  const [x, blocks, rows, C4, out] = [0, 1, 2, 3, 4];
  const [block, cv, o, end, blockBytes] = Array.from({ length: 5 }, () => f.local('i32'));
  const acc = f.local('v128');
  f.get(rows).get(C4).i32Mul().set(blockBytes).i32(0).set(block);
  f.doWhile(block, 1, { local: blocks }, () => {
    f.i32(0).set(cv);
    f.doWhile(cv, 16, { local: C4 }, () => {
      f.v128Zero().set(acc);
      f.get(cv).tee(o).get(blockBytes).i32Add().set(end);
      f.doWhile(o, { local: C4 }, { local: end }, () => {
        f.get(acc).get(x).get(o).i32Add().load('v128').simd('f32x4.add').set(acc);
      });
      f.get(out).get(cv).i32Add().get(out).get(cv).i32Add().load('v128').get(acc).simd('f32x4.add').store('v128');
    });
    f.get(x).get(blockBytes).i32Add().set(x);
  });
  return f;
}

/**
 * Sum over leading axes (a bias gradient: dy summed over batch, height and
 * width) as SIMD column sums; wasm's own Sum transposes the whole input
 * first. Null where it does not apply.
 */
function simdLeadingSum(backend: BackendWasm, x: TensorInfo, axis: number | number[], keepDims: boolean): TensorInfo | null {
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
  const C = sizeOf(x.shape.slice(axes.length));
  const R = sizeOf(x.shape.slice(0, axes.length));
  if (!leading || x.dtype !== 'float32' || C % 4 !== 0 || R * C === 0) return null;
  const fns = simdFunctions(backend, 'colSums', () => [buildColumnSums()]);
  if (fns == null) return null;
  const outShape = keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length);
  const out = backend.makeOutput(outShape, 'float32');
  const outView = heapF32(backend, out);
  const xOffset = heapF32(backend, x).byteOffset;
  outView.fill(0);
  const blocks = Math.floor(R / BLOCK_ROWS);
  if (blocks > 0) fns['colSums'](xOffset, blocks, BLOCK_ROWS, C * 4, outView.byteOffset);
  const rest = R - blocks * BLOCK_ROWS;
  if (rest > 0) fns['colSums'](xOffset + blocks * BLOCK_ROWS * C * 4, 1, rest, C * 4, outView.byteOffset);
  return out;
}

export function sumKernel(): tf.KernelConfig {
  const original = tf.getKernel('Sum', 'wasm');
  if (original == null) throw new Error('wasm backend has no Sum kernel');
  const kernelFunc = (args: { inputs: { x: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }) => {
    const { inputs: { x }, backend, attrs } = args;
    return simdLeadingSum(backend, x, attrs['axis'] as number | number[], attrs['keepDims'] === true) ?? original.kernelFunc(args as never);
  };
  return { kernelName: 'Sum', backendName: 'wasm', setupFunc: original.setupFunc, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
