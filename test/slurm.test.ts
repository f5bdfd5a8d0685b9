/**
 * Under SLURM's srun, on a cluster of one node that scripts/one-node-slurm.sh starts (root and
 * Debian's slurmd, slurmctld and libpmix-dev; skipped, with the reason, elsewhere): the ranks come
 * from SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID for the ring and from PMIx for Open MPI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSavedWeights } from '../lib/train/save';
import { processesOf, runToEnd } from './support/processes';
import { maxDifference } from './support/weights';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const SLURM = path.join(ROOT, 'scripts', 'one-node-slurm.sh');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-slurm-'));
const cluster = path.join(tmp, 'cluster');

const check = spawnSync(SLURM, ['check'], { encoding: 'utf8' });
const hasMpirun = spawnSync('mpirun', ['--version']).status === 0;
const skip = check.status === 0 ? false : `no one-node SLURM here: ${check.stdout.trim()}`;
// 16 steps of 2 x 32 images, as test/mpi.test.ts.
const CNN = ['--model', 'cnn', '--train-subset', '1024', '--val-subset', '200', '--batch-size', '32', '--epochs', '1', '--base-lr', '0.05',
  '--momentum', '0.9', '--no-progress', '--bucket-cap-mb', '0.3'];

function srun(srunArgs: string[], args: string[], env: Record<string, string> = {}) {
  return runToEnd('srun', [...srunArgs, '-n', '2', process.execPath, CLI, ...args], {
    cwd: tmp, env: { ...process.env, ...env, SLURM_CONF: path.join(cluster, 'slurm.conf') },
  });
}

describe('srun on a one-node SLURM cluster', { skip, timeout: 300_000 }, () => {
  let ring: Map<string, Float32Array>;

  before(async () => {
    const up = spawnSync(SLURM, ['up', cluster], { encoding: 'utf8' });
    assert.equal(up.status, 0, up.stderr);
    const save = path.join(tmp, 'launcher');
    const run = await runToEnd(process.execPath, [CLI, ...CNN, '--num-gpus', '2', '--runs-dir', path.join(tmp, 'runs'), '--save', save], { cwd: tmp });
    assert.equal(run.code, 0, run.out);
    ring = readSavedWeights(save);
  });

  after(() => {
    spawnSync(SLURM, ['down', cluster]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('srun -n 2 makes each task a rank of the ring: the weights of the built-in launcher, bit for bit', async () => {
    const save = path.join(tmp, 'srun-ring');
    const run = await srun([], [...CNN, '--runs-dir', path.join(tmp, 'runs'), '--save', save]);
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /Collectives: the project's ring \(2 ranks, mapped shared memory\)/);
    assert.equal(run.out.split('\n').filter((l) => l.startsWith('Epoch =')).length, 1, 'rank 0 alone prints the epoch line');
    assert.equal(maxDifference(ring, readSavedWeights(save)), 0);
  });

  it('srun --mpi=pmix -n 2 ... --dist-backend mpi: Open MPI gets its ranks from PMIx, the same weights within 1e-5', { skip: hasMpirun ? false : 'no Open MPI' }, async () => {
    const save = path.join(tmp, 'srun-mpi');
    const run = await srun(['--mpi=pmix'], [...CNN, '--dist-backend', 'mpi', '--runs-dir', path.join(tmp, 'runs'), '--save', save]);
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /Collectives: Open MPI v[\d.]+.*\(local rank 0 of 2\)/);
    assert.ok(maxDifference(ring, readSavedWeights(save)) <= 1e-5);
  });

  for (const backend of ['ring', 'mpi']) {
    it(`a task that fails stops the step (${backend}), the rank named, and leaves no process`, { skip: backend === 'mpi' && !hasMpirun ? 'no Open MPI' : false }, async () => {
      const runsDir = path.join(tmp, `failing-${backend}`);
      const run = await srun(backend === 'mpi' ? ['--mpi=pmix'] : [], [...CNN, '--dist-backend', backend, '--runs-dir', runsDir], { FASHION_MNIST_FAULT: '1:3:throw' });
      assert.notEqual(run.code, 0);
      assert.match(run.out, /rank 1: injected failure at step 3/);
      assert.deepEqual(processesOf(runsDir), []);
    });
  }
});
