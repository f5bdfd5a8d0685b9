import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TrainConfig } from '../train/config';
import type { TrainEvent, TrainHooks, TrainResult } from '../train/events';
import { listCheckpoints } from '../train/checkpoint-file';
import { writeEnd } from '../train/run-record';
import type { StartMessage, WorkerMessage } from './messages';
import { DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT } from '../ddp/world';
import { type GpuListing, gpuOfLocalRank, isInstalled, visibleGpus } from '../backend/devices';

export class LaunchError extends Error {
  override name = 'LaunchError';
}

/** A worker failed; the run was stopped. */
export class WorkerError extends Error {
  override name = 'WorkerError';
  constructor(readonly rank: number, message: string) {
    super(message);
  }
}

/** A compiled entry of lib/<dir> (dist/lib/<dir>/<file>): child processes cannot run the .ts sources. */
export function compiledEntry(file: string, dir = 'launch'): string {
  const beside = path.join(__dirname, '..', dir, file);
  if (fs.existsSync(beside)) return beside;
  let root = __dirname;
  while (!fs.existsSync(path.join(root, 'package.json'))) {
    const up = path.dirname(root);
    if (up === root) break;
    root = up;
  }
  const compiled = path.join(root, 'dist', 'lib', dir, file);
  if (!fs.existsSync(compiled)) throw new LaunchError(`cannot find the compiled worker ${compiled}: run "npm run build" first`);
  return compiled;
}

/**
 * GPUs tfjs-node-gpu workers could use, or null when that engine is not in play: not installed,
 * or with --backend auto no GPU visible (the workers then fall back to a CPU engine, one core each).
 */
function gpuListing(config: Pick<TrainConfig, 'backend'>): GpuListing | null {
  if (config.backend !== 'tensorflow-gpu' && config.backend !== 'auto') return null;
  if (!isInstalled('@tensorflow/tfjs-node-gpu')) {
    return config.backend === 'tensorflow-gpu' ? { gpus: [], source: '@tensorflow/tfjs-node-gpu is not installed' } : null;
  }
  const listing = visibleGpus();
  return listing.gpus.length === 0 && config.backend === 'auto' ? null : listing;
}

/** Devices one node can give workers: its GPUs when tfjs-node-gpu is in play, else its CPU cores. */
export function availableDevices(config: Pick<TrainConfig, 'backend'>): { count: number; kind: 'GPUs' | 'CPU cores'; gpus: GpuListing | null } {
  const gpus = gpuListing(config);
  return gpus != null ? { count: gpus.gpus.length, kind: 'GPUs', gpus } : { count: os.availableParallelism(), kind: 'CPU cores', gpus };
}

/** Refuses more workers than devices unless oversubscription was asked for. */
export function checkDevices(config: TrainConfig): { gpus: GpuListing | null } {
  const { count: available, kind, gpus } = availableDevices(config);
  if (config.numGpus > available && !config.oversubscribe) {
    const where = gpus != null ? `, ${gpus.source}` : '';
    throw new LaunchError(`--num-gpus ${config.numGpus} asks for more devices than this machine has (${available} ${kind}${where}): ` +
      `lower --num-gpus, or add --oversubscribe to share devices (for teaching only: the workers then compete and the speed-up is not real)`);
  }
  return { gpus: gpus != null && gpus.gpus.length > 0 ? gpus : null };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Prefixes every line a worker prints with its rank and passes it on through
 * this process's streams (a notebook kernel shows only what this process
 * writes). Keeps the last lines, to explain a crash.
 */
function relay(stream: NodeJS.ReadableStream | null, rank: number, out: NodeJS.WriteStream, onLine: (line: string) => void = () => undefined): void {
  if (stream == null) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      out.write(`[rank ${rank}] ${line}\n`);
      onLine(line);
    }
  });
  stream.on('end', () => {
    if (pending !== '') out.write(`[rank ${rank}] ${pending}\n`);
  });
}

const KILL_GRACE_MS = 3000;
const ECHO_GRACE_MS = 2000;

