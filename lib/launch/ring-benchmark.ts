import { fork, spawnSync } from 'node:child_process';
import * as os from 'node:os';
import { compiledEntry, freePort } from './launch';
import { type Communicator, openCommunicator } from '../ddp/communicator';
import { makeShared } from '../ddp/comm-protocol';
import { connectRing } from '../ddp/ring-setup';
import { Mpi } from '../ddp/mpi';
import { type World, worldFromEnv } from '../ddp/world';

export interface RingSize {
  name: string;
  floats: number;
}

export interface RingTiming extends RingSize {
  workers: number;
  /** Median milliseconds per all-reduce. */
  ms: number;
}

interface BenchmarkPlan {
  sizes: RingSize[];
  repeats: number;
  /** Raw ring only: buffers on SharedArrayBuffers, which the mapped link copies into its channel. */
  copied?: boolean;
}

/** Untimed calls before the timed ones: the JIT compiles the hot paths, the pages are touched. */
const WARMUP = 3;

const repeatsFor = (plan: BenchmarkPlan, size: RingSize) => (size.floats > 1e7 ? Math.max(3, Math.floor(plan.repeats / 4)) : plan.repeats);
const median = (times: number[]) => [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];

/** Median milliseconds of `reduce` on a buffer of each size, each timed after a barrier. */
function medians(plan: BenchmarkPlan, rank: number, reduce: (data: Float32Array) => void, barrier: () => void): number[] {
  return plan.sizes.map((size) => {
    const data = new Float32Array(size.floats).fill(rank + 1);
    for (let i = 0; i < WARMUP; i++) reduce(data);
    const times: number[] = [];
    for (let i = 0; i < repeatsFor(plan, size); i++) {
      barrier();
      const t = performance.now();
      reduce(data);
      times.push(performance.now() - t);
    }
    return median(times);
  });
}

/**
 * The ring alone, on this thread, on buffers in shared memory as the gradient buckets are: the
 * collective itself, without the communication thread's hop and copies.
 */
async function ringMedians(plan: BenchmarkPlan, world: World): Promise<number[]> {
  const ring = await connectRing(world, 60_000);
  if (ring == null) throw new Error('the raw ring benchmark needs 2 workers at least');
  const one = new Float32Array(1);
  const result: number[] = [];
  for (const size of plan.sizes) {
    // As the communicator places its slots: in shared buffers, which the next rank reads in place, where the link can.
    const inPlace = ring.readsSharedBuffers && plan.copied !== true;
    const data = makeShared(size.floats, inPlace).data.fill(world.rank + 1);
    for (let i = 0; i < WARMUP; i++) await ring.allReduce(data);
    const times: number[] = [];
    for (let i = 0; i < repeatsFor(plan, size); i++) {
      await ring.allReduce(one);
      const t = performance.now();
      await ring.allReduce(data);
      times.push(performance.now() - t);
    }
    result.push(median(times));
  }
  ring.close();
  return result;
}

const planFromEnv = () => JSON.parse(process.env.FASHION_MNIST_RING_BENCH ?? '{}') as BenchmarkPlan;
const timed = (comm: Communicator, plan: BenchmarkPlan) => medians(plan, comm.rank, (d) => comm.allReduce(d), () => comm.barrier());

/** Runs inside each forked process: times all-reduces of each size and reports the medians. */
async function runRank(raw: boolean): Promise<void> {
  const world = worldFromEnv();
  if (world == null) throw new Error('ring benchmark worker started without RANK/WORLD_SIZE');
  let result: number[];
  if (raw) {
    result = await ringMedians(planFromEnv(), world);
  } else {
    const comm = openCommunicator(world);
    result = timed(comm, planFromEnv());
    comm.close();
  }
  process.send?.(result, () => process.exit(0));
}

/** Per size, the binding against C in one process: the medians of each and of their paired ratios. */
export interface PairedTimings {
  c: number[];
  koffi: number[];
  /** Median over the repeats of koffi / C, each pair two calls in a row on the same buffer. */
  ratio: number[];
}

