import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { dispose, heapF32, reshapeInfo, runKernel } from './heap';
import { simdDepthwiseConv, simdDepthwiseFilterGrad } from './simd-depthwise';

type TensorInfo = tf.TensorInfo;
const { backend_util } = tf;

interface DepthwiseAttrs {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * A depthwise filter [fh, fw, C, m] maps input channel c to output channels
 * c*m .. c*m+m-1. dx is a depthwise convolution of dy (C*m channels, multiplier
 * 1) with the spatially flipped filter, summed over each group of m channels.
 */
function depthwiseBackpropInput(args: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  const info = backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, dilations, pad as never, dimRoundingMode, true);
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error('DepthwiseConv2dNativeBackpropInput on wasm supports stride 1 and dilation 1 only');
  }
  const { filterHeight: fh, filterWidth: fw, inChannels: C } = info;
  const m = filter.shape[3];
  const CM = C * m;
  const flipped = backend.makeOutput([fh, fw, CM, 1], 'float32');
  const src = heapF32(backend, filter);
  const dst = heapF32(backend, flipped);
  for (let kh = 0; kh < fh; kh++) {
    for (let kw = 0; kw < fw; kw++) {
      dst.set(src.subarray((kh * fw + kw) * CM, (kh * fw + kw + 1) * CM), ((fh - 1 - kh) * fw + (fw - 1 - kw)) * CM);
    }
  }
  const { top, bottom, left, right } = info.padInfo;
  const explicit = [[0, 0], [fh - 1 - top, fh - 1 - bottom], [fw - 1 - left, fw - 1 - right], [0, 0]];
  const full = runKernel(backend, 'DepthwiseConv2dNative', { x: dy, filter: flipped }, {
    strides: 1, pad: explicit, dilations: 1, dimRoundingMode: undefined,
  });
  dispose(backend, flipped);
  if (m === 1) return full;
  const grouped = reshapeInfo(backend, full, [...inputShape, m]);
  const dx = runKernel(backend, 'Sum', { x: grouped }, { axis: [4], keepDims: false });
  dispose(backend, full, grouped);
  return dx;
}

/** df[kh, kw, c, j] = sum over (n, oh, ow) of x at tap (kh, kw) times dy[..., c*m + j]. */
function depthwiseBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as DepthwiseAttrs & { filterShape: [number, number, number, number] };
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, dilations, pad as never, dimRoundingMode, true);
  const fast = simdDepthwiseFilterGrad(backend, x, dy, info, filterShape);
  if (fast != null) return fast;
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const m = filterShape[3];
  const CM = C * m;
  const out = backend.makeOutput(filterShape, 'float32');
  const df = heapF32(backend, out);
  const xs = heapF32(backend, x);
  const dys = heapF32(backend, dy);
  df.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyBase = ((n * OH + oh) * OW + ow) * CM;
        for (let kh = 0; kh < fh; kh++) {
          const ih = oh * sh + kh * dh - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < fw; kw++) {
            const iw = ow * sw + kw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const xBase = ((n * H + ih) * W + iw) * C;
            const fBase = (kh * fw + kw) * CM;
            if (m === 1) {
              for (let c = 0; c < C; c++) df[fBase + c] += xs[xBase + c] * dys[dyBase + c];
            } else {
              for (let c = 0; c < C; c++) {
                const xv = xs[xBase + c];
                const o = c * m;
                for (let j = 0; j < m; j++) df[fBase + o + j] += xv * dys[dyBase + o + j];
              }
            }
          }
        }
      }
    }
  }
  return out;
}

/** The forward conv: a SIMD loop for multiplier 1 (as the backprop input uses it), else XNNPACK. */
function makeDepthwiseConv(fallback: tf.KernelFunc) {
  return (args: { inputs: { x: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }): TensorInfo => {
    const { inputs: { x, filter }, backend, attrs } = args;
    const { strides, dilations, pad, dimRoundingMode, dataFormat } = attrs as unknown as DepthwiseAttrs & { dataFormat?: string };
    if (dataFormat === 'NCHW' || x.dtype !== 'float32') return fallback(args as never) as TensorInfo;
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
      strides, dilations ?? 1, pad as never, dimRoundingMode, true);
    return simdDepthwiseConv(backend, x, filter, info) ?? (fallback(args as never) as TensorInfo);
  };
}

export function depthwiseGradientKernels(): tf.KernelConfig[] {
  const original = tf.getKernel('DepthwiseConv2dNative', 'wasm');
  if (original == null) throw new Error('wasm backend has no DepthwiseConv2dNative kernel');
  return [
    {
      kernelName: 'DepthwiseConv2dNative', backendName: 'wasm', setupFunc: original.setupFunc,
      kernelFunc: makeDepthwiseConv(original.kernelFunc) as unknown as tf.KernelFunc,
    },
    { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: 'wasm', kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc },
    { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: 'wasm', kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc },
  ];
}
