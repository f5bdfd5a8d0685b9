import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { dispose, heapF32, runKernel } from './heap';
import { accumulateAtB } from './simd-matmul';

type TensorInfo = tf.TensorInfo;
type ConvInfo = tf.backend_util.Conv2DInfo;
const { backend_util } = tf;

/** Upper bound on the im2col scratch buffer, in floats (64 MB). */
const IM2COL_FLOATS = 16 * 1024 * 1024;

/**
 * Writes the transposed im2col matrix of rows [row0, row0 + rows) of the
 * output grid: patchesT[(k * inC + c) * rows + r] = x at tap k of output row r.
 * Laid out [K, rows] so that dW = patchesT @ dy needs no transposed matmul.
 */
function im2colTransposed(
  x: Float32Array, info: ConvInfo, row0: number, rows: number, patchesT: Float32Array,
): void {
  const { inHeight, inWidth, inChannels: C, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const perImage = outHeight * outWidth;
  for (let r = 0; r < rows; r++) {
    const row = row0 + r;
    const n = Math.floor(row / perImage);
    const oh = Math.floor((row % perImage) / outWidth);
    const ow = row % outWidth;
    for (let kh = 0; kh < filterHeight; kh++) {
      const ih = oh * sh + kh * dh - top;
      for (let kw = 0; kw < filterWidth; kw++) {
        const iw = ow * sw + kw * dw - left;
        let dst = (kh * filterWidth + kw) * C * rows + r;
        if (ih < 0 || ih >= inHeight || iw < 0 || iw >= inWidth) {
          for (let c = 0; c < C; c++, dst += rows) patchesT[dst] = 0;
        } else {
          const src = ((n * inHeight + ih) * inWidth + iw) * C;
          for (let c = 0; c < C; c++, dst += rows) patchesT[dst] = x[src + c];
        }
      }
    }
  }
}

/** Rows of im2col patches per SIMD matmul call. */
const PATCH_ROWS = 1024;

function copyRun(src: Float32Array, from: number, dst: Float32Array, to: number, length: number): void {
  if (length >= 32) dst.set(src.subarray(from, from + length), to);
  else for (let i = 0; i < length; i++) dst[to + i] = src[from + i];
}

/**
 * Writes im2col rows [row0, row0 + rows) of the output grid, row-major:
 * patches[r * K + (kh * fw + kw) * inC + c] = x at tap (kh, kw) of output
 * row r, zeros outside x.
 */
function im2colRows(x: Float32Array, info: ConvInfo, row0: number, rows: number, patches: Float32Array): void {
  const { inHeight, inWidth, inChannels: C, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const perImage = outHeight * outWidth;
  let dst = 0;
  for (let r = 0; r < rows; r++) {
    const row = row0 + r;
    const n = Math.floor(row / perImage);
    const oh = Math.floor((row % perImage) / outWidth);
    const ow = row % outWidth;
    for (let kh = 0; kh < filterHeight; kh++) {
      const ih = oh * sh + kh * dh - top;
      for (let kw = 0; kw < filterWidth; kw++, dst += C) {
        const iw = ow * sw + kw * dw - left;
        if (ih < 0 || ih >= inHeight || iw < 0 || iw >= inWidth) patches.fill(0, dst, dst + C);
        else copyRun(x, ((n * inHeight + ih) * inWidth + iw) * C, patches, dst, C);
      }
    }
  }
}

/** Whether the conv reads x as it is: 1x1, stride 1, no padding. */
function isPointwise(info: ConvInfo): boolean {
  const { padInfo: p } = info;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1 &&
    p.top === 0 && p.left === 0 && p.bottom === 0 && p.right === 0;
}

/**
 * dW = patches^T dy with the SIMD matmul: x itself for pointwise convs,
 * else im2col rows in chunks. Null when dy's channels are not a multiple
 * of 4 or SIMD is unavailable.
 */
function simdConv2DBackpropFilter(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: ConvInfo, filterShape: number[]): TensorInfo | null {
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const N = info.outChannels;
  const R = info.batchSize * info.outHeight * info.outWidth;
  if (N % 4 !== 0 || R === 0) return null;
  const out = backend.makeOutput(filterShape, 'float32');
  const chunk = Math.min(R, PATCH_ROWS);
  const patches = isPointwise(info) ? null : backend.makeOutput([chunk, K], 'float32');
  const outView = heapF32(backend, out);
  const xView = heapF32(backend, x);
  const dyOffset = heapF32(backend, dy).byteOffset;
  outView.fill(0);
  let ok = true;
  if (patches == null) {
    ok = accumulateAtB(backend, xView.byteOffset, dyOffset, outView.byteOffset, R, K, N);
  } else {
    const patchView = heapF32(backend, patches);
    for (let row0 = 0; row0 < R && ok; row0 += chunk) {
      const rows = Math.min(chunk, R - row0);
      im2colRows(xView, info, row0, rows, patchView);
      ok = accumulateAtB(backend, patchView.byteOffset, dyOffset + row0 * N * 4, outView.byteOffset, rows, K, N);
    }
    dispose(backend, patches);
  }
  if (ok) return out;
  dispose(backend, out);
  return null;
}

/** dW[kh, kw, ci, co] = sum over output positions of x-patch * dy, as im2col + matmul in chunks. */
function conv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as {
    strides: [number, number] | number; pad: 'valid' | 'same' | number; dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number];
  };
  if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad as never, dimRoundingMode, false, 'channelsLast');
  const fast = simdConv2DBackpropFilter(backend, x, dy, info, filterShape);
  if (fast != null) return fast;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const totalRows = info.batchSize * info.outHeight * info.outWidth;
  const outC = info.outChannels;
  const chunkRows = Math.max(1, Math.min(totalRows, Math.floor(IM2COL_FLOATS / K)));

  const out = backend.makeOutput(filterShape, 'float32');
  heapF32(backend, out).fill(0);
  for (let row0 = 0; row0 < totalRows; row0 += chunkRows) {
    const rows = Math.min(chunkRows, totalRows - row0);
    const patches = backend.makeOutput([1, K, rows], 'float32');
    const dyChunk = backend.makeOutput([1, rows, outC], 'float32');
    im2colTransposed(heapF32(backend, x), info, row0, rows, heapF32(backend, patches));
    heapF32(backend, dyChunk).set(heapF32(backend, dy).subarray(row0 * outC, (row0 + rows) * outC));
    const partial = runKernel(backend, 'BatchMatMul', { a: patches, b: dyChunk }, { transposeA: false, transposeB: false });
    const acc = heapF32(backend, out);
    const add = heapF32(backend, partial);
    for (let i = 0; i < acc.length; i++) acc[i] += add[i];
    dispose(backend, patches, dyChunk, partial);
  }
  return out;
}

