/**
 * What `bench/training.ts` (the parent) and `bench/worker.ts` (one child per
 * engine x model x batch) tell each other. The parent passes a WorkerJob as
 * JSON in argv[2]; the child prints progress on stderr and, last, one line
 * `RESULT_MARKER + JSON.stringify(WorkerResult)` on stdout.
 */
import type { EngineName } from '../lib/backend/select';
import type { ModelName } from '../lib/train/config';

export const RESULT_MARKER = '@@bench-result ';

export const ENGINE_NAMES: readonly EngineName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface WorkerJob {
  engine: EngineName;
  model: ModelName;
  batch: number;
  minSeconds: number;
  minSteps: number;
  /**
   * Seconds this child may take in all (start-up, warm-up, timed steps): it
   * skips when the warm-up shows one more step would overrun, and stops timing
   * (after at least one step) before the next step would.
   */
  limitSeconds: number;
}

export interface WorkerResult {
  /**
   * ok: measured. skipped: the warm-up step showed one more step would exceed
   * the budget. unavailable: the engine did not start (BackendError). error:
   * anything else went wrong.
   */
  status: 'ok' | 'skipped' | 'unavailable' | 'error';
  engine: EngineName;
  model: ModelName;
  batch: number;
  /** Engine's own description, e.g. "wasm (XNNPACK, SIMD, 1 thread, ...)". */
  engineDescription?: string;
  error?: string;
  /** 'fashion-mnist train' or 'random' (when the data files could not be read). */
  inputs?: string;
  /** Sizes the batch was split into for memory (one entry = not split). */
  microBatches?: number[];
  startupSeconds?: number;
  warmupSeconds?: number;
  steps?: number;
  seconds?: number;
  imagesPerSec?: number;
  /**
   * CPU time of this process / wall time over the timed steps. Near 1 when
   * the core was ours; lower when other processes shared it.
   */
  cpuShare?: number;
  /** True when timing stopped at the limit before min-steps/min-seconds were both reached. */
  stoppedAtBudget?: boolean;
  /** For 'skipped': the estimated total time of the configuration. */
  estimatedSeconds?: number;
  firstLoss?: number;
  lastLoss?: number;
  numTensors?: number;
  /** wasm engine only: size of the WebAssembly memory at the end (it never shrinks). */
  wasmHeapBytes?: number;
}
