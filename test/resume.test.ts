import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../lib/launch/launch';
import { listCheckpoints } from '../lib/train/checkpoint-file';
import { readRun } from '../lib/train/run-record';
import { processesOf, runToEnd, waitUntilGone } from './support/processes';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-resume-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const CNN = ['--model', 'cnn', '--train-subset', '512', '--val-subset', '200', '--batch-size', '32', '--base-lr', '0.05', '--momentum', '0.9', '--no-progress'];
// BatchNorm statistics, dropout's random state and LAMB's step count all have to come back.
const WRN = ['--model', 'wideresnet-dw', '--train-subset', '128', '--val-subset', '64', '--batch-size', '16', '--optimizer', 'lamb',
  '--base-lr', '0.01', '--dropout', '0.3', '--no-progress'];

let folders = 0;
const folder = (name: string) => path.join(tmp, `${name}-${folders++}`);

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return runToEnd(process.execPath, [CLI, ...args], { cwd: tmp, env: { ...process.env, ...env } });
}

/** The only run folder under `runsDir`. */
function onlyRun(runsDir: string): string {
  const runs = fs.readdirSync(runsDir);
  assert.equal(runs.length, 1, runs.join(', '));
  return path.join(runsDir, runs[0]);
}

async function straightRun(base: string[], epochs: number): Promise<Buffer> {
  const save = folder('model');
  const run = await cli([...base, '--epochs', String(epochs), '--runs-dir', folder('runs'), '--save', save]);
  assert.equal(run.code, 0, run.out);
  return fs.readFileSync(path.join(save, 'weights.bin'));
}

describe('--resume continues a run bit-identically', () => {
  for (const [name, base] of [
    ['cnn, 1 worker', CNN], ['cnn, 2 workers', [...CNN, '--num-gpus', '2']], ['wideresnet-dw with LAMB and dropout, 2 workers', [...WRN, '--num-gpus', '2']],
  ] as const) {
    it(`${name}: 2 epochs straight equal 1 epoch, then --resume --epochs 2 (weights byte for byte)`, async () => {
      const straight = await straightRun([...base], 2);
      const runsDir = folder('runs');
      const first = await cli([...base, '--epochs', '1', '--runs-dir', runsDir]);
      assert.equal(first.code, 0, first.out);
      const runDir = onlyRun(runsDir);
      assert.deepEqual(listCheckpoints(runDir).map((c) => c.epoch), [1]);
      const save = folder('model');
      // By id, from the runs folder, with only what may change.
      const second = await cli(['--resume', path.basename(runDir), '--runs-dir', runsDir, '--epochs', '2', '--save', save, '--no-progress']);
      assert.equal(second.code, 0, second.out);
      assert.match(second.out, /Continuing from the checkpoint of epoch 1 \(checkpoint-epoch-0001\.ckpt\): epochs 2 to 2/);
      assert.ok(fs.readFileSync(path.join(save, 'weights.bin')).equals(straight), 'the weights differ from the uninterrupted run');
      const record = readRun(runDir);
      assert.deepEqual(record.epochs.map((e) => e.epoch), [1, 2]);
      assert.equal(record.end?.outcome, 'completed');
      assert.equal(record.resumes.length, 1);
      assert.equal(record.resumes[0].reason, '--resume');
      assert.equal(record.info.config.epochs, 2);
    });
  }

  it('refuses a flag that would change what the run computes, and a run with nothing left to train, before anything loads', async () => {
    const runsDir = folder('runs');
    assert.equal((await cli([...CNN, '--epochs', '1', '--runs-dir', runsDir])).code, 0);
    const runDir = onlyRun(runsDir);
    const changed = await cli(['--resume', runDir, '--epochs', '2', '--batch-size', '64']);
    assert.equal(changed.code, 2);
    assert.match(changed.out, /--batch-size 64 differs from the run's setting \(its 32\) and would change what it computes; leave --batch-size out/);
    assert.doesNotMatch(changed.out, /Engine|Model/);
    const same = await cli(['--resume', runDir, '--epochs', '1']);
    assert.equal(same.code, 2);
    assert.match(same.out, /has already trained 1 epoch \(--epochs 1\); pass --epochs with more/);
    const missing = await cli(['--resume', 'no-such-run', '--runs-dir', runsDir]);
    assert.equal(missing.code, 2);
    assert.match(missing.out, /--resume no-such-run: no run folder there/);
  });

  it('passes over a damaged newest checkpoint (--keep-checkpoints) for the one before, saying so', async () => {
    const runsDir = folder('runs');
    assert.equal((await cli([...CNN, '--epochs', '2', '--keep-checkpoints', '--runs-dir', runsDir])).code, 0);
    const runDir = onlyRun(runsDir);
    const [newest] = listCheckpoints(runDir);
    const bytes = fs.readFileSync(newest.file);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(newest.file, bytes);
    const resumed = await cli(['--resume', runDir, '--epochs', '3']);
    assert.equal(resumed.code, 0, resumed.out);
    assert.match(resumed.out, /passed over .*checkpoint-epoch-0002\.ckpt: its checksum does not match/);
    assert.match(resumed.out, /Continuing from the checkpoint of epoch 1/);
    assert.deepEqual(readRun(runDir).epochs.map((e) => e.epoch), [1, 2, 3]);
  });
});

describe('--max-restarts', () => {
  it('SIGKILL of rank 1 during epoch 2: all workers restart from the checkpoint of epoch 1 and end with the uninterrupted weights', async () => {
    const base = [...CNN, '--num-gpus', '2'];
    const straight = await straightRun(base, 3);
    const runsDir = folder('runs');
    const save = folder('model');
    const run = await cli([...base, '--epochs', '3', '--runs-dir', runsDir, '--save', save, '--max-restarts', '1'], { FASHION_MNIST_FAULT: '1:5:kill:2' });
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /rank 1 failed: killed by SIGKILL.*; restarting all 2 workers from the checkpoint of epoch 1 \(restart 1 of 1\)/);
    assert.ok(fs.readFileSync(path.join(save, 'weights.bin')).equals(straight), 'the weights differ from the uninterrupted run');
    const record = readRun(onlyRun(runsDir));
    assert.deepEqual(record.resumes.map((r) => [r.fromEpoch, r.reason]), [[1, 'restart 1 of 1']]);
    assert.deepEqual(record.epochs.map((e) => e.epoch), [1, 2, 3]);
    assert.equal(record.end?.outcome, 'completed');
    assert.deepEqual(processesOf(runsDir), []);
  });

  it('without restarts left, the run fails with the worker named, end.json says so, and the checkpoint is offered', async () => {
    const runsDir = folder('runs');
    const run = await cli([...CNN, '--num-gpus', '2', '--epochs', '3', '--runs-dir', runsDir], { FASHION_MNIST_FAULT: '1:5:kill:2' });
    assert.equal(run.code, 1);
    const runDir = onlyRun(runsDir);
    assert.match(run.out, new RegExp(`rank 1 failed: killed by SIGKILL.*the checkpoint of epoch 1 is kept: continue with --resume ${runDir}`));
    const end = readRun(runDir).end;
    assert.equal(end?.outcome, 'failed');
    assert.match(end?.message ?? '', /rank 1 failed: killed by SIGKILL/);
    assert.deepEqual(processesOf(runsDir), []);
  });
});

