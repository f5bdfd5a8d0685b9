/**
 * `npm run bench:scaling`: data-parallel throughput on this machine's cores
 * for 1..N workers (N = cores), per model and per-device batch: images/s,
 * speed-up and efficiency against linear, and rank 0's time per step split
 * into compute, waiting for the slowest worker, and the all-reduce time the
 * training thread waited for (exposed), next to the communication thread's
 * busy time on the gradient buckets and the part of it hidden under the
 * backward pass.
 *
 *   node dist/bench/scaling.js [--models cnn:64,cnn:32,wideresnet-dw:32]
 *     [--max-workers N] [--steps 30] [--bucket-cap-mb MB] [--no-overlap] [--pytorch] [--json]
 *     [--dist-backend ring|mpi|both]
 *
 * --dist-backend picks what carries the collectives: the project's ring (the default, through
 * the built-in launcher), Open MPI (each run under `mpirun -np N ... --dist-backend mpi`, rank 0's
 * figures read from its run record), or both, each multi-worker case once per backend.
 *
 * With --pytorch, each multi-worker run is followed by PyTorch DDP on the same model, batch, bucket
 * size and number of workers (bench/pytorch_ddp.py: gloo over loopback, one thread per rank), and by
 * as many independent one-process PyTorch jobs at once, so that both engines' DDP/independent
 * ratios come from the same run of the same machine.
 *
 * Each run trains two epochs of `steps` steps through lib's train() and keeps
 * the second (the first warms up the engines). Runs go one after another.
 * Beside each data-parallel run, N independent one-worker runs at the same
 * time measure what the machine itself can do in parallel (on a VM whose
 * cores share a physical core, two busy processes get far less than twice
 * the speed of one): DDP/independent isolates the cost of the all-reduce and
 * of waiting for each other.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG, MODEL_NAMES, type ModelName } from '../lib/train/config';
import { train } from '../lib/launch/train';
import type { EpochMetrics } from '../lib/train/metrics';

interface Case {
  model: ModelName;
  batch: number;
}

interface Row extends Case {
  workers: number;
  /** What carried the collectives ('none' for one worker). */
  backend: Backend | 'none';
  imagesPerSec: number;
  speedUp: number;
  efficiency: number;
  /** Images/s of N independent one-worker runs at the same time: what the machine can do in parallel. */
  independentImagesPerSec: number;
  /** Against those independent runs: the cost of data parallelism itself. */
  efficiencyVsIndependent: number;
  computeMs: number;
  waitMs: number;
  /** The exposed communication. */
  allReduceMs: number;
  communicationMs: number;
  hiddenMs: number;
}

interface Reduction {
  bucketCapMb: number;
  overlap: boolean;
}

function parseCases(text: string): Case[] {
  return text.split(',').map((item) => {
    const [model, batch] = item.split(':');
    if (!(MODEL_NAMES as readonly string[]).includes(model) || !(Number(batch) > 0)) {
      throw new Error(`--models takes model:batch pairs, e.g. cnn:64 (got '${item}')`);
    }
    return { model: model as ModelName, batch: Number(batch) };
  });
}

async function measure(c: Case, workers: number, steps: number, reduction: Reduction): Promise<EpochMetrics> {
  const result = await train({
    ...DEFAULT_CONFIG,
    ...reduction,
    model: c.model, batchSize: c.batch, numGpus: workers, epochs: 2,
    trainSubset: steps * workers * c.batch, valSubset: 100, targetAccuracy: 1.01,
    progress: false,
    runsDir: path.join(os.tmpdir(), 'fashion-mnist-bench-runs'),
  });
  return result.epochs[result.epochs.length - 1];
}

const CLI = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');

type Backend = 'ring' | 'mpi';

