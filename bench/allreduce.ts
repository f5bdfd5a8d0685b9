/**
 * `npm run bench:allreduce`: the ring all-reduce alone (on its thread, each process bound to a
 * core, the buffers in shared memory as the gradient buckets are), between worker
 * processes on this machine, for the gradient sizes of the three models:
 * milliseconds per all-reduce and the bus bandwidth 2 (N-1)/N x bytes / time,
 * and the latency and bandwidth of the cost model
 * 2 (N-1) x latency + 2 (N-1)/N x bytes / bandwidth fitted to them.
 *
 *   node dist/bench/allreduce.js [--workers 2] [--repeats 20]
 *   node dist/bench/allreduce.js --compare [--tables shm,tcp] [--rounds 3] [--repeats 20]
 *
 * With --compare, side by side for 4 bytes to 68 MB between 2 processes on this machine, each
 * bound to a core. Shared memory: the ring alone on its thread, through the communication thread,
 * and through its file fallback; Open MPI's MPI_Allreduce timed in C and through the koffi binding
 * (in one process, alternating on one buffer), and through --dist-backend mpi's communication thread. TCP: the ring, PyTorch's
 * torch.distributed with gloo (Debian's torch has no MPI backend) and Open MPI's tcp transport
 * over loopback; the ring and gloo between two network namespaces joined by a veth pair (needs
 * root: scripts/two-nodes.sh). Then the ratios the targets name: the ring against the fastest,
 * the binding against C. Every column runs in each of --rounds rounds and keeps its best.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../lib/launch/launch';
import { fitRingCostModel, type MeasureOptions, measureAllReduce, type PairedTimings, type RingSize } from '../lib/launch/ring-benchmark';
import { MODELS } from '../lib/models';

const ROOT = path.resolve(__dirname, '..', '..');
/** mpirun for 2 ranks, each bound to a core (Open MPI's default for 2 ranks, said here so it shows). */
const MPIRUN = ['--allow-run-as-root', '--bind-to', 'core', '-np', '2'];
/** Open MPI restricted to its TCP transport, over loopback. */
const MPI_TCP = ['--mca', 'pml', 'ob1', '--mca', 'btl', 'tcp,self', '--mca', 'btl_tcp_if_include', 'lo'];
const COMPARE_FLOATS = [1, 256, 16_384, 262_144, 1_048_576, 4_194_304, 17_000_000];
const NODES = path.join(ROOT, 'scripts', 'two-nodes.sh');
/** The two network namespaces of the TCP comparison: NAME-a holds rank 0 at 10.77.9.1, NAME-b rank 1. */
const NETNS = { name: 'fmnist-tcp', subnet: 9, rank0: '10.77.9.1' };

interface Column {
  name: string;
  /** What it is, for the legend under the table. */
  about: string;
  ms: (number | null)[];
  /** The binding's column: per size, the median of koffi / C over call pairs in one process. */
  pairedRatio?: (number | null)[];
}

const none = () => COMPARE_FLOATS.map(() => null);

/** Rank 0's last JSON line of an mpirun job; null when it could not run. */
function mpiJob<T>(command: string[], env: NodeJS.ProcessEnv = {}, mca: string[] = []): T | null {
  const run = spawnSync('mpirun', [...MPIRUN, ...mca, ...command], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 });
  if (run.status !== 0) {
    console.log(`  (${path.basename(command.at(-2) ?? command[0])} under mpirun failed: ${(run.stderr || run.stdout).trim().split('\n').slice(-2).join(' | ')})`);
    return null;
  }
  const line = run.stdout.trim().split('\n').filter((l) => l.startsWith('[') || l.startsWith('{')).at(-1) ?? 'null';
  return JSON.parse(line) as T | null;
}

/** MPI_Allreduce timed from C inside the benchmark rank, built with gcc against Debian's libmpi.so.40; null when it cannot be built. */
function buildTimedC(): string | null {
  const library = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-mpi-c-')), 'mpi_allreduce_timed.so');
  try {
    execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', library, path.join(ROOT, 'bench', 'reference', 'mpi_allreduce_timed.c'), '/usr/lib/x86_64-linux-gnu/libmpi.so.40']);
    return library;
  } catch (e) {
    console.log(`  (the C reference could not be built: ${(e as Error).message.split('\n')[0]}; the MPI C and koffi columns are left out)`);
    return null;
  }
}

