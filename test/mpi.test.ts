import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { readSavedWeights } from '../lib/train/save';
import { processesOf, runToEnd } from './support/processes';
import { maxDifference, type Weights } from './support/weights';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-mpi-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const hasMpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = hasMpirun ? false : 'mpirun is not installed (Debian: openmpi-bin; ./setup.sh installs it)';
// 16 steps of 2 x 32 images.
const CNN = ['--model', 'cnn', '--train-subset', '1024', '--val-subset', '200', '--batch-size', '32', '--epochs', '1', '--base-lr', '0.05',
  '--momentum', '0.9', '--no-progress', '--bucket-cap-mb', '0.3'];

function mpirun(args: string[], env: Record<string, string> = {}) {
  const exported = Object.keys(env).flatMap((name) => ['-x', name]);
  return runToEnd('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', ...exported, process.execPath, CLI, ...args], {
    cwd: tmp, env: { ...process.env, ...env },
  });
}

async function ring(args: string[], name: string): Promise<Weights> {
  const save = path.join(tmp, name);
  const run = await runToEnd(process.execPath, [CLI, ...args, '--num-gpus', '2', '--runs-dir', path.join(tmp, 'runs'), '--save', save], { cwd: tmp });
  assert.equal(run.code, 0, run.out);
  return readSavedWeights(save);
}

describe('--dist-backend mpi under mpirun', { skip }, () => {
  it('trains the cnn to the weights of the built-in ring (within 1e-5 after 16 steps), its buckets overlapping the backward pass', async () => {
    const expected = await ring(CNN, 'ring-cnn');
    const save = path.join(tmp, 'mpi-cnn');
    const run = await mpirun([...CNN, '--dist-backend', 'mpi', '--runs-dir', path.join(tmp, 'runs'), '--save', save]);
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /Collectives: Open MPI v[\d.]+.*MPI_Iallreduce on the communication thread \(local rank 0 of 2\)/);
    assert.match(run.out, /gradients in \d+ buckets .* each all-reduced as soon as the backward pass has filled it/);
    assert.equal(run.out.split('\n').filter((l) => l.startsWith('Epoch =')).length, 1, 'rank 0 alone prints the epoch line');
    assert.ok(maxDifference(expected, readSavedWeights(save)) <= 1e-5);
  });

  it('SyncBatchNorm on wideresnet-dw: the same weights as the ring', async () => {
    const wrn = ['--model', 'wideresnet-dw', '--train-subset', '128', '--val-subset', '64', '--batch-size', '16', '--epochs', '1', '--sync-bn',
      '--no-progress', '--base-lr', '0.05'];
    const expected = await ring(wrn, 'ring-wrn');
    const save = path.join(tmp, 'mpi-wrn');
    const run = await mpirun([...wrn, '--dist-backend', 'mpi', '--runs-dir', path.join(tmp, 'runs'), '--save', save]);
    assert.equal(run.code, 0, run.out);
    assert.ok(maxDifference(expected, readSavedWeights(save)) <= 1e-5);
  });

  it('a rank that fails stops the job, the rank named, and leaves no process', async () => {
    const runsDir = path.join(tmp, 'failing');
    const run = await mpirun([...CNN, '--dist-backend', 'mpi', '--runs-dir', runsDir], { FASHION_MNIST_FAULT: '1:3:throw' });
    assert.notEqual(run.code, 0);
    assert.match(run.out, /rank 1: injected failure at step 3/);
    assert.deepEqual(processesOf(runsDir), []);
  });

  it('the built-in launcher refuses it, with the mpirun command', async () => {
    const run = await runToEnd(process.execPath, [CLI, ...CNN, '--dist-backend', 'mpi', '--num-gpus', '2', '--runs-dir', path.join(tmp, 'runs')], { cwd: tmp });
    assert.equal(run.code, 1);
    assert.match(run.out, /--dist-backend mpi: mpirun starts the ranks, not this launcher; run mpirun -np 2 npx fashion-mnist --dist-backend mpi/);
    assert.doesNotMatch(run.out, /Engine:/);
  });
});

const hasGcc = spawnSync('gcc', ['--version']).status === 0;

describe('bench:allreduce --compare, the binding against C', { skip: skip || (hasGcc ? false : 'gcc is not installed (it builds the C reference)') }, () => {
  it('one mpirun job times the same MPI_Allreduce in C and through koffi, alternating, and gives their paired ratio', () => {
    const library = path.join(tmp, 'mpi_allreduce_timed.so');
    const built = spawnSync('gcc', ['-O2', '-shared', '-fPIC', '-o', library, path.join(ROOT, 'bench', 'reference', 'mpi_allreduce_timed.c'), '/usr/lib/x86_64-linux-gnu/libmpi.so.40'], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    const sizes = [{ name: '1', floats: 1 }, { name: '65536', floats: 65_536 }];
    const run = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', '-x', 'FASHION_MNIST_RING_BENCH', '-x', 'FASHION_MNIST_MPI_TIMED_LIBRARY',
      process.execPath, path.join(ROOT, 'dist', 'lib', 'launch', 'ring-benchmark.js'), '--mpi-benchmark-rank', 'paired'], {
      encoding: 'utf8', timeout: 120_000,
      env: { ...process.env, FASHION_MNIST_RING_BENCH: JSON.stringify({ sizes, repeats: 6 }), FASHION_MNIST_MPI_TIMED_LIBRARY: library },
    });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
    assert.equal(lines.length, 1, `rank 0 alone prints its result: ${run.stdout}`);
    const result = JSON.parse(lines[0]) as { c: number[]; koffi: number[]; ratio: number[] };
    for (const key of ['c', 'koffi', 'ratio'] as const) {
      assert.equal(result[key].length, sizes.length, key);
      for (const v of result[key]) assert.ok(Number.isFinite(v) && v > 0, `${key}: ${result[key].join(', ')}`);
    }
  });

  it('without the C reference it says what is missing', () => {
    const run = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', process.execPath, path.join(ROOT, 'dist', 'lib', 'launch', 'ring-benchmark.js'), '--mpi-benchmark-rank', 'paired'], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, FASHION_MNIST_RING_BENCH: JSON.stringify({ sizes: [{ name: '1', floats: 1 }], repeats: 2 }) },
    });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /needs FASHION_MNIST_MPI_TIMED_LIBRARY/);
  });
});

describe('--dist-backend mpi without MPI', () => {
  it('says what to install, before anything trains', async () => {
    const run = await runToEnd(process.execPath, [CLI, ...CNN, '--dist-backend', 'mpi', '--runs-dir', path.join(tmp, 'runs')], {
      cwd: tmp, env: { ...process.env, FASHION_MNIST_MPI_LIBRARY: 'libmpi-not-here.so', RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1' },
    });
    assert.equal(run.code, 1, run.out);
    assert.match(run.out, /cannot load libmpi-not-here\.so .*install Open MPI .*mpirun -np 2 npx fashion-mnist --dist-backend mpi/);
    assert.doesNotMatch(run.out, /Engine:/);
  });
});
