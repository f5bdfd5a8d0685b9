/**
 * The dropout mask of dropout-kernels.ts built from tensor ops on the engine's own device, for
 * engines without this project's kernels (tfjs-node's TensorFlow on a GPU or the CPU): no mask
 * computed in JavaScript and uploaded every step. Only float32 ops that every engine has
 * (Multiply, Add, FloorDiv, Mod, GreaterEqual, Cast), on integers below 2^24 so that float32
 * computes them exactly: the 32-bit multiply-shift a * h + k1 is done in 8- and 16-bit pieces.
 *
 * The index hash h(i) does not depend on the call: it is computed once per tensor size, uploaded
 * once as its two 16-bit halves, and kept (a few sizes at most: a model's dropout layers).
 */
import * as tf from '@tensorflow/tfjs';
import { dropThreshold, indexHash, type DropoutKey } from './dropout-kernels';

interface IndexHash {
  low: tf.Tensor1D;
  high: tf.Tensor1D;
}

const MAX_CACHED = 8;
const cache = new Map<string, IndexHash>();

function indexHashOf(n: number): IndexHash {
  const id = `${tf.getBackend()}:${n}`;
  const hit = cache.get(id);
  if (hit != null) return hit;
  const low = new Float32Array(n);
  const high = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = indexHash(i);
    low[i] = h & 0xffff;
    high[i] = h >>> 16;
  }
  const entry = { low: tf.keep(tf.tensor1d(low)), high: tf.keep(tf.tensor1d(high)) };
  if (cache.size >= MAX_CACHED) {
    const [oldest] = cache.keys();
    tf.dispose(Object.values(cache.get(oldest) as IndexHash));
    cache.delete(oldest);
  }
  cache.set(id, entry);
  return entry;
}

/** The keep-mask (1 kept, 0 dropped) of a tensor of `shape`, equal to dropoutMask's. */
export function dropoutMaskOps(shape: number[], rate: number, key: DropoutKey): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const { low, high } = indexHashOf(n);
  const a = (key[0] | 1) >>> 0;
  const [a0, a1, a2, a3] = [a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, a >>> 24];
  const [bLow, bHigh] = [key[1] & 0xffff, key[1] >>> 16];
  return tf.tidy(() => {
    const { add, mul, mod, floorDiv } = tf;
    // a * h = sum of a_j * h_low * 2^(8j) + a_j * h_high * 2^(16 + 8j); each product < 2^24.
    const x0 = mul(low, a0);
    const x1 = mul(low, a1);
    const lowSum = add(add(mod(x0, 65536), mul(mod(x1, 256), 256)), bLow);
    const highSum = add(add(add(add(floorDiv(x0, 65536), floorDiv(x1, 256)), mod(mul(low, a2), 65536)),
      add(mul(mod(mul(low, a3), 256), 256), mod(mul(high, a0), 65536))),
    add(add(mul(mod(mul(high, a1), 256), 256), bHigh), floorDiv(lowSum, 65536)));
    // The top 24 of the 32 bits of (a * h + k1) mod 2^32.
    const bits = add(mul(mod(highSum, 65536), 256), floorDiv(mod(lowSum, 65536), 256));
    return tf.cast(tf.greaterEqual(bits, dropThreshold(rate)), 'float32').reshape(shape);
  });
}