/** How a group of workers ended: rank 0's result, or the failure that stopped them. */
type GroupEnd = { result: Omit<TrainResult, 'model'> | null; replicas: TrainResult['replicas']; failure: WorkerError | null };

/**
 * Starts one worker process per local device (ranks nodeId x numGpus + i)
 * and supervises them: events stream to `emit`, output is relayed with a
 * rank prefix, and the first failure (an error, a crash, a signal) or an
 * interrupt stops every worker. Resolves once every worker has exited.
 */
async function runWorkerGroup(
  config: TrainConfig, gpus: GpuListing | null, restart: number, emit: (event: TrainEvent) => void,
  onWorkers: (pids: number[]) => void,
): Promise<GroupEnd> {
  const entry = compiledEntry('worker-main.js');
  const worldSize = config.numGpus * config.numNodes;
  const masterAddr = config.masterAddr ?? DEFAULT_MASTER_ADDR;
  const masterPort = config.masterPort ?? (config.numNodes > 1 ? DEFAULT_MASTER_PORT : await freePort());

  const children: ChildProcess[] = [];
  let failure: WorkerError | null = null;
  let result: Omit<TrainResult, 'model'> | null = null;
  const replicas: TrainResult['replicas'] = [];
  const stopAll = () => {
    for (const child of children) if (child.exitCode == null && child.signalCode == null) child.kill('SIGTERM');
    setTimeout(() => {
      for (const child of children) if (child.exitCode == null && child.signalCode == null) child.kill('SIGKILL');
    }, KILL_GRACE_MS).unref();
  };
  // A worker that lost its connection to a failed peer usually reports first;
  // give the failed peer a moment to tell its own story, which is the one to show.
  let echo: { rank: number; message: string } | null = null;
  const fail = (rank: number, message: string, isEcho = false) => {
    if (failure != null) return;
    if (isEcho) {
      if (echo == null) {
        echo = { rank, message };
        setTimeout(() => { if (echo != null) fail(echo.rank, echo.message); }, ECHO_GRACE_MS).unref();
      }
      return;
    }
    failure = new WorkerError(rank, rank === -1 ? 'training was interrupted: every worker was stopped' : `rank ${rank} failed: ${message}`);
    echo = null;
    stopAll();
  };

  const exits = Array.from({ length: config.numGpus }, (_, localRank) => {
    const rank = config.nodeId * config.numGpus + localRank;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FASHION_MNIST_LAUNCHER: 'builtin',
      RANK: String(rank), WORLD_SIZE: String(worldSize), LOCAL_RANK: String(localRank), LOCAL_WORLD_SIZE: String(config.numGpus),
      MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort),
      // torchrun's name for the attempt: 0 first, k after the k-th restart.
      TORCHELASTIC_RESTART_COUNT: String(restart),
    };
    // Worker i gets the i-th GPU this process may use (the parent's CUDA_VISIBLE_DEVICES, in its order).
    if (gpus) env.CUDA_VISIBLE_DEVICES = gpuOfLocalRank(gpus, localRank).gpu;
    const child = fork(entry, [`--rank=${rank}`], { env, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
    children.push(child);
    child.send({ type: 'train', config } satisfies StartMessage);
    relay(child.stdout, rank, process.stdout);
    const errorTail: string[] = [];
    let outOfMemory = false;
    relay(child.stderr, rank, process.stderr, (line) => {
      if (/heap out of memory|Aborted\(|out of memory/i.test(line)) outOfMemory = true;
      if (line.trim() === '' || /^\s+at |^\s*\d+: 0x/.test(line)) return;
      errorTail.push(line.trim());
      if (errorTail.length > 3) errorTail.shift();
    });
    let reported: { message: string; isEcho: boolean } | null = null;
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'event' && message.rank === 0) emit(message.event);
      else if (message.type === 'done') {
        replicas[message.rank - config.nodeId * config.numGpus] = message.result.replicas[0];
        if (message.rank === 0) result = message.result;
      }
      else if (message.type === 'error') reported = { message: message.message, isEcho: message.kind === 'CommError' };
    });
    return new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        if (signal === 'SIGINT' && failure == null) {
          fail(-1, 'interrupted');
        } else if (code !== 0 && failure == null) {
          const how = signal != null ? `killed by ${signal}` : `exited with code ${code}`;
          const oom = outOfMemory
            ? ' (out of memory: lower --batch-size or --micro-batch)'
            : signal === 'SIGKILL' ? ' (by the system? out of memory?)' : '';
          const last = errorTail.length > 0 ? `; its last words: ${errorTail.slice(-2).join(' | ')}` : '';
          if (reported != null) fail(rank, reported.message, reported.isEcho);
          else fail(rank, `${how}${oom}${last}`);
        }
        resolve();
      });
      child.on('error', (e) => {
        fail(rank, `could not start: ${e.message}`);
        resolve();
      });
    });
  });

  onWorkers(children.map((c) => c.pid ?? -1));
  const onInterrupt = () => fail(-1, 'interrupted');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  try {
    await Promise.all(exits);
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
  }
  // Every worker reported only a peer's failure (all failed alike, e.g. in setting up the ring): that is the failure.
  const leftEcho = echo as { rank: number; message: string } | null;
  if (failure == null && leftEcho != null) fail(leftEcho.rank, leftEcho.message);
  return { result, replicas, failure };
}