/** The same run as measure(), its collectives through Open MPI: mpirun starts the ranks, rank 0's run record gives the figures. */
function measureMpi(c: Case, workers: number, steps: number, reduction: Reduction): Promise<EpochMetrics> {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fashion-mnist-bench-mpi-'));
  const args = ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', '-np', String(workers), process.execPath, CLI,
    '--dist-backend', 'mpi', '--model', c.model, '--batch-size', String(c.batch), '--epochs', '2', '--train-subset', String(steps * workers * c.batch),
    '--val-subset', '100', '--target-accuracy', '1', '--no-progress', '--bucket-cap-mb', String(reduction.bucketCapMb),
    ...(reduction.overlap ? [] : ['--no-overlap']), '--runs-dir', runsDir];
  return new Promise((resolve, reject) => {
    const child = spawn('mpirun', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', (e) => reject(new Error(`mpirun could not start (${e.message}): install Open MPI (Debian: openmpi-bin) for --dist-backend mpi`)));
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`mpirun -np ${workers} exited with code ${code}:\n${out}`);
        const runs = fs.readdirSync(runsDir).map((d) => path.join(runsDir, d, 'metrics.jsonl')).filter((f) => fs.existsSync(f));
        if (runs.length !== 1) throw new Error(`expected one run record in ${runsDir}, found ${runs.length}:\n${out}`);
        const lines = fs.readFileSync(runs[0], 'utf8').trim().split('\n');
        resolve(JSON.parse(lines[lines.length - 1]) as EpochMetrics);
      } catch (e) {
        reject(e);
      } finally {
        fs.rmSync(runsDir, { recursive: true, force: true });
      }
    });
  });
}

/** Images/s of one single-worker command run, from its last epoch line. */
function independentRun(c: Case, steps: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--model', c.model, '--batch-size', String(c.batch), '--epochs', '2',
      '--train-subset', String(steps * c.batch), '--val-subset', '100', '--target-accuracy', '1', '--no-progress',
      '--runs-dir', path.join(os.tmpdir(), 'fashion-mnist-bench-runs')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => {
      const rates = [...out.matchAll(/Images\/sec = ([\d.]+)/g)].map((m) => Number(m[1]));
      if (code !== 0 || rates.length === 0) reject(new Error(`independent run failed (exit ${code}):\n${out}`));
      else resolve(rates[rates.length - 1]);
    });
  });
}

/** N single-worker runs at once: the machine's real parallel capacity (shared cores, memory, turbo). */
async function independentCapacity(c: Case, workers: number, steps: number): Promise<number> {
  const rates = await Promise.all(Array.from({ length: workers }, () => independentRun(c, steps)));
  return rates.reduce((a, b) => a + b, 0);
}

const fmt = (n: number, digits = 1) => n.toFixed(digits).padStart(8);

const PYTORCH_DDP = path.resolve(__dirname, '..', '..', 'bench', 'pytorch_ddp.py');
const PYTHON = '/usr/bin/python3';

interface PytorchDdp {
  imagesPerSec: number;
  stepMs: number;
  noSyncStepMs: number;
}

/** One job of bench/pytorch_ddp.py: `workers` ranks on 127.0.0.1; rank 0's JSON line. */
async function pytorchJob(c: Case, workers: number, steps: number, capMb: number, port: number): Promise<PytorchDdp> {
  const ranks = Array.from({ length: workers }, (_, rank) => new Promise<string>((resolve, reject) => {
    const child = spawn(PYTHON, [PYTORCH_DDP, '--model', c.model, '--batch', String(c.batch), '--steps', String(steps),
      '--bucket-cap-mb', String(capMb), '--rank', String(rank), '--world-size', String(workers), '--master-port', String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`bench/pytorch_ddp.py rank ${rank} exited with code ${code}`))));
  }));
  const outputs = await Promise.all(ranks);
  return JSON.parse(outputs[0].trim().split('\n').pop() as string) as PytorchDdp;
}