const python = () => (fs.existsSync(path.join(ROOT, '.venv', 'bin', 'python')) ? path.join(ROOT, '.venv', 'bin', 'python') : 'python3');

/** PyTorch's all_reduce with gloo: one process per rank, each bound to its core, under `prefix(rank)`; null when it cannot run. */
async function glooJob(repeats: number, masterAddr = '127.0.0.1', prefix: (rank: number) => string[] = () => [], env: (rank: number) => NodeJS.ProcessEnv = () => ({})): Promise<{ torch: string; ms: number[] } | null> {
  const port = String(await freePort());
  const runs = await Promise.all([0, 1].map((rank) => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const command = [...prefix(rank), 'taskset', '-c', String(rank % os.cpus().length), python(), path.join(ROOT, 'bench', 'reference', 'torch_allreduce.py'),
      '--rank', String(rank), '--world-size', '2', '--master-addr', masterAddr, '--port', port, '--sizes', COMPARE_FLOATS.join(','), '--repeats', String(repeats)];
    const child = spawn(command[0], command.slice(1), { env: { ...process.env, ...env(rank) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => resolve({ code, out, err }));
  })));
  if (runs.some((r) => r.code !== 0)) {
    console.log(`  (PyTorch's gloo could not run: ${runs.map((r) => r.err.trim().split('\n').at(-1)).join(' | ')})`);
    return null;
  }
  const line = JSON.parse(runs[0].out.trim().split('\n').at(-1) ?? '{}') as { torch: string; ms: Record<string, number> };
  return { torch: line.torch, ms: COMPARE_FLOATS.map((f) => line.ms[String(f)]) };
}

/** Runs `body` with the two namespaces up (root and iproute2), or returns null saying why not. */
async function withNamespaces<T>(body: () => Promise<T>): Promise<T | null> {
  const check = spawnSync(NODES, ['check'], { encoding: 'utf8' });
  if (check.status !== 0) {
    console.log(`  (no network namespaces: ${check.stdout.trim()}; the veth columns are left out)`);
    return null;
  }
  execFileSync(NODES, ['up', NETNS.name, 'none', String(NETNS.subnet)]);
  try {
    return await body();
  } finally {
    spawnSync(NODES, ['down', NETNS.name]);
  }
}

const cell = (v: number | null | undefined) => (v == null ? '-' : v < 1 ? v.toFixed(3) : v.toFixed(2));
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || !(b > 0) ? '-' : (a / b).toFixed(2));

/** One table: a row per size, a column per run, then the ratios (each a name and a function of the row). */
function printTable(title: string, columns: Column[], ratios: [string, (row: (number | null)[], size: number) => string][]): void {
  const width = Math.max(12, ...columns.map((c) => c.name.length + 2), ...ratios.map(([name]) => name.length + 2));
  console.log(`\n${title}`);
  console.log(`${'bytes'.padStart(10)}${columns.map((c) => c.name.padStart(width)).join('')}${ratios.map(([name]) => name.padStart(width)).join('')}`);
  COMPARE_FLOATS.forEach((floats, i) => {
    const row = columns.map((c) => c.ms[i]);
    console.log(`${String(floats * 4).padStart(10)}${row.map((v) => cell(v).padStart(width)).join('')}${ratios.map(([, f]) => f(row, i).padStart(width)).join('')}`);
  });
  for (const c of columns) console.log(`  ${c.name}: ${c.about}`);
}

/** The median of the known values (the lower middle of an even count). */
const middle = (values: (number | null)[]) => {
  const known = values.filter((v): v is number => v != null).sort((a, b) => a - b);
  return known.length > 0 ? known[Math.floor((known.length - 1) / 2)] : null;
};

const fastest = (values: (number | null)[]) => {
  const known = values.filter((v): v is number => v != null);
  return known.length > 0 ? Math.min(...known) : null;
};