/** "the checkpoint of epoch 3", or what a restart starts from without one. */
function restartPoint(runDir: string | null): string {
  const latest = runDir != null ? listCheckpoints(runDir)[0] : undefined;
  return latest != null ? `the checkpoint of epoch ${latest.epoch}` : 'the start (no epoch had completed)';
}

/**
 * Runs the workers of one node; with --max-restarts N, a worker's failure (not an interrupt) stops
 * the group and starts all of its workers again from the run's last checkpoint, up to N times,
 * as torchrun does. A run that ends in failure or an interrupt gets its end.json from here, since
 * rank 0 may have died without writing one.
 */
export async function launchWorkers(config: TrainConfig, hooks: TrainHooks): Promise<TrainResult> {
  const { gpus } = checkDevices(config);
  const emit = hooks.onEvent ?? (() => undefined);
  let runDir: string | null = config.resume;
  const watch = (event: TrainEvent) => {
    if (event.type === 'start' && event.runDir !== '') runDir = event.runDir;
    emit(event);
  };
  for (let restart = 0; ; restart++) {
    const attempt = restart === 0 ? config : { ...config, resume: runDir };
    const end = await runWorkerGroup(attempt, gpus, restart, watch, hooks.onWorkers ?? (() => undefined));
    const failure = end.failure;
    if (failure == null) {
      if (end.result == null) {
        if (config.nodeId === 0) throw new LaunchError('the workers finished without a result from rank 0');
        return { runId: '', runDir: '', epochs: [], outcome: 'completed', diverged: null, model: null, replicas: end.replicas };
      }
      return { ...end.result, model: null, replicas: end.replicas };
    }
    const interrupted = failure.rank === -1;
    if (interrupted || restart >= config.maxRestarts) {
      if (runDir != null && config.nodeId === 0) {
        const tries = restart > 0 ? ` (after ${restart} restart${restart > 1 ? 's' : ''})` : '';
        try {
          writeEnd(runDir, { outcome: interrupted ? 'interrupted' : 'failed', message: `${failure.message}${tries}` });
        } catch {
          // A full disk may refuse end.json too: the worker's error is the one to report.
        }
        const kept = listCheckpoints(runDir)[0];
        if (kept != null && !failure.message.includes('--resume')) {
          failure.message += `${tries}; the checkpoint of epoch ${kept.epoch} is kept: continue with --resume ${runDir}`;
        }
      }
      throw failure;
    }
    emit({
      type: 'log',
      message: `${failure.message}; restarting all ${config.numGpus} workers from ${restartPoint(runDir)} (restart ${restart + 1} of ${config.maxRestarts})`,
    });
  }
}
