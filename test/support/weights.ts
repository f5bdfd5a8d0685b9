import assert from 'node:assert/strict';

export type Weights = Map<string, Float32Array>;

/** The largest |a - b| over every weight of two saved models (which must have the same tensors). */
export function maxDifference(a: Weights, b: Weights): number {
  let diff = 0;
  for (const [name, va] of a) {
    const vb = b.get(name);
    assert.ok(vb != null, name);
    for (let i = 0; i < va.length; i++) diff = Math.max(diff, Math.abs(va[i] - vb[i]));
  }
  return diff;
}