/** PyTorch DDP with `workers` ranks, then as many independent one-process jobs at once. */
async function pytorchRow(c: Case, workers: number, steps: number, capMb: number): Promise<{ ddp: PytorchDdp; independent: number }> {
  const ddp = await pytorchJob(c, workers, steps, capMb, 29650);
  const alone = await Promise.all(Array.from({ length: workers }, (_, i) => pytorchJob(c, 1, steps, capMb, 29660 + i)));
  return { ddp, independent: alone.reduce((sum, r) => sum + r.imagesPerSec, 0) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: 'string', default: 'cnn:64,cnn:32,wideresnet-dw:32' },
      'max-workers': { type: 'string', default: String(os.availableParallelism()) },
      steps: { type: 'string', default: '30' },
      'bucket-cap-mb': { type: 'string', default: String(DEFAULT_CONFIG.bucketCapMb) },
      'no-overlap': { type: 'boolean', default: false },
      pytorch: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'dist-backend': { type: 'string', default: 'ring' },
    },
  });
  const backendChoice = values['dist-backend'] as string;
  if (!['ring', 'mpi', 'both'].includes(backendChoice)) throw new Error(`--dist-backend takes ring, mpi or both (got '${backendChoice}')`);
  const backends: Backend[] = backendChoice === 'both' ? ['ring', 'mpi'] : [backendChoice as Backend];
  const reduction: Reduction = { bucketCapMb: Number(values['bucket-cap-mb']), overlap: !values['no-overlap'] };
  if (!(reduction.bucketCapMb >= 0)) throw new Error(`--bucket-cap-mb must be a non-negative number (got '${values['bucket-cap-mb']}')`);
  const cases = parseCases(values.models as string);
  const maxWorkers = Number(values['max-workers']);
  const steps = Number(values.steps);
  const workerCounts = [1, 2, 4, 8, 16, 32, 64].filter((n) => n < maxWorkers).concat([maxWorkers]).filter((n, i, a) => a.indexOf(n) === i);
  if (!values.json) {
    console.log(`Data-parallel scaling on ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), wasm engine, one core per worker; ` +
      `gradient buckets of ${reduction.bucketCapMb === 0 ? 'everything (one bucket)' : `at most ${reduction.bucketCapMb} MB`}, ${reduction.overlap ? 'all-reduced during the backward pass' : 'all-reduced after the backward pass'}`);
    console.log('model          backend batch workers images/s speed-up efficiency | independent images/s  DDP/independent | per step (ms): compute    wait exposed | comm.  hidden');
  }
  for (const c of cases) {
    let base = 0;
    for (const workers of workerCounts) {
      let independent: number | null = null;
      for (const backend of workers === 1 ? (['ring'] as Backend[]) : backends) {
        const m = backend === 'mpi' ? await measureMpi(c, workers, steps, reduction) : await measure(c, workers, steps, reduction);
        const stepsRun = m.imagesPerSec * m.epochTime / (workers * c.batch);
        if (workers === 1) base = m.imagesPerSec;
        independent ??= workers === 1 ? m.imagesPerSec : await independentCapacity(c, workers, steps);
        const row: Row = {
          ...c, workers, backend: workers === 1 ? 'none' : backend, imagesPerSec: m.imagesPerSec, speedUp: m.imagesPerSec / base, efficiency: m.imagesPerSec / (base * workers),
          independentImagesPerSec: independent, efficiencyVsIndependent: m.imagesPerSec / independent,
          computeMs: (m.computeSeconds / stepsRun) * 1000, waitMs: (m.waitSeconds / stepsRun) * 1000, allReduceMs: (m.allReduceSeconds / stepsRun) * 1000,
          communicationMs: (m.communicationSeconds / stepsRun) * 1000, hiddenMs: (m.hiddenSeconds / stepsRun) * 1000,
        };
        if (values.json) {
          console.log(JSON.stringify(row));
        } else {
          console.log(`${c.model.padEnd(14)} ${row.backend.padEnd(7)} ${String(c.batch).padStart(5)} ${String(workers).padStart(7)} ${fmt(row.imagesPerSec)} ${fmt(row.speedUp, 2)} ${fmt(row.efficiency, 2)}   | ${fmt(row.independentImagesPerSec).padStart(20)} ${fmt(row.efficiencyVsIndependent, 2).padStart(16)} |              ${fmt(row.computeMs)} ${fmt(row.waitMs)} ${fmt(row.allReduceMs)} | ${fmt(row.communicationMs)} ${fmt(row.hiddenMs)}`);
        }
      }
      if (values.pytorch && workers > 1) {
        const { ddp, independent } = await pytorchRow(c, workers, steps, reduction.bucketCapMb);
        const line = { engine: 'pytorch-ddp', ...c, workers, imagesPerSec: ddp.imagesPerSec, independentImagesPerSec: independent,
          efficiencyVsIndependent: ddp.imagesPerSec / independent, stepMs: ddp.stepMs, noSyncStepMs: ddp.noSyncStepMs };
        if (values.json) console.log(JSON.stringify(line));
        else console.log(`${'  PyTorch DDP'.padEnd(14)} ${'gloo'.padEnd(7)} ${String(c.batch).padStart(5)} ${String(workers).padStart(7)} ${fmt(ddp.imagesPerSec)}                     | ${fmt(independent).padStart(20)} ${fmt(line.efficiencyVsIndependent, 2).padStart(16)} |   step ${fmt(ddp.stepMs)}, no_sync ${fmt(ddp.noSyncStepMs)}: exposed + wait ${fmt(ddp.stepMs - ddp.noSyncStepMs)}`);
      }
    }
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
