/**
 * The GPU path without a GPU: a stand-in for @tensorflow/tfjs-node-gpu (test/fixtures/stand-in-gpu,
 * reached through NODE_PATH by the project's real require) registers the 'tensorflow' backend
 * with tfjs-node's kernels and reports the environment it loaded with; a stand-in nvidia-smi lists
 * 8 GPUs. The launcher, the external-launcher path and the engine checks run as they would on a
 * multi-GPU machine.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { gpuOfLocalRank, parseVisibleDevices, prepareTensorflowEnv, visibleGpus } from '../lib/backend/devices';
import { freePort } from '../lib/launch/launch';
import { runToEnd } from './support/processes';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const STAND_IN = path.join(ROOT, 'test', 'fixtures', 'stand-in-gpu');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-gpu-path-'));
// tfjs's cpu kernels are slow: a few small steps.
const TINY = ['--epochs', '1', '--train-subset', '4', '--val-subset', '2', '--batch-size', '2', '--no-progress'];

interface Ran { code: number | null; out: string }

/** The CLI with the stand-in engine and nvidia-smi (without them when `standIn` is false). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}, standIn = true): Promise<Ran> {
  const base: NodeJS.ProcessEnv = { ...process.env, CUDA_VISIBLE_DEVICES: undefined, ...env };
  if (standIn) {
    base.NODE_PATH = path.join(STAND_IN, 'modules');
    base.PATH = `${path.join(STAND_IN, 'bin')}${path.delimiter}${process.env.PATH}`;
  }
  for (const k of Object.keys(base)) if (base[k] === undefined) delete base[k];
  return runToEnd(process.execPath, [CLI, ...args, '--runs-dir', path.join(tmp, 'runs')], { cwd: ROOT, env: base });
}

/** What the stand-in engine saw when it loaded, per line that reported it. */
function loads(out: string): Record<string, string>[] {
  return out.split('\n').filter((l) => l.includes('stand-in tfjs-node-gpu loaded:')).map((l) => Object.fromEntries(
    l.slice(l.indexOf('loaded:') + 7).trim().split(' ').map((kv) => kv.split('=') as [string, string])));
}

