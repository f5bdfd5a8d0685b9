/**
 * `npm run bench:allreduce`: the ring all-reduce alone, between worker
 * processes on this machine, for the gradient sizes of the three models:
 * milliseconds per all-reduce and the bus bandwidth 2 (N-1)/N x bytes / time,
 * and the latency and bandwidth of the cost model
 * 2 (N-1) x latency + 2 (N-1)/N x bytes / bandwidth fitted to them.
 *
 *   node dist/bench/allreduce.js [--workers 2] [--repeats 20]
 *
 * With --compare, side by side for 4 bytes to 68 MB between 2 processes on this machine: the
 * ring over shared memory and over loopback TCP, Open MPI's MPI_Allreduce called from C, through
 * the koffi binding, and through --dist-backend mpi's communication thread, and PyTorch's
 * torch.distributed with gloo (Debian's torch has no MPI backend). Then the ratios the targets
 * name: the ring against the fastest, the binding against C.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../lib/launch/launch';
import { fitRingCostModel, measureAllReduce, type RingSize } from '../lib/launch/ring-benchmark';
import { MODELS } from '../lib/models';

const ROOT = path.resolve(__dirname, '..', '..');
const MPIRUN = ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', '-np', '2'];
const COMPARE_FLOATS = [1, 256, 16_384, 262_144, 1_048_576, 4_194_304, 17_000_000];

/** Medians (ms) per size from one rank-0 JSON line of an mpirun job; null when it could not run. */
function mpiJob(command: string[], env: NodeJS.ProcessEnv = {}): number[] | null {
  const run = spawnSync('mpirun', [...MPIRUN, ...command], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 });
  if (run.status !== 0) {
    console.log(`  (${command[0]} under mpirun failed: ${(run.stderr || run.stdout).trim().split('\n').slice(-2).join(' | ')})`);
    return null;
  }
  return JSON.parse(run.stdout.trim().split('\n').filter((l) => l.startsWith('[') || l.startsWith('{')).at(-1) ?? 'null') as number[] | null;
}

