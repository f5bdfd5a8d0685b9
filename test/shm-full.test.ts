/**
 * When /dev/shm is too small (a container's 64 MB, say) for the ring on one machine: the channels
 * that do not fit stop the run before it trains, saying what to do; buffers that do not fit are
 * copied into the channel instead of read in place, with the same result. Uses a small tmpfs
 * (FASHION_MNIST_SHM_DIR), so it needs root to mount one; skipped, with the reason, elsewhere.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSavedWeights } from '../lib/train/save';
import { runToEnd } from './support/processes';
import { maxDifference } from './support/weights';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-shm-'));
const CNN = ['--model', 'cnn', '--train-subset', '1024', '--val-subset', '200', '--batch-size', '32', '--epochs', '1', '--no-progress', '--num-gpus', '2'];

function mountTmpfs(dir: string, size: string): boolean {
  fs.mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0;
}

const probe = path.join(tmp, 'probe');
const canMount = process.getuid?.() === 0 && mountTmpfs(probe, '1m');
if (canMount) spawnSync('umount', [probe]);

describe('a /dev/shm too small for the ring', { skip: canMount ? false : 'needs root to mount a small tmpfs' }, () => {
  const small = path.join(tmp, 'small');
  const tiny = path.join(tmp, 'tiny');

  before(() => {
    assert.ok(mountTmpfs(small, '3m'));
    assert.ok(mountTmpfs(tiny, '1m'));
  });

  after(() => {
    spawnSync('umount', [small]);
    spawnSync('umount', [tiny]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('room for the channels but not every buffer: the buckets that do not fit are copied, the weights the same', async () => {
    const normal = path.join(tmp, 'normal');
    const first = await runToEnd(process.execPath, [CLI, ...CNN, '--runs-dir', path.join(tmp, 'runs'), '--save', normal], { cwd: tmp });
    assert.equal(first.code, 0, first.out);
    const cramped = path.join(tmp, 'cramped');
    const run = await runToEnd(process.execPath, [CLI, ...CNN, '--runs-dir', path.join(tmp, 'runs'), '--save', cramped], {
      cwd: tmp, env: { ...process.env, FASHION_MNIST_SHM_DIR: small },
    });
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /no room for \d+ bytes of shared memory \(ENOSPC\) in .*small: gradient buckets are copied into the ring's channel/);
    assert.equal(maxDifference(readSavedWeights(normal), readSavedWeights(cramped)), 0);
  });

  it('no room for a channel: the run stops before training, naming the folder and what to do', async () => {
    const run = await runToEnd(process.execPath, [CLI, ...CNN, '--runs-dir', path.join(tmp, 'runs')], {
      cwd: tmp, env: { ...process.env, FASHION_MNIST_SHM_DIR: tiny },
    });
    assert.notEqual(run.code, 0);
    assert.match(run.out, /the ring's channel: no room for \d+ bytes of shared memory \(ENOSPC\) in .*tiny: free space there .*FASHION_MNIST_RING_TRANSPORT=tcp/);
    assert.doesNotMatch(run.out, /Epoch =/);
  });
});