/**
 * MPI_Allreduce through the koffi binding against the same call timed in C (the shared library at
 * FASHION_MNIST_MPI_TIMED_LIBRARY, bench/reference/mpi_allreduce_timed.c), alternating on the same
 * buffer, each after an MPI_Barrier, which of the two goes first swapping every repeat.
 */
function pairedMedians(plan: BenchmarkPlan, mpi: Mpi): PairedTimings {
  const library = process.env.FASHION_MNIST_MPI_TIMED_LIBRARY;
  if (library == null) throw new Error('the paired MPI benchmark needs FASHION_MNIST_MPI_TIMED_LIBRARY (bench/allreduce.ts builds it)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as { load: (path: string) => { func: (signature: string) => (data: Float32Array, count: number) => number } };
  const timedInC = koffi.load(library).func('double fmnist_timed_allreduce(void *data, int count)');
  const inC = (data: Float32Array) => {
    const ms = timedInC(data, data.length);
    if (ms < 0) throw new Error('MPI_Allreduce failed in the C reference');
    return ms;
  };
  const throughKoffi = (data: Float32Array) => {
    mpi.barrier();
    const t = performance.now();
    mpi.allReduce(data);
    return performance.now() - t;
  };
  const result: PairedTimings = { c: [], koffi: [], ratio: [] };
  for (const size of plan.sizes) {
    const data = new Float32Array(size.floats).fill(mpi.shape.rank + 1);
    for (let i = 0; i < WARMUP; i++) {
      inC(data);
      throughKoffi(data);
    }
    const c: number[] = [];
    const viaKoffi: number[] = [];
    for (let i = 0; i < repeatsFor(plan, size); i++) {
      if (i % 2 === 0) {
        c.push(inC(data));
        viaKoffi.push(throughKoffi(data));
      } else {
        viaKoffi.push(throughKoffi(data));
        c.push(inC(data));
      }
    }
    result.c.push(median(c));
    result.koffi.push(median(viaKoffi));
    result.ratio.push(median(viaKoffi.map((k, i) => k / c[i])));
  }
  return result;
}

/**
 * Runs under mpirun: MPI_Allreduce through the binding on this thread against the same call timed
 * in C (`paired`), or the communicator of --dist-backend mpi, through its communication thread.
 * Rank 0 prints the result as one JSON line.
 */
function runMpiRank(mode: string): void {
  const plan = planFromEnv();
  let result: number[] | PairedTimings;
  let rank: number;
  if (mode === 'paired') {
    const mpi = new Mpi();
    rank = mpi.shape.rank;
    result = pairedMedians(plan, mpi);
    mpi.finalize();
  } else {
    const world = worldFromEnv();
    if (world == null) throw new Error('the MPI benchmark runs under mpirun');
    rank = world.rank;
    const comm = openCommunicator(world, process.env, null, 'mpi');
    result = timed(comm, plan);
    comm.close();
  }
  if (rank === 0) console.log(JSON.stringify(result));
}

export interface MeasureOptions {
  /** Extra environment of the ranks (FASHION_MNIST_RING_TRANSPORT). */
  env?: NodeJS.ProcessEnv;
  /** Time the ring alone on its thread (true) or through the communicator, as training calls it (false). */
  raw?: boolean;
  /** With `raw`: buffers the mapped link must copy, not read in place (what the in-place reads save). */
  copied?: boolean;
  /** Bind rank r to core r (taskset), as mpirun binds its ranks by default. */
  pin?: boolean;
  /** A command each rank runs under, e.g. ['ip', 'netns', 'exec', 'fmnist-b'] (another network namespace). */
  prefix?: (rank: number) => string[];
  /** Where rank 0 listens (default 127.0.0.1). */
  masterAddr?: string;
}

const hasTaskset = () => spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/**
 * Times the ring all-reduce alone between `workers` processes on this
 * machine, for each buffer size (median of `repeats`, after a barrier).
 */
export async function measureAllReduce(workers: number, sizes: RingSize[], repeats = 20, options: MeasureOptions = {}): Promise<RingTiming[]> {
  if (workers < 2) return sizes.map((s) => ({ ...s, workers, ms: 0 }));
  const port = await freePort();
  const entry = compiledEntry('ring-benchmark.js');
  const pin = options.pin === true && hasTaskset();
  const cores = os.cpus().length;
  const env = options.env ?? {};
  const medians = await Promise.all(Array.from({ length: workers }, (_, rank) => new Promise<number[]>((resolve, reject) => {
    // fork() runs execPath with execArgv before the script: a wrapping command goes there, node last.
    const wrapper = [...(options.prefix?.(rank) ?? []), ...(pin ? ['taskset', '-c', String(rank % cores)] : [])];
    const child = fork(entry, [options.raw ? '--ring-benchmark-raw' : '--ring-benchmark-rank'], {
      ...(wrapper.length > 0 ? { execPath: wrapper[0], execArgv: [...wrapper.slice(1), process.execPath] } : { execArgv: [] }),
      env: {
        ...process.env, ...env, RANK: String(rank), WORLD_SIZE: String(workers), LOCAL_RANK: String(rank), MASTER_PORT: String(port),
        MASTER_ADDR: options.masterAddr ?? '127.0.0.1', FASHION_MNIST_RING_BENCH: JSON.stringify({ sizes, repeats, copied: options.copied === true }),
      },
    });
    child.on('message', (m) => resolve(m as number[]));
    child.on('exit', (code) => { if (code !== 0) reject(new Error(`ring benchmark rank ${rank} exited with code ${code}`)); });
  })));
  return sizes.map((s, i) => ({ ...s, workers, ms: medians[0][i] }));
}

/** Latency per message and bandwidth that fit the ring's cost model to measured timings. */
export interface RingCostModel {
  latencyMs: number;
  /** Bytes per millisecond each link carries (1e6 = 1 GB/s). */
  bytesPerMs: number;
}

/**
 * Ring all-reduce time: 2 (N-1) x latency + 2 (N-1)/N x bytes / bandwidth.
 * Least squares over the timings (use a tiny and a large buffer at least).
 */
export function fitRingCostModel(timings: RingTiming[]): RingCostModel {
  // Least squares in relative error: each size counts alike, so the 68 MB point cannot swamp the
  // 4-byte one that pins the latency. Dividing each row by its time makes the targets 1.
  const rows = timings.filter((t) => t.workers > 1 && t.ms > 0).map((t) => ({
    a: (2 * (t.workers - 1)) / t.ms, b: (((2 * (t.workers - 1)) / t.workers) * t.floats * 4) / t.ms, y: 1,
  }));
  const saa = rows.reduce((s, r) => s + r.a * r.a, 0);
  const sab = rows.reduce((s, r) => s + r.a * r.b, 0);
  const sbb = rows.reduce((s, r) => s + r.b * r.b, 0);
  const say = rows.reduce((s, r) => s + r.a * r.y, 0);
  const sby = rows.reduce((s, r) => s + r.b * r.y, 0);
  const det = saa * sbb - sab * sab;
  if (rows.length < 2 || Math.abs(det) < 1e-12 * saa * sbb) throw new Error('fitRingCostModel needs timings of at least two buffer sizes');
  const latencyMs = Math.max(0, (say * sbb - sby * sab) / det);
  const perByte = Math.max(1e-12, (saa * sby - sab * say) / det);
  return { latencyMs, bytesPerMs: 1 / perByte };
}

/** Predicted milliseconds of one ring all-reduce of `bytes` among `workers`. */
export function ringAllReduceMs(model: RingCostModel, workers: number, bytes: number): number {
  if (workers < 2) return 0;
  return 2 * (workers - 1) * model.latencyMs + ((2 * (workers - 1)) / workers) * bytes / model.bytesPerMs;
}

if (process.argv.includes('--ring-benchmark-rank') || process.argv.includes('--ring-benchmark-raw')) {
  runRank(process.argv.includes('--ring-benchmark-raw')).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
const mpiMode = process.argv.indexOf('--mpi-benchmark-rank');
if (mpiMode !== -1) runMpiRank(process.argv[mpiMode + 1]);