async function compare(repeats: number): Promise<void> {
  const sizes: RingSize[] = COMPARE_FLOATS.map((floats) => ({ name: String(floats), floats }));
  const plan = { FASHION_MNIST_RING_BENCH: JSON.stringify({ sizes, repeats }) };
  const columns: { name: string; ms: (number | null)[] }[] = [];
  columns.push({ name: 'ring, shm', ms: (await measureAllReduce(2, sizes, repeats)).map((t) => t.ms) });
  columns.push({ name: 'ring, TCP', ms: (await measureAllReduce(2, sizes, repeats, { env: { FASHION_MNIST_RING_TRANSPORT: 'tcp' } })).map((t) => t.ms) });
  const entry = path.join(ROOT, 'dist', 'lib', 'launch', 'ring-benchmark.js');
  let c: number[] | null = null;
  if (spawnSync('mpirun', ['--version']).status === 0) {
    const binary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-mpi-c-')), 'mpi_allreduce');
    try {
      execFileSync('gcc', ['-O2', '-o', binary, path.join(ROOT, 'bench', 'reference', 'mpi_allreduce.c'), '/usr/lib/x86_64-linux-gnu/libmpi.so.40']);
      const out = spawnSync('mpirun', [...MPIRUN, binary, String(repeats), ...COMPARE_FLOATS.map(String)], { encoding: 'utf8' });
      const medians = JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
      c = COMPARE_FLOATS.map((f) => medians[String(f)]);
    } catch (e) {
      console.log(`  (the C baseline could not be built or run: ${(e as Error).message.split('\n')[0]})`);
    }
    columns.push({ name: 'MPI from C', ms: c ?? COMPARE_FLOATS.map(() => null) });
    columns.push({ name: 'MPI, binding', ms: mpiJob([process.execPath, entry, '--mpi-benchmark-rank', 'binding'], plan) ?? COMPARE_FLOATS.map(() => null) });
    columns.push({ name: 'MPI, comm thread', ms: mpiJob([process.execPath, entry, '--mpi-benchmark-rank', 'communicator'], plan) ?? COMPARE_FLOATS.map(() => null) });
  } else {
    console.log('  (no mpirun: the MPI columns are left out; Debian: openmpi-bin)');
  }
  const python = fs.existsSync(path.join(ROOT, '.venv', 'bin', 'python')) ? path.join(ROOT, '.venv', 'bin', 'python') : 'python3';
  const torch = spawnSync(python, [path.join(ROOT, 'bench', 'reference', 'torch_allreduce.py'), '--port', String(await freePort()),
    '--sizes', COMPARE_FLOATS.join(','), '--repeats', String(repeats)], { encoding: 'utf8', timeout: 600_000 });
  if (torch.status === 0) {
    const line = JSON.parse(torch.stdout.trim().split('\n').at(-1) ?? '{}') as { torch: string; ms: Record<string, number> };
    columns.push({ name: `torch ${line.torch} gloo`, ms: COMPARE_FLOATS.map((f) => line.ms[String(f)]) });
  } else {
    console.log(`  (PyTorch could not run: ${torch.stderr.trim().split('\n').at(-1)})`);
  }
  const cell = (v: number | null | undefined) => (v == null ? '-' : v < 1 ? v.toFixed(3) : v.toFixed(2)).padStart(21);
  console.log(`\nAll-reduce of float32 sums between 2 processes on this machine (${os.cpus()[0]?.model ?? 'CPU'}, ${os.cpus().length} cores), ` +
    `median ms of ${repeats} (${Math.max(3, Math.floor(repeats / 4))} at 68 MB), ${new Date().toISOString()}`);
  console.log(`${'bytes'.padStart(10)}${columns.map((col) => col.name.padStart(21)).join('')}   ring/fastest  binding/C`);
  COMPARE_FLOATS.forEach((floats, i) => {
    const values = columns.map((col) => col.ms[i]);
    const known = values.filter((v): v is number => v != null);
    const ring = columns[0].ms[i];
    const binding = columns.find((col) => col.name === 'MPI, binding')?.ms[i];
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null ? '-' : (a / b).toFixed(2));
    console.log(`${String(floats * 4).padStart(10)}${values.map(cell).join('')}   ${ratio(ring, Math.min(...known)).padStart(12)}  ${ratio(binding, c?.[i]).padStart(9)}`);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    workers: { type: 'string', default: '2' }, repeats: { type: 'string', default: '20' }, compare: { type: 'boolean', default: false },
  } });
  const workers = Number(values.workers);
  const repeats = Number(values.repeats);
  if (values.compare) {
    await compare(repeats);
    return;
  }
  const sizes = [{ name: '(4 bytes)', floats: 1 }, ...Object.values(MODELS).map((m) => ({ name: m.name, floats: m.parameters + 1 }))];
  const timings = await measureAllReduce(workers, sizes, repeats);
  console.log(`Ring all-reduce between ${workers} processes on this machine (${os.cpus()[0]?.model ?? 'CPU'}), median of ${repeats}`);
  console.log('gradients of        MB        ms   bus GB/s');
  for (const t of timings) {
    const mb = (t.floats * 4) / 1e6;
    const bus = (((2 * (workers - 1)) / workers) * mb) / 1000 / (t.ms / 1000);
    console.log(`${t.name.padEnd(14)} ${mb.toFixed(2).padStart(8)} ${t.ms.toFixed(3).padStart(9)} ${bus.toFixed(2).padStart(10)}`);
  }
  const model = fitRingCostModel(timings);
  console.log(`cost model fit: latency ${(model.latencyMs * 1000).toFixed(0)} us per message, bandwidth ${(model.bytesPerMs / 1e6).toFixed(2)} GB/s per link`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
