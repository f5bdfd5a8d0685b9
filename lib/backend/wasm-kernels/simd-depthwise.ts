import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs';
import { dispose, heapF32 } from './heap';
import { simdFunctions } from './simd-module';
import { FunctionBuilder } from './wasm-asm';

type TensorInfo = tf.TensorInfo;
type ConvInfo = tf.backend_util.Conv2DInfo;

/** Everything the generated depthwise loops bake in. */
interface DepthwisePlan {
  N: number; H: number; W: number; OH: number; OW: number;
  /** Channels of dy, and of the (expanded) input the loop reads. */
  C: number;
  fh: number; fw: number; sh: number; sw: number; dh: number; dw: number; top: number; left: number;
}

/** A run of output rows (or columns) [start, end) that see the same filter rows (or columns). */
interface Segment {
  start: number;
  end: number;
  taps: number[];
}

/** Splits 0..outSize into runs with the same in-bounds taps: those k with 0 <= o*s + k*d - pad < inSize. */
function segments(outSize: number, inSize: number, filterSize: number, stride: number, dilation: number, pad: number): Segment[] {
  const result: Segment[] = [];
  for (let o = 0; o < outSize; o++) {
    const taps: number[] = [];
    for (let k = 0; k < filterSize; k++) {
      const i = o * stride + k * dilation - pad;
      if (i >= 0 && i < inSize) taps.push(k);
    }
    const last = result[result.length - 1];
    if (last != null && last.taps.join() === taps.join()) last.end = o + 1;
    else result.push({ start: o, end: o + 1, taps });
  }
  return result;
}

/**
 * Emits the loops over images and output rows that both kernels share:
 * `row` emits the work of one output row for a pair of row and column
 * segments, with local xRow at x's virtual row oh*sh - top, column 0 (i32
 * arithmetic wraps; only in-bounds addresses are read) and local outRow at
 * the output row (dy or y, OW pixels of C channels).
 */
function imageRows(
  f: FunctionBuilder, p: DepthwisePlan, x: number, out: number, xRow: number, outRow: number,
  row: (rows: Segment, cols: Segment) => void,
): void {
  const C4 = p.C * 4;
  const [n, oh] = [f.local('i32'), f.local('i32')];
  const rowSegments = segments(p.OH, p.H, p.fh, p.sh, p.dh, p.top);
  const columnSegments = segments(p.OW, p.W, p.fw, p.sw, p.dw, p.left);
  f.i32(0).set(n).get(x).i32(-p.top * p.W * C4).i32Add().set(xRow).get(out).set(outRow);
  f.doWhile(n, 1, { value: p.N }, () => {
    for (const rows of rowSegments) {
      f.i32(rows.start).set(oh);
      f.doWhile(oh, 1, { value: rows.end }, () => {
        for (const cols of columnSegments) row(rows, cols);
        f.addTo(xRow, p.sh * p.W * C4).addTo(outRow, p.OW * C4);
      });
    }
    f.addTo(xRow, (p.H - p.OH * p.sh) * p.W * C4);
  });
}

/** Byte offset of tap (kh, kw) from the virtual input pixel (oh*sh - top, ow*sw - left). */
function tapOffset(p: DepthwisePlan, kh: number, kw: number): number {
  return (kh * p.dh * p.W + kw * p.dw) * p.C * 4;
}

/**
 * filterGrad(x, dy, df): df[kh, kw, c] += sum over (n, oh, ow) of
 * x[n, oh*sh + kh*dh - top, ow*sw + kw*dw - left, c] * dy[n, oh, ow, c] over
 * the taps inside x, four channels at a time, one accumulator per tap.
 * Rows and columns near the border run in their own segments, with only
 * their in-bounds taps, so x needs no padded copy.
 */
