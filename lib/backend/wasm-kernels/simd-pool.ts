import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapF32 } from './heap';
import { simdFunctions } from './simd-module';
import { FunctionBuilder } from './wasm-asm';

type TensorInfo = tf.TensorInfo;
type PoolInfo = tf.backend_util.Conv2DInfo;

/** A pooling whose windows tile the input without overlap or padding (stride = window). */
interface TilingPlan {
  N: number; H: number; W: number; OH: number; OW: number; C: number; fh: number; fw: number;
}

function tilingPlan(info: PoolInfo): TilingPlan | null {
  const { padInfo: pad, filterHeight: fh, filterWidth: fw } = info;
  const tiles = info.strideHeight === fh && info.strideWidth === fw && info.dilationHeight === 1 && info.dilationWidth === 1 &&
    pad.top === 0 && pad.left === 0 && pad.bottom === 0 && pad.right === 0 &&
    info.outHeight * fh <= info.inHeight && info.outWidth * fw <= info.inWidth;
  if (!tiles || info.inChannels % 4 !== 0 || info.batchSize * info.outHeight * info.outWidth === 0) return null;
  return {
    N: info.batchSize, H: info.inHeight, W: info.inWidth, OH: info.outHeight, OW: info.outWidth,
    C: info.inChannels, fh, fw,
  };
}

/**
 * name(x, dy, dx): for each window and four channels, `window` gets the
 * byte offset o of the window's first element (relative to x and dx), the
 * dy vector, and each tap's offset from o.
 */
function buildTiling(p: TilingPlan, name: string, window: (f: FunctionBuilder, o: number, g: number, taps: number[]) => void): FunctionBuilder {
  const f = new FunctionBuilder(name, ['i32', 'i32', 'i32']);
  const dy = 1;
  const C4 = p.C * 4;
  const [n, oh, ow, cv, oRow, oPix, o] = Array.from({ length: 7 }, () => f.local('i32'));
  const g = f.local('v128');
  const taps = Array.from({ length: p.fh * p.fw }, (_, t) => (Math.floor(t / p.fw) * p.W + (t % p.fw)) * C4);
  f.i32(0).set(n).i32(0).set(oRow);
  f.doWhile(n, 1, { value: p.N }, () => {
    f.i32(0).set(oh);
    f.doWhile(oh, 1, { value: p.OH }, () => {
      f.get(oRow).set(oPix).i32(0).set(ow);
      f.doWhile(ow, 1, { value: p.OW }, () => {
        f.i32(0).set(cv);
        f.doWhile(cv, 16, { value: C4 }, () => {
          f.get(oPix).get(cv).i32Add().set(o);
          f.get(dy).load('v128').set(g);
          window(f, o, g, taps);
          f.addTo(dy, 16);
        });
        f.addTo(oPix, p.fw * C4);
      });
      f.addTo(oRow, p.fh * p.W * C4);
    });
    f.addTo(oRow, (p.H - p.OH * p.fh) * p.W * C4);
  });
  return f;
}

/** dy goes to the first maximum of its window (in row-major order), as TensorFlow does. */
function buildMaxPoolGrad(p: TilingPlan): FunctionBuilder {
  const [x, dx] = [0, 2];
  return buildTiling(p, 'maxPoolGrad', (f, o, g, taps) => {
    const [best, index, v, more] = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
    f.get(x).get(o).i32Add().load('v128', taps[0]).set(best).v128Zero().set(index);
    for (let t = 1; t < taps.length; t++) {
      f.get(x).get(o).i32Add().load('v128', taps[t]).tee(v).get(best).simd('f32x4.gt').set(more);
      f.get(v).get(best).get(more).simd('v128.bitselect').set(best);
      f.i32x4Const(t).get(index).get(more).simd('v128.bitselect').set(index);
    }
    taps.forEach((offset, t) => {
      f.get(dx).get(o).i32Add().get(g).get(index).i32x4Const(t).simd('i32x4.eq').simd('v128.and').store('v128', offset);
    });
  });
}

/** Each window element gets dy / (window size). */
function buildAvgPoolGrad(p: TilingPlan): FunctionBuilder {
  const dx = 2;
  return buildTiling(p, 'avgPoolGrad', (f, o, g, taps) => {
    f.get(g).f32(1 / taps.length).simd('f32x4.splat').simd('f32x4.mul').set(g);
    for (const offset of taps) f.get(dx).get(o).i32Add().get(g).store('v128', offset);
  });
}

/** MaxPoolGrad or AvgPoolGrad with a generated SIMD loop, or null where it does not apply. */
export function simdPoolGrad(
  kind: 'max' | 'avg', backend: BackendWasm, dy: TensorInfo, x: TensorInfo, info: PoolInfo,
): TensorInfo | null {
  const plan = tilingPlan(info);
  if (plan == null) return null;
  const build = kind === 'max' ? buildMaxPoolGrad : buildAvgPoolGrad;
  const fns = simdFunctions(backend, `${kind}PoolGrad ${JSON.stringify(plan)}`, () => [build(plan)]);
  if (fns == null) return null;
  const out = backend.makeOutput(x.shape, 'float32');
  const dx = heapF32(backend, out);
  if (plan.OH * plan.fh < plan.H || plan.OW * plan.fw < plan.W) dx.fill(0);
  const xOffset = kind === 'max' ? heapF32(backend, x).byteOffset : 0;
  fns[`${kind}PoolGrad`](xOffset, heapF32(backend, dy).byteOffset, dx.byteOffset);
  return out;
}