async function compare(repeats: number, rounds: number, tables: string[]): Promise<void> {
  const sizes: RingSize[] = COMPARE_FLOATS.map((floats) => ({ name: String(floats), floats }));
  const plan = { FASHION_MNIST_RING_BENCH: JSON.stringify({ sizes, repeats }) };
  const ms = async (options: MeasureOptions) => (await measureAllReduce(2, sizes, repeats, { pin: true, ...options })).map((t) => t.ms);
  const entry = path.join(ROOT, 'dist', 'lib', 'launch', 'ring-benchmark.js');
  const hasMpi = spawnSync('mpirun', ['--version']).status === 0;
  if (!hasMpi) console.log('  (no mpirun: the MPI columns are left out; Debian: openmpi-bin)');
  const c = hasMpi ? buildTimedC() : null;
  const paired = (mca: string[] = []) => (c ? mpiJob<PairedTimings>([process.execPath, entry, '--mpi-benchmark-rank', 'paired'], { ...plan, FASHION_MNIST_MPI_TIMED_LIBRARY: c }, mca) : null);
  const stamp = `${os.cpus()[0]?.model ?? 'CPU'}, ${os.cpus().length} cores, ${new Date().toISOString()}`;

  // Columns 0-3 are the ring's, 4-6 Open MPI's.
  const shmColumns = async (): Promise<Column[]> => {
    const cAndKoffi = paired();
    return [
    { name: 'ring', about: 'the project\'s ring alone on its thread, through mapped shared memory (the default on one machine), reading the buffers in place', ms: await ms({ raw: true }) },
    { name: 'ring, copied', about: 'the same with each message copied into the channel first (buffers that are not shared buffers)', ms: await ms({ raw: true, copied: true }) },
    { name: 'ring, comm', about: 'the same through the communication thread, as training\'s blocking collectives call it (a thread hop, a copy in and out)', ms: await ms({}) },
    { name: 'ring, file', about: 'the ring through a file in /dev/shm read and written with system calls (the fallback without koffi)', ms: await ms({ raw: true, env: { FASHION_MNIST_RING_TRANSPORT: 'file' } }) },
    { name: 'MPI C', about: 'Open MPI\'s MPI_Allreduce (its default transports: shared memory) timed in C, in the process of the next column, the two calls alternating on one buffer', ms: cAndKoffi?.c ?? none() },
    { name: 'MPI koffi', about: 'the same call through the koffi binding, timed in JavaScript', ms: cAndKoffi?.koffi ?? none(), pairedRatio: cAndKoffi?.ratio ?? none() },
    { name: 'MPI comm', about: '--dist-backend mpi\'s communicator: the same through the communication thread', ms: hasMpi ? mpiJob<number[]>([process.execPath, entry, '--mpi-benchmark-rank', 'communicator'], plan) ?? none() : none() },
    ];
  };
  // Columns 0-2 over loopback (the ring, gloo, Open MPI), 3 the ring through Node's sockets, 4-5 over veth.
  const tcpColumns = async (): Promise<Column[]> => {
    const loopbackGloo = await glooJob(repeats);
    const columns: Column[] = [
      { name: 'ring, lo', about: 'the project\'s ring over loopback TCP (FASHION_MNIST_RING_TRANSPORT=tcp), alone on its thread, moving the bytes with its own system calls', ms: await ms({ raw: true, env: { FASHION_MNIST_RING_TRANSPORT: 'tcp' } }) },
      { name: `gloo, lo`, about: `PyTorch ${loopbackGloo?.torch ?? ''} torch.distributed with gloo (TCP only) over loopback`, ms: loopbackGloo?.ms ?? none() },
      { name: 'MPI C, tcp lo', about: 'Open MPI from C, restricted to its tcp transport over loopback (--mca pml ob1 --mca btl tcp,self)', ms: paired(MPI_TCP)?.c ?? none() },
      { name: 'ring, lo, Node', about: 'the same ring through Node\'s sockets and event loop (FASHION_MNIST_RING_TRANSPORT=tcp-node; the fallback without koffi)', ms: await ms({ raw: true, env: { FASHION_MNIST_RING_TRANSPORT: 'tcp-node' } }) },
    ];
    const veth = await withNamespaces(async () => {
      const prefix = (rank: number) => ['ip', 'netns', 'exec', `${NETNS.name}-${rank === 0 ? 'a' : 'b'}`];
      const ring = await ms({ raw: true, prefix, masterAddr: NETNS.rank0 });
      const gloo = await glooJob(repeats, NETNS.rank0, prefix, (rank) => ({ GLOO_SOCKET_IFNAME: `${NETNS.name}-v${rank === 0 ? 'a' : 'b'}` }));
      return { ring, gloo };
    });
    columns.push({ name: 'ring, veth', about: 'the ring between two network namespaces joined by a veth pair (a rank in each, TCP)', ms: veth?.ring ?? none() });
    columns.push({ name: 'gloo, veth', about: 'gloo between the same two namespaces', ms: veth?.gloo?.ms ?? none() });
    return columns;
  };

  // Every column runs once per round, the rounds one after another, so that a slow spell of this
  // VM falls on every column alike; each cell keeps its best round.
  const measured: { shm: Column[][]; tcp: Column[][] } = { shm: [], tcp: [] };
  for (let round = 0; round < rounds; round++) {
    if (tables.includes('shm')) measured.shm.push(await shmColumns());
    if (tables.includes('tcp')) measured.tcp.push(await tcpColumns());
  }
  const of = `the best of ${rounds} round${rounds === 1 ? '' : 's'}, each the median of ${repeats} (${Math.max(3, Math.floor(repeats / 4))} at 68 MB)`;
  if (tables.includes('shm')) {
    printTable(`All-reduce of float32 sums between 2 processes on this machine, shared memory: ms, ${of}, every rank bound to its core (${stamp})`, best(measured.shm), [
      ['ring/fastest', (row) => ratio(row[0], fastest(row.slice(4)))],
      ['koffi/C', (_, i) => middle(measured.shm.map((round) => round[5].pairedRatio?.[i] ?? null))?.toFixed(2) ?? '-'],
    ]);
    console.log(`  ring/fastest: the ring against the fastest Open MPI column; koffi/C: per round the median over the call pairs of koffi / C, then the median of the ${rounds} rounds`);
  }
  if (tables.includes('tcp')) {
    printTable(`The same over TCP, ${of}: loopback, and between two network namespaces (Open MPI cannot start a rank in another namespace; its tcp transport runs over loopback)`, best(measured.tcp), [
      ['ring/fastest lo', (row) => ratio(row[0], fastest(row.slice(1, 3)))],
      ['ring/gloo veth', (row) => ratio(row[4], row[5])],
    ]);
  }
}

