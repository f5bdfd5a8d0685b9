/**
 * Which gradients share a bucket (PyTorch's DDP, `bucket_cap_mb`): parameters in reverse order of
 * the model's (the order the backward pass finishes them), consecutive ones in one bucket up to a
 * size cap, a parameter never split. The first bucket is capped at 1 MiB, as in PyTorch, so that
 * the first all-reduce starts early in the backward pass; a smaller cap caps it too (PyTorch keeps
 * 1 MiB), so that a small model's gradients can be split.
 */
export const FIRST_BUCKET_BYTES = 1024 * 1024;
const MIB = 1024 * 1024;

export interface BucketPlan {
  /** Indices into the model's trainable weights, in the order they fill the bucket. */
  params: number[];
  /** Where each of them starts in the bucket, in floats. */
  offsets: number[];
  /** The gradients' floats in the bucket. */
  floats: number;
}

/**
 * Buckets for parameters of `sizes` floats (model order). `capMb` 0 gives one bucket of every
 * parameter: the naive algorithm, one all-reduce after the whole backward pass.
 */
export function assignBuckets(sizes: number[], capMb: number): BucketPlan[] {
  if (!(capMb >= 0) || !Number.isFinite(capMb)) throw new RangeError(`the bucket cap must be a non-negative number of MB (got ${capMb})`);
  const capBytes = capMb === 0 ? Infinity : capMb * MIB;
  const buckets: BucketPlan[] = [];
  let current: BucketPlan = { params: [], offsets: [], floats: 0 };
  // Cap 0 is one bucket however big: the first bucket's 1 MiB does not apply to it.
  const limit = () => (buckets.length === 0 && capMb > 0 ? Math.min(FIRST_BUCKET_BYTES, capBytes) : capBytes);
  for (let p = sizes.length - 1; p >= 0; p--) {
    if (current.params.length > 0 && (current.floats + sizes[p]) * 4 > limit()) {
      buckets.push(current);
      current = { params: [], offsets: [], floats: 0 };
    }
    current.params.push(p);
    current.offsets.push(current.floats);
    current.floats += sizes[p];
  }
  if (current.params.length > 0) buckets.push(current);
  return buckets;
}