/**
 * dx = full convolution of dy with the spatially flipped, in/out-swapped
 * filter: one XNNPACK conv2d. Strided or dilated cases keep wasm's own kernel.
 */
function makeConv2DBackpropInput(fallback: tf.KernelFunc) {
  return (args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }): TensorInfo => {
    const { inputs: { dy, filter }, backend, attrs } = args;
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as {
      strides: [number, number] | number; pad: 'valid' | 'same' | number; dataFormat: 'NHWC' | 'NCHW';
      dimRoundingMode?: 'floor' | 'round' | 'ceil'; inputShape: [number, number, number, number];
    };
    const info = backend_util.computeConv2DInfo(
      inputShape, filter.shape as [number, number, number, number], strides, 1, pad as never, dimRoundingMode, false,
      backend_util.convertConv2DDataFormat(dataFormat));
    if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dataFormat !== 'channelsLast') {
      return fallback(args as never) as TensorInfo;
    }
    const { filterHeight: fh, filterWidth: fw, inChannels: ci, outChannels: co } = info;
    const flipped = backend.makeOutput([fh, fw, co, ci], 'float32');
    const src = heapF32(backend, filter);
    const dst = heapF32(backend, flipped);
    for (let kh = 0; kh < fh; kh++) {
      for (let kw = 0; kw < fw; kw++) {
        const s = (kh * fw + kw) * ci * co;
        const d = ((fh - 1 - kh) * fw + (fw - 1 - kw)) * co * ci;
        for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) dst[d + o * ci + i] = src[s + i * co + o];
      }
    }
    const { top, bottom, left, right } = info.padInfo;
    const explicit = [[0, 0], [fh - 1 - top, fh - 1 - bottom], [fw - 1 - left, fw - 1 - right], [0, 0]];
    const dx = runKernel(backend, 'Conv2D', { x: dy, filter: flipped }, {
      strides: 1, pad: explicit, dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined,
    });
    dispose(backend, flipped);
    return dx;
  };
}

export function conv2dGradientKernels(): tf.KernelConfig[] {
  const original = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (original == null) throw new Error('wasm backend has no Conv2DBackpropInput kernel');
  return [
    { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc },
    {
      kernelName: 'Conv2DBackpropInput', backendName: 'wasm', setupFunc: original.setupFunc,
      kernelFunc: makeConv2DBackpropInput(original.kernelFunc) as unknown as tf.KernelFunc,
    },
  ];
}