/** Each cell's smallest value over the rounds (null where no round measured it). */
function best(rounds: Column[][]): Column[] {
  return rounds[0].map((column, c) => ({
    ...column,
    ms: column.ms.map((_, i) => fastest(rounds.map((r) => r[c].ms[i]))),
  }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    workers: { type: 'string', default: '2' }, repeats: { type: 'string', default: '20' }, compare: { type: 'boolean', default: false },
    tables: { type: 'string', default: 'shm,tcp' }, rounds: { type: 'string', default: '3' },
  } });
  const workers = Number(values.workers);
  const repeats = Number(values.repeats);
  if (values.compare) {
    const tables = values.tables.split(',');
    if (tables.some((t) => t !== 'shm' && t !== 'tcp')) throw new Error(`--tables takes shm, tcp or shm,tcp (got '${values.tables}')`);
    const rounds = Number(values.rounds);
    if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds takes a whole number of 1 or more (got '${values.rounds}')`);
    await compare(repeats, rounds, tables);
    return;
  }
  const sizes = [{ name: '(4 bytes)', floats: 1 }, ...Object.values(MODELS).map((m) => ({ name: m.name, floats: m.parameters + 1 }))];
  const timings = await measureAllReduce(workers, sizes, repeats, { raw: true, pin: true });
  console.log(`Ring all-reduce alone between ${workers} processes on this machine (${os.cpus()[0]?.model ?? 'CPU'}), rank r bound to core r mod ${os.cpus().length}, buffers shared as the gradient buckets are, median of ${repeats}`);
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
