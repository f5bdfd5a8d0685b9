import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs';
import { dispose, heapF32 } from './heap';
import { simdFunctions } from './simd-module';
import { FunctionBuilder } from './wasm-asm';

type TensorInfo = tf.TensorInfo;
type ConvInfo = tf.backend_util.Conv2DInfo;

/** Everything the generated filter-gradient loop bakes in. */
interface FilterGradPlan {
  N: number; OH: number; OW: number;
  /** Channels of dy, and of the padded (and expanded) input. */
  C: number;
  /** Height and width of the zero-padded input. */
  Hp: number; Wp: number;
  fh: number; fw: number; sh: number; sw: number; dh: number; dw: number;
}

/**
 * filterGrad(xp, dy, df): df[kh, kw, c] += sum over (n, oh, ow) of
 * xp[n, oh*sh + kh*dh, ow*sw + kw*dw, c] * dy[n, oh, ow, c], four channels
 * at a time, with one accumulator per tap for each output row.
 */
function buildFilterGrad(p: FilterGradPlan): FunctionBuilder {
  const f = new FunctionBuilder('filterGrad', ['i32', 'i32', 'i32']);
  const [xp, dy, df] = [0, 1, 2];
  const C4 = p.C * 4;
  const [n, oh, cv, xImg, xRow, dyRow, xPtr, dPtr, dEnd] = Array.from({ length: 9 }, () => f.local('i32'));
  const taps = Array.from({ length: p.fh * p.fw }, (_, t) => ({
    acc: f.local('v128'),
    xOffset: (Math.floor(t / p.fw) * p.dh * p.Wp + (t % p.fw) * p.dw) * C4,
    dfOffset: t * C4,
  }));
  const d = f.local('v128');
  f.i32(0).set(n).get(xp).set(xImg).get(dy).set(dyRow);
  f.doWhile(n, 1, { value: p.N }, () => {
    f.get(xImg).set(xRow).i32(0).set(oh);
    f.doWhile(oh, 1, { value: p.OH }, () => {
      f.i32(0).set(cv);
      f.doWhile(cv, 16, { value: C4 }, () => {
        for (const t of taps) f.get(df).get(cv).i32Add().load('v128', t.dfOffset).set(t.acc);
        f.get(xRow).get(cv).i32Add().set(xPtr);
        f.get(dyRow).get(cv).i32Add().tee(dPtr).i32(p.OW * C4).i32Add().set(dEnd);
        f.doWhile(dPtr, C4, { local: dEnd }, () => {
          f.get(dPtr).load('v128').set(d);
          for (const t of taps) {
            f.get(t.acc).get(xPtr).load('v128', t.xOffset).get(d).simd('f32x4.mul').simd('f32x4.add').set(t.acc);
          }
          f.addTo(xPtr, p.sw * C4);
        });
        for (const t of taps) f.get(df).get(cv).i32Add().get(t.acc).store('v128', t.dfOffset);
      });
      f.addTo(xRow, p.sh * p.Wp * C4).addTo(dyRow, p.OW * C4);
    });
    f.addTo(xImg, p.Hp * p.Wp * C4);
  });
  return f;
}

/**
 * Copies x [N, H, W, C] into a zero-padded [N, Hp, Wp, C*m] buffer, each
 * input channel repeated m times (so channel c*m + j of the copy lines up
 * with output channel c*m + j of a depthwise conv with multiplier m).
 */
function padAndExpand(x: Float32Array, info: ConvInfo, m: number, Hp: number, Wp: number, out: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C } = info;
  const { top, left } = info.padInfo;
  const CM = C * m;
  const rows = Math.min(H, Hp - top);
  const cols = Math.min(W, Wp - left);
  out.fill(0);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < rows; h++) {
      const src = ((n * H + h) * W) * C;
      const dst = ((n * Hp + h + top) * Wp + left) * CM;
      if (m === 1) {
        out.set(x.subarray(src, src + cols * C), dst);
        continue;
      }
      for (let i = 0, o = dst; i < cols * C; i++) {
        const v = x[src + i];
        for (let j = 0; j < m; j++, o++) out[o] = v;
      }
    }
  }
}

/**
 * The depthwise filter gradient with a generated SIMD loop, or null when
 * the channel count or the platform does not allow it.
 */
export function simdDepthwiseFilterGrad(
  backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: ConvInfo, filterShape: number[],
): TensorInfo | null {
  const m = filterShape[3];
  const C = info.inChannels * m;
  if (C % 4 !== 0 || info.batchSize * info.outHeight * info.outWidth === 0) return null;
  const plan: FilterGradPlan = {
    N: info.batchSize, OH: info.outHeight, OW: info.outWidth, C,
    Hp: (info.outHeight - 1) * info.strideHeight + (info.filterHeight - 1) * info.dilationHeight + 1,
    Wp: (info.outWidth - 1) * info.strideWidth + (info.filterWidth - 1) * info.dilationWidth + 1,
    fh: info.filterHeight, fw: info.filterWidth,
    sh: info.strideHeight, sw: info.strideWidth, dh: info.dilationHeight, dw: info.dilationWidth,
  };
  const fns = simdFunctions(backend, `dwFilterGrad ${JSON.stringify(plan)}`, () => [buildFilterGrad(plan)]);
  if (fns == null) return null;
  const padded = backend.makeOutput([plan.N, plan.Hp, plan.Wp, C], 'float32');
  const out = backend.makeOutput(filterShape, 'float32');
  const paddedView = heapF32(backend, padded);
  const outView = heapF32(backend, out);
  padAndExpand(heapF32(backend, x), info, m, plan.Hp, plan.Wp, paddedView);
  outView.fill(0);
  fns['filterGrad'](paddedView.byteOffset, heapF32(backend, dy).byteOffset, outView.byteOffset);
  dispose(backend, padded);
  return out;
}
