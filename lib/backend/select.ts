import * as tf from '@tensorflow/tfjs';
import type { BackendChoice } from '../train/config';
import { registerWasmTrainingKernels } from './wasm-kernels/index';
import { gpuOfLocalRank, isInstalled, prepareTensorflowEnv, visibleGpus } from './devices';

export type EngineName = Exclude<BackendChoice, 'auto'>;

export interface Engine {
  name: EngineName;
  /** The tfjs backend name the engine registers ('tensorflow', 'wasm', 'cpu'). */
  tfBackend: string;
  /** One line for the log, e.g. "wasm (XNNPACK, SIMD, 1 thread)". */
  description: string;
  /** The GPU this process uses (a CUDA_VISIBLE_DEVICES entry), on tensorflow-gpu. */
  gpu: string | null;
  /** With --backend auto: the engines tried before this one, and why each was skipped. */
  skipped: string[];
}

/** Where this process sits on its machine: which GPU and how many cores are its own. */
export interface EngineOptions {
  /** Index among the workers on this machine (picks the GPU). */
  localRank?: number;
  /** Workers on this machine (shares the cores). */
  localWorkers?: number;
}

/** What tfjs-node-gpu 4.22 needs to reach a GPU (its libtensorflow 2.9.1 is built for these). */
export const GPU_REQUIREMENTS = 'the CUDA 11.2 runtime libraries (libcudart.so.11.0, libcublas.so.11, libcublasLt.so.11, libcufft.so.10, ' +
  'libcurand.so.10, libcusolver.so.11, libcusparse.so.11) and cuDNN 8.1 (libcudnn.so.8) on LD_LIBRARY_PATH, and an NVIDIA driver ' +
  'of version 460 or newer (a newer driver runs these older runtimes; see the README, "GPU machines")';

export class BackendError extends Error {
  override name = 'BackendError';
}

const PREFERENCE: EngineName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** Loads an optional native package; null when it is not installed or its addon is missing. */
function tryRequire(pkg: string): { error: string | null } {
  try {
    require(pkg);
    return { error: null };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

type Started = Omit<Engine, 'skipped'>;

/**
 * tfjs-node-gpu: pinned to this worker's GPU before libtensorflow loads, and refused when
 * TensorFlow then cannot use it (it would run on the CPU without a word).
 */
function startTensorflowGpu(options: EngineOptions): Started {
  if (!isInstalled('@tensorflow/tfjs-node-gpu')) {
    throw new BackendError('tensorflow-gpu: @tensorflow/tfjs-node-gpu is not installed. Install it with "npm install @tensorflow/tfjs-node-gpu" ' +
      `(needs internet; then ${GPU_REQUIREMENTS}), or choose --backend wasm`);
  }
  const listing = visibleGpus();
  if (listing.gpus.length === 0) throw new BackendError(`tensorflow-gpu: no GPU is visible (${listing.source}); choose --backend wasm, or make a GPU visible`);
  const choice = gpuOfLocalRank(listing, options.localRank ?? 0);
  process.env.CUDA_VISIBLE_DEVICES = choice.gpu;
  const threads = prepareTensorflowEnv(options.localWorkers ?? 1);
  const { error } = tryRequire('@tensorflow/tfjs-node-gpu');
  if (error) throw new BackendError(`tensorflow-gpu: @tensorflow/tfjs-node-gpu does not load (${error}); it needs ${GPU_REQUIREMENTS}`);
  const backend = tf.findBackend('tensorflow') as { isUsingGpuDevice?: boolean } | null;
  if (backend?.isUsingGpuDevice !== true) {
    throw new BackendError(`tensorflow-gpu: TensorFlow loaded but cannot use ${choice.description}: it would silently run on the CPU. ` +
      `It needs ${GPU_REQUIREMENTS}. Or choose --backend wasm`);
  }
  return { name: 'tensorflow-gpu', tfBackend: 'tensorflow', gpu: choice.gpu, description: `tensorflow-gpu (libtensorflow with CUDA on ${choice.description}; ${threads})` };
}

async function start(name: EngineName, options: EngineOptions): Promise<Started> {
  switch (name) {
    case 'tensorflow-gpu': {
      const started = startTensorflowGpu(options);
      await tf.setBackend('tensorflow');
      return started;
    }
    case 'tensorflow': {
      const threads = prepareTensorflowEnv(options.localWorkers ?? 1);
      const { error } = tryRequire('@tensorflow/tfjs-node');
      if (error) throw new BackendError(`tensorflow: @tensorflow/tfjs-node is not usable (${error}). Install it with "npm install @tensorflow/tfjs-node" (needs internet), or choose --backend wasm`);
      await tf.setBackend('tensorflow');
      return { name, tfBackend: 'tensorflow', gpu: null, description: `tensorflow (libtensorflow on the CPU, ${threads})` };
    }
    case 'wasm': {
      require('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) throw new BackendError('wasm: the WebAssembly backend failed to start');
      registerWasmTrainingKernels();
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      return { name, tfBackend: 'wasm', gpu: null, description: `wasm (XNNPACK${simd ? ', SIMD' : ', no SIMD'}, 1 thread, with this project's gradient kernels)` };
    }
    case 'cpu':
      await tf.setBackend('cpu');
      return { name, tfBackend: 'cpu', gpu: null, description: 'cpu (pure JavaScript, slow: for checks only)' };
  }
}

let current: Engine | null = null;

/**
 * Starts the engine: the one asked for, or with 'auto' the first of
 * tensorflow-gpu, tensorflow, wasm, cpu that works (the engine then lists
 * why each before it was skipped). One engine per process.
 */
export async function initEngine(choice: BackendChoice = 'auto', options: EngineOptions = {}): Promise<Engine> {
  if (current != null) {
    if (choice === 'auto' || choice === current.name) return current;
    throw new BackendError(`this process already runs the ${current.name} engine; start a new process (or restart the kernel) to use ${choice}`);
  }
  // PROD silences tfjs's "install tfjs-node" banner and skips debug-only checks.
  tf.env().set('PROD', true);
  if (choice !== 'auto') {
    current = { ...(await start(choice, options)), skipped: [] };
    return current;
  }
  const skipped: string[] = [];
  for (const name of PREFERENCE) {
    try {
      current = { ...(await start(name, options)), skipped };
      return current;
    } catch (e) {
      skipped.push((e as Error).message);
    }
  }
  throw new BackendError(`no engine could start:\n  ${skipped.join('\n  ')}`);
}

/** The engine started in this process, if any. */
export function currentEngine(): Engine | null {
  return current;
}
