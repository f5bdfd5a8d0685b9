import * as os from 'node:os';
import { gpuMemoryBytes } from '../backend/devices';
import type { Engine } from '../backend/select';

/** Bytes a training step may use for activations, per worker, and where the figure comes from. */
export interface MemoryBudget {
  bytes: number;
  source: string;
}

const GB = 1e9;
/** wasm32 addresses at most 4 GB, and its heap never shrinks: keep well below. */
const WASM_LIMIT = 2 * GB;
/** Beyond this a CPU gains nothing from a longer pass. */
const CPU_TENSORFLOW_LIMIT = 8 * GB;
/** Of a GPU's memory, what activations may take (TensorFlow keeps the rest for weights and its own pools). */
const GPU_SHARE = 0.7;
/** Of the machine's RAM, what its workers' activations may take together. */
const RAM_SHARE = 0.5;

export interface BudgetOptions {
  /** Workers on this machine: the RAM is theirs together. */
  localWorkers: number;
  /** --device-memory-gb: the budget, when given. */
  deviceMemoryGb: number | null;
  /** For tests: total RAM and a GPU's memory. */
  totalMemory?: number;
  gpuMemory?: (gpu: string) => number | null;
}

/** The activation budget of one worker on `engine`: from the device where the engine can tell, else from the flag. */
export function activationBudget(engine: Pick<Engine, 'name' | 'gpu'>, options: BudgetOptions): MemoryBudget {
  const gb = (bytes: number) => `${(bytes / GB).toFixed(1)} GB`;
  if (options.deviceMemoryGb != null) return { bytes: options.deviceMemoryGb * GB, source: `--device-memory-gb ${options.deviceMemoryGb}` };
  const ram = options.totalMemory ?? os.totalmem();
  const ramShare = ram * RAM_SHARE / Math.max(1, options.localWorkers);
  const ramText = `half of this machine's ${gb(ram)} of RAM over ${options.localWorkers} worker${options.localWorkers === 1 ? '' : 's'}`;
  switch (engine.name) {
    case 'tensorflow-gpu': {
      const total = engine.gpu == null ? null : (options.gpuMemory ?? gpuMemoryBytes)(engine.gpu);
      if (total == null) return { bytes: 4 * GB, source: `GPU memory unknown (nvidia-smi could not tell): 4 GB assumed; set --device-memory-gb` };
      return { bytes: total * GPU_SHARE, source: `${GPU_SHARE * 100}% of GPU ${engine.gpu}'s ${gb(total)} (nvidia-smi)` };
    }
    case 'tensorflow':
      return ramShare < CPU_TENSORFLOW_LIMIT
        ? { bytes: ramShare, source: ramText }
        : { bytes: CPU_TENSORFLOW_LIMIT, source: 'at most 8 GB on a CPU (longer passes gain nothing)' };
    case 'wasm':
    case 'cpu':
      return ramShare < WASM_LIMIT
        ? { bytes: ramShare, source: ramText }
        : { bytes: WASM_LIMIT, source: "at most 2 GB: wasm32's 4 GB address space, whose heap never shrinks" };
  }
}

/**
 * Saved activations, their gradients and scratch space, per float a layer
 * outputs (measured on wasm: 43 MB per image of the WideResNets, 11.3 bytes per float).
 */
const BYTES_PER_ACTIVATION_FLOAT = 12;

/** The largest micro-batch whose training step fits `budgetBytes`. */
export function maxMicroBatch(budgetBytes: number, activationFloatsPerImage: number): number {
  const perImage = activationFloatsPerImage * BYTES_PER_ACTIVATION_FLOAT;
  return Math.max(1, Math.floor(budgetBytes / perImage));
}

/** Splits `batch` images into the fewest near-equal micro-batches of at most `max`. */
export function microBatchSizes(batch: number, max: number): number[] {
  const parts = Math.ceil(batch / max);
  const base = Math.floor(batch / parts);
  const sizes = new Array<number>(parts).fill(base);
  for (let i = 0; i < batch - base * parts; i++) sizes[i]++;
  return sizes;
}
