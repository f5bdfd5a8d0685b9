import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapF32 } from './heap';
import { simdPoolGrad } from './simd-pool';

type TensorInfo = tf.TensorInfo;

/**
 * Routes each dy to the first maximum of its window in x, as TensorFlow does.
 * (wasm's own MaxPoolGrad in tfjs 4.22 returns wrong values.)
 */
function maxPoolGrad(args: { inputs: { dy: TensorInfo; input: TensorInfo }; backend: BackendWasm; attrs: Record<string, unknown> }): TensorInfo {
  const { inputs: { dy, input }, backend, attrs } = args;
  const { filterSize, strides, pad, dimRoundingMode } = attrs as {
    filterSize: [number, number] | number; strides: [number, number] | number; pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], filterSize, strides, 1, pad as never, dimRoundingMode);
  const fast = simdPoolGrad('max', backend, dy, input, info);
  if (fast != null) return fast;
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const out = backend.makeOutput(input.shape, 'float32');
  const dx = heapF32(backend, out);
  const xs = heapF32(backend, input);
  const dys = heapF32(backend, dy);
  dx.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * sh - top;
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * sw - left;
        const dyBase = ((n * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let bestAt = -1;
          for (let kh = 0; kh < fh; kh++) {
            const ih = h0 + kh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < fw; kw++) {
              const iw = w0 + kw;
              if (iw < 0 || iw >= W) continue;
              const at = ((n * H + ih) * W + iw) * C + c;
              if (xs[at] > best || bestAt < 0) { best = xs[at]; bestAt = at; }
            }
          }
          if (bestAt >= 0) dx[bestAt] += dys[dyBase + c];
        }
      }
    }
  }
  return out;
}

export function maxPoolGradKernel(): tf.KernelConfig {
  return { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad as unknown as tf.KernelFunc };
}
