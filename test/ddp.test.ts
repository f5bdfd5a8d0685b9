import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initEngine } from '../lib/backend/select';
import { sharedDir } from '../lib/ddp/shared-buffers';
import { freePort } from '../lib/launch/launch';
import { buildModel } from '../lib/models';
import { DEFAULT_CONFIG, type TrainConfig } from '../lib/train/config';
import { readRun } from '../lib/train/run-record';
import { readSavedWeights } from '../lib/train/save';
import { train } from '../lib/launch/train';
import { runToEnd, waitUntilGone } from './support/processes';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-ddp-'));
const runsDir = path.join(tmp, 'runs');
const config = (overrides: Partial<TrainConfig>): TrainConfig => ({
  ...DEFAULT_CONFIG, runsDir, progress: false, epochs: 1, valSubset: 200, ...overrides,
});

type Weights = Map<string, Float32Array>;

/** Largest |a - b| over all weights, relative to the largest |a|. */
function maxRelativeDifference(a: Weights, b: Weights): number {
  let diff = 0;
  let scale = 0;
  for (const [name, va] of a) {
    const vb = b.get(name);
    assert.ok(vb != null && vb.length === va.length, name);
    for (let i = 0; i < va.length; i++) {
      diff = Math.max(diff, Math.abs(va[i] - vb[i]));
      scale = Math.max(scale, Math.abs(va[i]));
    }
  }
  return diff / scale;
}

/** Largest |a - b| over all weights, relative to the largest step the weights took from `start`. */
function differenceOverUpdate(a: Weights, b: Weights, start: Weights): number {
  let diff = 0;
  let update = 0;
  for (const [name, va] of a) {
    const vb = b.get(name) as Float32Array;
    const v0 = start.get(name) as Float32Array;
    for (let i = 0; i < va.length; i++) {
      diff = Math.max(diff, Math.abs(va[i] - vb[i]));
      update = Math.max(update, Math.abs(va[i] - v0[i]));
    }
  }
  return diff / update;
}

async function trainAndSave(name: string, overrides: Partial<TrainConfig>) {
  const save = path.join(tmp, name);
  const result = await train(config({ ...overrides, save }));
  return { result, weights: readSavedWeights(save) };
}