function buildFilterGrad(p: DepthwisePlan): FunctionBuilder {
  const f = new FunctionBuilder('filterGrad', ['i32', 'i32', 'i32']);
  const [x, dy, df] = [0, 1, 2];
  const C4 = p.C * 4;
  const [cv, xRow, dyRow, xPtr, dPtr, dEnd] = Array.from({ length: 6 }, () => f.local('i32'));
  const acc = Array.from({ length: p.fh * p.fw }, () => f.local('v128'));
  const d = f.local('v128');
  imageRows(f, p, x, dy, xRow, dyRow, (rows, cols) => {
    const taps = rows.taps.flatMap((kh) => cols.taps.map((kw) => ({ t: kh * p.fw + kw, offset: tapOffset(p, kh, kw) })));
    if (taps.length === 0) return;
    const base = Math.min(...taps.map((t) => t.offset));
    f.i32(0).set(cv);
    f.doWhile(cv, 16, { value: C4 }, () => {
      for (const { t } of taps) f.get(df).get(cv).i32Add().load('v128', t * C4).set(acc[t]);
      f.get(xRow).i32((cols.start * p.sw - p.left) * C4 + base).i32Add().get(cv).i32Add().set(xPtr);
      f.get(dyRow).i32(cols.start * C4).i32Add().get(cv).i32Add().tee(dPtr).i32((cols.end - cols.start) * C4).i32Add().set(dEnd);
      f.doWhile(dPtr, C4, { local: dEnd }, () => {
        f.get(dPtr).load('v128').set(d);
        for (const { t, offset } of taps) {
          f.get(acc[t]).get(xPtr).load('v128', offset - base).get(d).simd('f32x4.mul').simd('f32x4.add').set(acc[t]);
        }
        f.addTo(xPtr, p.sw * C4);
      });
      for (const { t } of taps) f.get(df).get(cv).i32Add().get(acc[t]).store('v128', t * C4);
    });
  });
  return f;
}

/**
 * conv(x, w, y): the depthwise convolution with multiplier 1,
 * y[n, oh, ow, c] = sum over in-bounds taps of x[n, oh*sh + kh*dh - top,
 * ow*sw + kw*dw - left, c] * w[kh, kw, c], in the same row and column
 * segments as buildFilterGrad, the weights of four channels in registers.
 */
function buildConv(p: DepthwisePlan): FunctionBuilder {
  const f = new FunctionBuilder('conv', ['i32', 'i32', 'i32']);
  const [x, w, y] = [0, 1, 2];
  const C4 = p.C * 4;
  const [cv, xRow, yRow, xPtr, yPtr, yEnd] = Array.from({ length: 6 }, () => f.local('i32'));
  const weight = Array.from({ length: p.fh * p.fw }, () => f.local('v128'));
  const acc = f.local('v128');
  imageRows(f, p, x, y, xRow, yRow, (rows, cols) => {
    // taps column by column, the order XNNPACK sums them in (so results match it bit for bit)
    const taps = cols.taps.flatMap((kw) => rows.taps.map((kh) => ({ t: kh * p.fw + kw, offset: tapOffset(p, kh, kw) })));
    const base = taps.length > 0 ? Math.min(...taps.map((t) => t.offset)) : 0;
    f.i32(0).set(cv);
    f.doWhile(cv, 16, { value: C4 }, () => {
      f.get(yRow).i32(cols.start * C4).i32Add().get(cv).i32Add().tee(yPtr).i32((cols.end - cols.start) * C4).i32Add().set(yEnd);
      if (taps.length === 0) {
        f.doWhile(yPtr, C4, { local: yEnd }, () => f.get(yPtr).v128Zero().store('v128'));
        return;
      }
      for (const { t } of taps) f.get(w).get(cv).i32Add().load('v128', t * C4).set(weight[t]);
      f.get(xRow).i32((cols.start * p.sw - p.left) * C4 + base).i32Add().get(cv).i32Add().set(xPtr);
      f.doWhile(yPtr, C4, { local: yEnd }, () => {
        taps.forEach(({ t, offset }, i) => {
          f.get(xPtr).load('v128', offset - base).get(weight[t]).simd('f32x4.mul');
          if (i > 0) f.get(acc).simd('f32x4.add');
          f.set(acc);
        });
        f.get(yPtr).get(acc).store('v128');
        f.addTo(xPtr, p.sw * C4);
      });
    });
  });
  return f;
}

