import * as os from 'node:os';
import type { EngineName } from '../backend/select';

/**
 * Bytes of memory a training step may use for activations, per engine. wasm32
 * addresses at most 4 GB, and its heap never shrinks: keep well below.
 */
const ACTIVATION_BUDGET: Record<EngineName, () => number> = {
  wasm: () => 2e9,
  cpu: () => 2e9,
  tensorflow: () => Math.min(8e9, os.totalmem() / 4),
  'tensorflow-gpu': () => 6e9,
};

/**
 * Saved activations, their gradients and scratch space, per float a layer
 * outputs (measured on wasm: 43 MB per image of the WideResNets, 11.3 bytes per float).
 */
const BYTES_PER_ACTIVATION_FLOAT = 12;

/** The largest micro-batch whose training step fits the engine's budget. */
export function maxMicroBatch(engine: EngineName, activationFloatsPerImage: number): number {
  const perImage = activationFloatsPerImage * BYTES_PER_ACTIVATION_FLOAT;
  return Math.max(1, Math.floor(ACTIVATION_BUDGET[engine]() / perImage));
}

/** Splits `batch` images into the fewest near-equal micro-batches of at most `max`. */
export function microBatchSizes(batch: number, max: number): number[] {
  const parts = Math.ceil(batch / max);
  const base = Math.floor(batch / parts);
  const sizes = new Array<number>(parts).fill(base);
  for (let i = 0; i < batch - base * parts; i++) sizes[i]++;
  return sizes;
}
