import * as tf from '@tensorflow/tfjs';

/** Copies tensors into one flat buffer (a bucket), leaving `extra` floats at the end. */
export function flatten(tensors: tf.Tensor[], extra = 0): Float32Array {
  const total = tensors.reduce((n, t) => n + t.size, 0);
  const flat = new Float32Array(total + extra);
  let offset = 0;
  for (const t of tensors) {
    flat.set(t.dataSync() as Float32Array, offset);
    offset += t.size;
  }
  return flat;
}

/** Tensors of the given shapes over consecutive slices of `flat`. */
export function unflatten(flat: Float32Array, shapes: number[][]): tf.Tensor[] {
  let offset = 0;
  return shapes.map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = tf.tensor(flat.subarray(offset, offset + size), shape, 'float32');
    offset += size;
    return t;
  });
}