/**
 * expand(x, xe, pixels): xe[..., c*m + j] = x[..., c] over `pixels` pixels
 * of C channels, so that channel c*m + j of xe lines up with output channel
 * c*m + j of a depthwise conv with multiplier m.
 */
function buildExpand(C: number, m: number): FunctionBuilder {
  const f = new FunctionBuilder('expand', ['i32', 'i32', 'i32']);
  const [x, xe, pixels] = [0, 1, 2];
  const end = f.local('i32');
  const v = f.local('v128');
  f.get(pixels).i32(C * 4).i32Mul().get(x).i32Add().set(end);
  f.doWhile(x, 4, { local: end }, () => {
    f.get(x).loadSplat().set(v);
    let j = 0;
    for (; j + 4 <= m; j += 4) f.get(xe).get(v).store('v128', j * 4);
    for (; j + 2 <= m; j += 2) f.get(xe).get(v).simd('i64x2.extract_lane', 0).store('i64', j * 4);
    for (; j < m; j++) f.get(xe).get(v).simd('i32x4.extract_lane', 0).store('i32', j * 4);
    f.addTo(xe, m * 4);
  });
  return f;
}

/** The plan for C channels (of dy, and of x once expanded), or null when C is not a multiple of 4 or a size is 0. */
function planOf(info: ConvInfo, C: number): DepthwisePlan | null {
  const { batchSize: N, inHeight: H, inWidth: W } = info;
  if (C % 4 !== 0 || N * info.outHeight * info.outWidth * H * W === 0) return null;
  return {
    N, H, W, OH: info.outHeight, OW: info.outWidth, C,
    fh: info.filterHeight, fw: info.filterWidth,
    sh: info.strideHeight, sw: info.strideWidth, dh: info.dilationHeight, dw: info.dilationWidth,
    top: info.padInfo.top, left: info.padInfo.left,
  };
}

/** A depthwise conv with multiplier 1 as a generated SIMD loop, or null where it does not apply. */
export function simdDepthwiseConv(backend: BackendWasm, x: TensorInfo, filter: TensorInfo, info: ConvInfo): TensorInfo | null {
  const plan = filter.shape[3] === 1 ? planOf(info, info.inChannels) : null;
  const fns = plan && simdFunctions(backend, `dwConv ${JSON.stringify(plan)}`, () => [buildConv(plan)]);
  if (fns == null) return null;
  const out = backend.makeOutput([info.batchSize, info.outHeight, info.outWidth, info.outChannels], 'float32');
  fns['conv'](heapF32(backend, x).byteOffset, heapF32(backend, filter).byteOffset, heapF32(backend, out).byteOffset);
  return out;
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
  const plan = planOf(info, C);
  if (plan == null) return null;
  const { batchSize: N, inHeight: H, inWidth: W } = info;
  const fns = simdFunctions(backend, `dwFilterGrad ${JSON.stringify(plan)} ${m}`,
    () => [buildFilterGrad(plan), buildExpand(info.inChannels, m)]);
  if (fns == null) return null;
  const expanded = m === 1 ? null : backend.makeOutput([N, H, W, C], 'float32');
  const out = backend.makeOutput(filterShape, 'float32');
  const outView = heapF32(backend, out);
  let xOffset = heapF32(backend, x).byteOffset;
  if (expanded != null) {
    const expandedOffset = heapF32(backend, expanded).byteOffset;
    fns['expand'](xOffset, expandedOffset, N * H * W);
    xOffset = expandedOffset;
  }
  outView.fill(0);
  fns['filterGrad'](xOffset, heapF32(backend, dy).byteOffset, outView.byteOffset);
  if (expanded != null) dispose(backend, expanded);
  return out;
}
