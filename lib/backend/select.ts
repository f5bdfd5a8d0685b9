import * as tf from '@tensorflow/tfjs';
import type { BackendChoice } from '../train/config';
import { registerWasmTrainingKernels } from './wasm-kernels/index';

export type EngineName = Exclude<BackendChoice, 'auto'>;

export interface Engine {
  name: EngineName;
  /** The tfjs backend name the engine registers ('tensorflow', 'wasm', 'cpu'). */
  tfBackend: string;
  /** One line for the log, e.g. "wasm (XNNPACK, SIMD, 1 thread)". */
  description: string;
}

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

async function start(name: EngineName): Promise<Engine> {
  switch (name) {
    case 'tensorflow-gpu': {
      const { error } = tryRequire('@tensorflow/tfjs-node-gpu');
      if (error) throw new BackendError(`tensorflow-gpu: @tensorflow/tfjs-node-gpu is not usable (${error}). Install it with "npm install @tensorflow/tfjs-node-gpu" (needs internet, CUDA 11.2 and cuDNN 8.1), or choose --backend wasm`);
      await tf.setBackend('tensorflow');
      return { name, tfBackend: 'tensorflow', description: `tensorflow-gpu (libtensorflow with CUDA, CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES ?? 'all'})` };
    }
    case 'tensorflow': {
      const { error } = tryRequire('@tensorflow/tfjs-node');
      if (error) throw new BackendError(`tensorflow: @tensorflow/tfjs-node is not usable (${error}). Install it with "npm install @tensorflow/tfjs-node" (needs internet), or choose --backend wasm`);
      await tf.setBackend('tensorflow');
      return { name, tfBackend: 'tensorflow', description: 'tensorflow (libtensorflow on the CPU)' };
    }
    case 'wasm': {
      require('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) throw new BackendError('wasm: the WebAssembly backend failed to start');
      registerWasmTrainingKernels();
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      return { name, tfBackend: 'wasm', description: `wasm (XNNPACK${simd ? ', SIMD' : ', no SIMD'}, 1 thread, with this project's gradient kernels)` };
    }
    case 'cpu':
      await tf.setBackend('cpu');
      return { name, tfBackend: 'cpu', description: 'cpu (pure JavaScript, slow: for checks only)' };
  }
}

let current: Engine | null = null;

/**
 * Starts the engine: the one asked for, or with 'auto' the first of
 * tensorflow-gpu, tensorflow, wasm, cpu that works. One engine per process.
 */
export async function initEngine(choice: BackendChoice = 'auto'): Promise<Engine> {
  if (current != null) {
    if (choice === 'auto' || choice === current.name) return current;
    throw new BackendError(`this process already runs the ${current.name} engine; start a new process (or restart the kernel) to use ${choice}`);
  }
  // PROD silences tfjs's "install tfjs-node" banner and skips debug-only checks.
  tf.env().set('PROD', true);
  if (choice !== 'auto') {
    current = await start(choice);
    return current;
  }
  const skipped: string[] = [];
  for (const name of PREFERENCE) {
    try {
      current = await start(name);
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
