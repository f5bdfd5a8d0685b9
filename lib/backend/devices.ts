/**
 * Devices for the TensorFlow engines: which GPUs a process may use, which one each worker gets,
 * and what TensorFlow reads from the environment when it loads (so it is set before).
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';

export type Env = Record<string, string | undefined>;

/** Whether an optional package (tfjs-node-gpu) is installed, without loading it. */
export function isInstalled(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** The GPUs a process may use, as entries CUDA_VISIBLE_DEVICES accepts (indices or UUIDs). */
export interface GpuListing {
  gpus: string[];
  /** Where the list came from, for messages. */
  source: string;
}

/**
 * CUDA's reading of CUDA_VISIBLE_DEVICES: the entries before the first invalid one ('-1', an
 * empty entry); an empty value hides every GPU.
 */
export function parseVisibleDevices(value: string): string[] {
  const gpus: string[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('-')) break;
    gpus.push(entry);
  }
  return gpus;
}

/** `nvidia-smi -L`'s GPUs as indices, or null when nvidia-smi cannot run. */
export function gpusFromNvidiaSmi(): string[] | null {
  try {
    const listing = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return listing.split('\n').filter((l) => l.startsWith('GPU ')).map((_, i) => String(i));
  } catch {
    return null;
  }
}

/** The GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else every GPU nvidia-smi lists. */
export function visibleGpus(env: Env = process.env, smi: () => string[] | null = gpusFromNvidiaSmi): GpuListing {
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible != null) return { gpus: parseVisibleDevices(visible), source: `CUDA_VISIBLE_DEVICES=${visible}` };
  const listed = smi();
  return listed == null
    ? { gpus: [], source: 'no CUDA_VISIBLE_DEVICES and no nvidia-smi' }
    : { gpus: listed, source: `nvidia-smi -L (${listed.length} GPU${listed.length === 1 ? '' : 's'})` };
}

export interface GpuChoice {
  /** The CUDA_VISIBLE_DEVICES entry the worker keeps. */
  gpu: string;
  /** One line for the log. */
  description: string;
}

/**
 * The GPU of the worker with local rank `localRank`: the localRank-th of the visible ones. A
 * scheduler that already gave each task its own GPU (one visible) leaves it in place; more workers
 * than GPUs (--oversubscribe) share them in turn.
 */
export function gpuOfLocalRank(listing: GpuListing, localRank: number): GpuChoice {
  const { gpus, source } = listing;
  if (gpus.length === 0) throw new Error(`no GPU to pin local rank ${localRank} to (${source})`);
  const gpu = gpus[localRank % gpus.length];
  const which = gpus.length === 1 ? 'the only visible GPU' : `entry ${(localRank % gpus.length) + 1} of ${gpus.length}`;
  const shared = gpus.length > 1 && localRank >= gpus.length ? `, shared: ${localRank + 1} local ranks on ${gpus.length} GPU${gpus.length === 1 ? '' : 's'}` : '';
  return { gpu, description: `GPU ${gpu} (local rank ${localRank}: ${which}, from ${source}${shared})` };
}

/** CPU threads for each of `localWorkers` workers of a multi-threaded engine. */
export function threadsPerWorker(localWorkers: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, localWorkers)));
}

/**
 * What TensorFlow (tfjs-node, tfjs-node-gpu) reads when it loads, for one of `localWorkers`
 * processes on this machine: its share of the cores, and GPU memory taken as needed rather than all
 * at once (processes that share a GPU would otherwise each try to take all of it). What the user
 * set already wins. Returns one line for the log.
 */
export function prepareTensorflowEnv(localWorkers: number, env: Env = process.env, cores = os.availableParallelism()): string {
  const threads = threadsPerWorker(localWorkers, cores);
  const defaults: Record<string, string> = {
    TF_NUM_INTRAOP_THREADS: String(threads),
    TF_NUM_INTEROP_THREADS: '1',
    TF_FORCE_GPU_ALLOW_GROWTH: 'true',
  };
  for (const [name, value] of Object.entries(defaults)) if (env[name] == null || env[name] === '') env[name] = value;
  const given = env.TF_NUM_INTRAOP_THREADS === String(threads) ? `${cores} cores / ${localWorkers} worker${localWorkers === 1 ? '' : 's'} on this machine` : 'TF_NUM_INTRAOP_THREADS as set';
  return `${env.TF_NUM_INTRAOP_THREADS} thread${env.TF_NUM_INTRAOP_THREADS === '1' ? '' : 's'} (${given})`;
}

/** Total memory of one GPU in bytes, from nvidia-smi (which counts GPUs physically, ignoring CUDA_VISIBLE_DEVICES), or null. */
export function gpuMemoryBytes(gpu: string): number | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.total', '--format=csv,noheader,nounits', '-i', gpu],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    const mib = Number(out.trim().split('\n')[0]);
    return Number.isFinite(mib) && mib > 0 ? mib * 1024 * 1024 : null;
  } catch {
    return null;
  }
}