/** Starts the command line and sends `signal` to it once the first epoch is done; `pids` are its processes then, workers included. */
async function signalAfterEpoch1(args: string[], signal: NodeJS.Signals, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: tmp, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (/Epoch =\s+1:/.test(out)) resolve();
  }));
  await new Promise((r) => setTimeout(r, 300));
  const pids = processesOf(args[args.indexOf('--runs-dir') + 1]).map((p) => p.pid);
  child.kill(signal);
  return { code: await exited, out: () => out, pids };
}

describe('end.json when a run is stopped', () => {
  const longRun = [...CNN, '--train-subset', '2048', '--epochs', '20'];

  it('Ctrl-C of a one-process run: the step ends, end.json says interrupted, exit code 130, and --resume continues it', async () => {
    const runsDir = folder('runs');
    const run = await signalAfterEpoch1([...longRun, '--runs-dir', runsDir], 'SIGINT');
    assert.equal(run.code, 130, run.out());
    const runDir = onlyRun(runsDir);
    assert.match(run.out(), new RegExp(`training was interrupted \\(SIGINT\\) in epoch 2, after step \\d+; the checkpoint of epoch 1 is kept: continue with --resume ${runDir}`));
    assert.equal(readRun(runDir).end?.outcome, 'interrupted');
    const resumed = await cli(['--resume', runDir, '--epochs', '2']);
    assert.equal(resumed.code, 0, resumed.out);
    assert.equal(readRun(runDir).end?.outcome, 'completed');
  });

  it('SIGTERM to the launcher: every worker stops, end.json says interrupted', async () => {
    const runsDir = folder('runs');
    const run = await signalAfterEpoch1([...longRun, '--num-gpus', '2', '--runs-dir', runsDir], 'SIGTERM');
    assert.equal(run.code, 130, run.out());
    assert.equal(run.pids.length, 3);
    assert.equal(readRun(onlyRun(runsDir)).end?.outcome, 'interrupted');
    assert.deepEqual(await waitUntilGone(run.pids, 5000), []);
  });

  it('SIGKILL of the launcher: the workers notice, stop, and rank 0 writes end.json', async () => {
    const runsDir = folder('runs');
    const run = await signalAfterEpoch1([...longRun, '--num-gpus', '2', '--runs-dir', runsDir], 'SIGKILL');
    assert.equal(run.pids.length, 3);
    // The workers, reparented, are no longer found through the launcher: wait for the ones seen before.
    assert.deepEqual(await waitUntilGone(run.pids, 5000), []);
    const end = readRun(onlyRun(runsDir)).end;
    assert.equal(end?.outcome, 'interrupted');
    assert.match(end?.message ?? '', /the launcher went away/);
  });

  it('SIGTERM to rank 0 under torchrun-style variables: it records the end and exits at once (143)', async () => {
    const runsDir = folder('runs');
    const port = String(await freePort());
    const ranks = [0, 1].map((rank) => spawn(process.execPath, [CLI, ...longRun, '--runs-dir', runsDir], {
      cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: port },
    }));
    let out = '';
    ranks[0].stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const exits = ranks.map((r) => new Promise<number | null>((resolve) => r.on('exit', (code) => resolve(code))));
    await new Promise<void>((resolve) => ranks[0].stdout.on('data', () => { if (/Epoch =\s+1:/.test(out)) resolve(); }));
    ranks[0].kill('SIGTERM');
    assert.equal(await exits[0], 143);
    ranks[1].kill('SIGTERM');
    await exits[1];
    const end = readRun(onlyRun(runsDir)).end;
    assert.equal(end?.outcome, 'interrupted');
    assert.match(end?.message ?? '', /stopped by SIGTERM \(rank 0\)/);
  });
});