function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [CLI, '--runs-dir', runsDir, '--no-progress', ...args], {
    encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env }, timeout: 180_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('data-parallel training: one worker process per device', () => {
  before(async () => {
    await initEngine('wasm');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const cnn = { model: 'cnn' as const, trainSubset: 1024, baseLr: 0.01 };

  it('2 workers x batch 32 train the same cnn as 1 worker x batch 64, and differ from 1 x 32', async () => {
    const two = await trainAndSave('two-by-32', { ...cnn, numGpus: 2, batchSize: 32 });
    const one = await trainAndSave('one-by-64', { ...cnn, numGpus: 1, batchSize: 64 });
    const small = await trainAndSave('one-by-32', { ...cnn, numGpus: 1, batchSize: 32 });
    const same = maxRelativeDifference(one.weights, two.weights);
    const other = maxRelativeDifference(one.weights, small.weights);
    assert.ok(same < 1e-5, `2 x 32 vs 1 x 64: ${same}`);
    assert.ok(other > 100 * same && other > 1e-3, `1 x 32 vs 1 x 64: ${other}`);

    const [rank0, rank1] = two.result.replicas;
    assert.deepEqual(rank0, rank1, 'the replicas differ');
    assert.equal(two.result.epochs[0].workers, 2);
    assert.equal(readRun(two.result.runDir).info.worldSize, 2);
    assert.ok(Math.abs(two.result.epochs[0].valAccuracy - one.result.epochs[0].valAccuracy) <= 0.005);
  });

  it('keeps replicas, BatchNorm statistics and optimizer state identical on every rank (wideresnet-dw)', async () => {
    const result = await train(config({ model: 'wideresnet-dw', numGpus: 2, batchSize: 8, trainSubset: 48, valSubset: 20 }));
    assert.equal(result.replicas.length, 2);
    assert.deepEqual(result.replicas[0], result.replicas[1]);
  });

  for (const optimizer of ['novograd', 'lamb', 'lars'] as const) {
    it(`keeps ${optimizer}'s state identical on every rank`, async () => {
      const result = await train(config({ model: 'cnn', optimizer, numGpus: 2, batchSize: 16, trainSubset: 256, valSubset: 50 }));
      assert.equal(result.replicas.length, 2);
      assert.deepEqual(result.replicas[0], result.replicas[1]);
      assert.notEqual(result.replicas[0].optimizerState, result.replicas[0].weights);
    });
  }

  it('--sync-bn makes BatchNorm see the global batch, as PyTorch SyncBatchNorm does', async () => {
    const model = { model: 'wideresnet-dw' as const, dropout: 0, trainSubset: 16, valSubset: 20, baseLr: 0.01, seed: 3 };
    const one = await trainAndSave('bn-one', { ...model, numGpus: 1, batchSize: 16 });
    const perWorker = await trainAndSave('bn-local', { ...model, numGpus: 2, batchSize: 8 });
    const synced = await trainAndSave('bn-sync', { ...model, numGpus: 2, batchSize: 8, syncBn: true });
    const initial = new Map(buildModel('wideresnet-dw', 3, { dropout: 0 }).weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
    const local = differenceOverUpdate(one.weights, perWorker.weights, initial);
    const sync = differenceOverUpdate(one.weights, synced.weights, initial);
    assert.ok(sync < 1e-3, `with --sync-bn the step differs from one big batch by ${sync} of its size`);
    assert.ok(local > 0.05, `without --sync-bn the step differs by only ${local} of its size`);
    assert.deepEqual(synced.result.replicas[0], synced.result.replicas[1]);
  });

  it('ends a diverging run on every rank at the same step', async () => {
    const result = await train(config({ numGpus: 2, batchSize: 32, trainSubset: 1280, baseLr: 1000, epochs: 2 }));
    assert.equal(result.outcome, 'diverged');
    assert.equal(result.diverged?.epoch, 1);
  });

  const faults: [fault: string, message: RegExp, transport?: string][] = [
    ['throw', /rank 1 failed: injected failure at step 3/],
    ['exit', /rank 1 failed: exited with code 7/],
    ['kill', /rank 1 failed: killed by SIGKILL/],
    ['oom', /rank 1 failed: .*out of memory/],
    // The survivor meets the closed socket in its own recv(2) (polled-tcp-link.ts), not in Node's.
    ['kill', /rank 1 failed: killed by SIGKILL/, 'tcp'],
  ];
  for (const [fault, message, transport] of faults) {
    it(`stops the whole run when a worker fails (${fault}${transport ? `, ring over ${transport}` : ''}), naming the rank, leaving no process`, async () => {
      let pids: number[] = [];
      process.env.FASHION_MNIST_FAULT = `1:3:${fault}`;
      if (transport) process.env.FASHION_MNIST_RING_TRANSPORT = transport;
      const nodeOptions = process.env.NODE_OPTIONS;
      if (fault === 'oom') process.env.NODE_OPTIONS = '--max-old-space-size=200';
      const relayed: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
        relayed.push(String(chunk));
        return write(chunk, ...rest);
      }) as typeof process.stderr.write;
      try {
        const started = Date.now();
        await assert.rejects(
          train(config({ numGpus: 2, batchSize: 32, trainSubset: 2048 }), { onWorkers: (p) => { pids = p; } }),
          message,
        );
        assert.ok(Date.now() - started < 60_000);
      } finally {
        process.stderr.write = write;
        delete process.env.FASHION_MNIST_FAULT;
        delete process.env.FASHION_MNIST_RING_TRANSPORT;
        if (nodeOptions == null) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = nodeOptions;
      }
      assert.equal(pids.length, 2);
      assert.deepEqual(await waitUntilGone(pids, 5000), [], 'workers left running');
      const files = fs.readdirSync(sharedDir()).filter((f) => pids.some((pid) => f.startsWith(`fashion-mnist-${pid}-`)));
      assert.deepEqual(files, [], 'shared buffers left in /dev/shm');
      if (fault === 'oom') {
        assert.ok(relayed.some((l) => l.startsWith('[rank 1] ') && /heap out of memory/.test(l)), "the worker's own output, prefixed with its rank");
      }
    });
  }

  it('refuses more workers than devices unless --oversubscribe', async () => {
    const tooMany = os.availableParallelism() + 1;
    await assert.rejects(train(config({ numGpus: tooMany })), new RegExp(`--num-gpus ${tooMany} asks for more devices than this machine has .*--oversubscribe`));
  });

  it('says so when a fixed rendezvous port is taken', async () => {
    const server = net.createServer();
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
    try {
      await assert.rejects(train(config({ numGpus: 2, trainSubset: 256, masterPort: port })), new RegExp(`MASTER_PORT ${port} is already in use`));
    } finally {
      server.close();
    }
  });

  it('times out a rendezvous that cannot complete, saying who is missing', async () => {
    const port = await freePort();
    const { code, stderr } = runCli(['--epochs', '1', '--train-subset', '256'], {
      RANK: '0', WORLD_SIZE: '2', MASTER_PORT: String(port), FASHION_MNIST_RENDEZVOUS_TIMEOUT: '2',
    });
    assert.equal(code, 1);
    assert.match(stderr, /rendezvous timed out after 2 s .*rank\(s\) 1 of 2 never arrived/);
  });

  it('stops every worker on Ctrl-C (SIGINT to the process group)', async () => {
    const child: ChildProcess = spawn(process.execPath, [CLI, '--runs-dir', runsDir, '--num-gpus', '2', '--epochs', '5', '--train-subset', '8192', '--no-progress'], {
      cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    const deadline = Date.now() + 60_000;
    while (!out.includes('Run record:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const workers = spawnSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).stdout
      .split('\n').map((l) => Number(l.trim())).filter((p) => p > 0);
    assert.equal(workers.length, 2, out);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    process.kill(-(child.pid as number), 'SIGINT');
    assert.equal(await exited, 130, out);
    assert.match(out, /interrupted/);
    assert.deepEqual(await waitUntilGone(workers, 5000), []);
  });

  describe('started by other launchers', () => {
    const args = ['--epochs', '1', '--train-subset', '1024', '--val-subset', '200', '--batch-size', '32', '--base-lr', '0.01'];
    let builtin: Weights;
    before(async () => {
      builtin = (await trainAndSave('builtin', { ...cnn, numGpus: 2, batchSize: 32 })).weights;
    });

    it('two nodes (--num-nodes 2 --node-id 0/1) over TCP train exactly like one node with 2 workers over shared memory', async () => {
      const port = await freePort();
      const save = path.join(tmp, 'two-nodes');
      const node = (id: number) => runToEnd(process.execPath, [CLI, ...args, '--runs-dir', runsDir, '--no-progress', '--num-nodes', '2', '--node-id', String(id),
        '--num-gpus', '1', '--master-port', String(port), '--save', save], { cwd: ROOT, env: { ...process.env, FASHION_MNIST_RING_TRANSPORT: 'tcp' } });
      const [n0, n1] = await Promise.all([node(0), node(1)]);
      assert.equal(n0.code, 0, n0.out);
      assert.equal(n1.code, 0, n1.out);
      assert.equal(maxRelativeDifference(builtin, readSavedWeights(save)), 0);
    });

    it('mpirun -np 2 trains exactly like the built-in launcher', async () => {
      const port = String(await freePort());
      const save = path.join(tmp, 'mpirun');
      const result = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', '-x', 'MASTER_ADDR=127.0.0.1', '-x', `MASTER_PORT=${port}`,
        process.execPath, CLI, ...args, '--runs-dir', runsDir, '--no-progress', '--save', save], { encoding: 'utf8', cwd: ROOT, timeout: 180_000 });
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.equal(result.stdout.split('\n').filter((l) => l.startsWith('Epoch =')).length, 1, 'rank 0 alone prints the epoch line');
      assert.equal(maxRelativeDifference(builtin, readSavedWeights(save)), 0);
    });

    it('torchrun-style variables (RANK, WORLD_SIZE, MASTER_PORT) make each process one rank', async () => {
      const port = String(await freePort());
      const save = path.join(tmp, 'env-ranks');
      const rank = (r: number) => new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args, '--runs-dir', runsDir, '--no-progress', '--save', save], {
          cwd: ROOT, env: { ...process.env, RANK: String(r), WORLD_SIZE: '2', LOCAL_RANK: String(r), MASTER_ADDR: '127.0.0.1', MASTER_PORT: port },
          stdio: 'ignore',
        });
        child.on('exit', resolve);
      });
      assert.deepEqual(await Promise.all([rank(0), rank(1)]), [0, 0]);
      assert.equal(maxRelativeDifference(builtin, readSavedWeights(save)), 0);
    });
  });
});