describe('GPU devices, read as CUDA reads them', () => {
  it('takes CUDA_VISIBLE_DEVICES up to its first invalid entry, indices or UUIDs', () => {
    assert.deepEqual(parseVisibleDevices('4,5'), ['4', '5']);
    assert.deepEqual(parseVisibleDevices('GPU-8e1a,GPU-77b2'), ['GPU-8e1a', 'GPU-77b2']);
    assert.deepEqual(parseVisibleDevices('2,-1,3'), ['2']);
    assert.deepEqual(parseVisibleDevices(''), []);
    assert.deepEqual(visibleGpus({}, () => ['0', '1', '2']).gpus, ['0', '1', '2']);
    assert.deepEqual(visibleGpus({}, () => null).gpus, []);
    assert.deepEqual(visibleGpus({ CUDA_VISIBLE_DEVICES: '6,7' }, () => ['0']).gpus, ['6', '7']);
  });

  it('gives local rank i the i-th visible GPU; a task given one GPU by its scheduler keeps it', () => {
    const listing = { gpus: ['4', '5'], source: 'CUDA_VISIBLE_DEVICES=4,5' };
    assert.equal(gpuOfLocalRank(listing, 0).gpu, '4');
    assert.equal(gpuOfLocalRank(listing, 1).gpu, '5');
    assert.match(gpuOfLocalRank(listing, 2).description, /shared: 3 local ranks on 2 GPUs/);
    assert.equal(gpuOfLocalRank({ gpus: ['GPU-77b2'], source: 'CUDA_VISIBLE_DEVICES=GPU-77b2' }, 3).gpu, 'GPU-77b2');
    assert.throws(() => gpuOfLocalRank({ gpus: [], source: 'CUDA_VISIBLE_DEVICES=' }, 0), /no GPU to pin local rank 0 to \(CUDA_VISIBLE_DEVICES=\)/);
  });

  it("shares the cores among a machine's workers and lets GPU memory grow, unless the user set them", () => {
    const env: Record<string, string | undefined> = {};
    assert.match(prepareTensorflowEnv(4, env, 16), /^4 threads \(16 cores \/ 4 workers/);
    assert.deepEqual(env, { TF_NUM_INTRAOP_THREADS: '4', TF_NUM_INTEROP_THREADS: '1', TF_FORCE_GPU_ALLOW_GROWTH: 'true' });
    const mine: Record<string, string | undefined> = { TF_NUM_INTRAOP_THREADS: '2', TF_FORCE_GPU_ALLOW_GROWTH: 'false' };
    assert.match(prepareTensorflowEnv(4, mine, 16), /as set/);
    assert.equal(mine.TF_NUM_INTRAOP_THREADS, '2');
    assert.equal(mine.TF_FORCE_GPU_ALLOW_GROWTH, 'false');
  });
});

describe('the GPU path through a stand-in tfjs-node-gpu', () => {
  it("the built-in launcher gives its workers the parent's GPUs 4 and 5, and --num-gpus 2 trains end to end", async () => {
    const { code, out } = await cli(['--num-gpus', '2', '--backend', 'tensorflow-gpu', ...TINY], { CUDA_VISIBLE_DEVICES: '4,5', STAND_IN_GPU_MIB: '40960' });
    assert.equal(code, 0, out);
    const seen = loads(out);
    assert.deepEqual(seen.map((s) => s.CUDA_VISIBLE_DEVICES).sort(), ['4', '5'], out);
    const cores = os.availableParallelism();
    for (const s of seen) {
      assert.equal(s.TF_FORCE_GPU_ALLOW_GROWTH, 'true');
      assert.equal(s.TF_NUM_INTRAOP_THREADS, String(Math.max(1, Math.floor(cores / 2))));
    }
    assert.match(out, /\[rank 0\] Device: tensorflow-gpu \(libtensorflow with CUDA on GPU 4 /);
    assert.match(out, /\[rank 1\] Device: tensorflow-gpu \(libtensorflow with CUDA on GPU 5 /);
    assert.match(out, /Memory for activations: 30\.1 GB per worker \(70% of GPU 4's 42\.9 GB \(nvidia-smi\)\)/);
    assert.match(out, /^Epoch =  1: /m);
  });

  it('processes started by torchrun (RANK, WORLD_SIZE, LOCAL_RANK) under CUDA_VISIBLE_DEVICES=4,5 pin GPUs 4 and 5 themselves', async () => {
    const port = String(await freePort());
    const rank = (r: number) => cli(['--backend', 'tensorflow-gpu', ...TINY], {
      CUDA_VISIBLE_DEVICES: '4,5', RANK: String(r), WORLD_SIZE: '2', LOCAL_RANK: String(r), LOCAL_WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: port,
    });
    const [r0, r1] = await Promise.all([rank(0), rank(1)]);
    assert.equal(r0.code, 0, r0.out);
    assert.equal(r1.code, 0, r1.out);
    assert.deepEqual(loads(r0.out).map((s) => s.CUDA_VISIBLE_DEVICES), ['4']);
    assert.deepEqual(loads(r1.out).map((s) => s.CUDA_VISIBLE_DEVICES), ['5']);
    assert.match(r1.out, /\[rank 1\] Device: tensorflow-gpu \(libtensorflow with CUDA on GPU 5 \(local rank 1: entry 2 of 2, from CUDA_VISIBLE_DEVICES=4,5\)/);
  });

  it('refuses --backend tensorflow-gpu when TensorFlow cannot use the GPU, saying what is missing, before training', async () => {
    const { code, out } = await cli(['--backend', 'tensorflow-gpu', ...TINY], { STAND_IN_GPU_USABLE: '0' });
    assert.notEqual(code, 0, out);
    assert.match(out, /TensorFlow loaded but cannot use GPU 0 .*it would silently run on the CPU/);
    assert.match(out, /CUDA 11\.2 runtime libraries .*cuDNN 8\.1 \(libcudnn\.so\.8\) on LD_LIBRARY_PATH/);
    assert.doesNotMatch(out, /^Epoch = /m);
  });

  it('--backend auto skips a GPU TensorFlow cannot use, says why, and trains on the next engine', async () => {
    const { code, out } = await cli(['--backend', 'auto', ...TINY], { STAND_IN_GPU_USABLE: '0' });
    assert.equal(code, 0, out);
    assert.match(out, /Engine skipped \(--backend auto\): tensorflow-gpu: TensorFlow loaded but cannot use GPU 0/);
    assert.match(out, /^Engine: wasm /m);
  });

  it('--num-gpus 2 --backend auto with tfjs-node-gpu installed but no GPU visible runs on CPU cores', async () => {
    for (const env of [{ CUDA_VISIBLE_DEVICES: '' }, {}]) {
      // No stand-in nvidia-smi on PATH: the second case has no way to list GPUs at all.
      const run = await cli(['--num-gpus', '2', '--backend', 'auto', ...TINY], { ...env, NODE_PATH: path.join(STAND_IN, 'modules') }, false);
      assert.equal(run.code, 0, run.out);
      assert.match(run.out, /Engine skipped \(--backend auto\): tensorflow-gpu: no GPU is visible/);
      assert.match(run.out, /^Engine: wasm /m);
    }
  });
});
