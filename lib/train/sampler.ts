import { permutation } from './random';

export interface ShardOptions {
  /** Images in the (possibly subset) training set. */
  datasetSize: number;
  /** Workers taking part (PyTorch's world size). */
  numReplicas: number;
  rank: number;
  /** Images per worker per step. */
  batchSize: number;
  seed: number;
  epoch: number;
}

/** Full global batches per epoch: the incomplete last one is dropped (drop_last). */
export function stepsPerEpoch(datasetSize: number, numReplicas: number, batchSize: number): number {
  return Math.floor(datasetSize / (numReplicas * batchSize));
}

/**
 * This rank's batches for one epoch, like PyTorch's DistributedSampler: the
 * epoch's permutation (from seed + epoch) is dealt out rank by rank, rank r
 * taking positions r, r + N, r + 2N, ... So the ranks' k-th batches together
 * are exactly the k-th batch of one worker with batch size N x batchSize,
 * which makes N workers and one big batch train the same model.
 * Returned indices are positions in the training set (0..datasetSize-1).
 */
export function shardBatches(options: ShardOptions): Int32Array[] {
  const { datasetSize, numReplicas, rank, batchSize, seed, epoch } = options;
  if (rank < 0 || rank >= numReplicas) throw new RangeError(`rank ${rank} outside 0..${numReplicas - 1}`);
  const order = permutation(datasetSize, seed + epoch);
  const steps = stepsPerEpoch(datasetSize, numReplicas, batchSize);
  const batches: Int32Array[] = [];
  for (let k = 0; k < steps; k++) {
    const batch = new Int32Array(batchSize);
    const globalStart = k * batchSize * numReplicas;
    for (let i = 0; i < batchSize; i++) batch[i] = order[globalStart + i * numReplicas + rank];
    batches.push(batch);
  }
  return batches;
}
