/**
 * Two nodes joined by a really slow link: network namespaces with a 100 Mbit/s veth pair
 * (scripts/two-nodes.sh), one worker in each, TCP between them. Skipped, with the reason, where
 * the machine cannot make namespaces (not root, no iproute2).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CONFIG } from '../lib/train/config';
import { readRun } from '../lib/train/run-record';
import { readSavedWeights } from '../lib/train/save';
import { train } from '../lib/launch/train';
import { runToEnd } from './support/processes';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const NODES = path.join(ROOT, 'scripts', 'two-nodes.sh');
const NAME = 'fmtest';
const SUBNET = '91';
const RATE_MBIT = 100;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-slow-link-'));
const args = ['--model', 'cnn', '--epochs', '1', '--train-subset', '1024', '--val-subset', '200', '--batch-size', '32',
  '--base-lr', '0.01', '--bucket-cap-mb', '0.1', '--no-progress'];
const STEPS = 1024 / (2 * 32);

const check = spawnSync(NODES, ['check'], { encoding: 'utf8' });
const skip = check.status === 0 ? false : `two nodes need network namespaces here: ${check.stdout.trim() || check.stderr.trim()}`;

/** Runs node 0 in NAME-a and node 1 in NAME-b; returns node 0's run folder. */
async function twoNodes(label: string, extra: string[], port: number) {
  const save = path.join(tmp, `${label}.weights`);
  const runsDir = (id: number) => path.join(tmp, `${label}-runs-${id}`);
  const node = (id: number) => runToEnd('ip', ['netns', 'exec', `${NAME}-${id === 0 ? 'a' : 'b'}`, process.execPath, CLI, ...args, ...extra,
    '--num-nodes', '2', '--node-id', String(id), '--num-gpus', '1', '--master-addr', `10.77.${SUBNET}.1`,
    '--master-port', String(port), '--runs-dir', runsDir(id), ...(id === 0 ? ['--save', save] : [])], { cwd: ROOT });
  const [n0, n1] = await Promise.all([node(0), node(1)]);
  assert.equal(n0.code, 0, n0.out + n1.out);
  assert.equal(n1.code, 0, n1.out);
  const [id] = fs.readdirSync(runsDir(0));
  const metrics = readRun(path.join(runsDir(0), id)).epochs[0];
  return { metrics, weights: readSavedWeights(save) };
}

describe('two nodes over a 100 Mbit/s link (network namespaces)', { skip }, () => {
  let gradientBytes = 0;
  let sharedMemory: Map<string, Float32Array>;
  before(async () => {
    const up = spawnSync(NODES, ['up', NAME, `${RATE_MBIT}mbit`, SUBNET], { encoding: 'utf8' });
    assert.equal(up.status, 0, up.stderr);
    const save = path.join(tmp, 'shared-memory.weights');
    const result = await train({ ...DEFAULT_CONFIG, model: 'cnn', epochs: 1, trainSubset: 1024, valSubset: 200, batchSize: 32,
      baseLr: 0.01, bucketCapMb: 0.1, numGpus: 2, progress: false, runsDir: path.join(tmp, 'runs'), save });
    gradientBytes = 4 * readRun(result.runDir).info.parameters;
    sharedMemory = readSavedWeights(save);
  });
  after(() => {
    spawnSync(NODES, ['down', NAME]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('buckets all-reduced during the backward pass: the same weights as shared memory, part of the communication hidden', async () => {
    const { metrics, weights } = await twoNodes('overlap', [], 29610);
    assert.deepEqual([...weights.keys()], [...sharedMemory.keys()]);
    for (const [name, w] of weights) assert.deepEqual(w, sharedMemory.get(name), name);
    // A ring of 2 sends each rank's whole gradient once per step (half reduce-scatter, half all-gather):
    // the link's rate bounds the communication from below, whatever the machine's speed.
    const floorPerStep = gradientBytes * 8 / (RATE_MBIT * 1e6);
    const perStep = metrics.communicationSeconds / STEPS;
    assert.ok(perStep >= 0.8 * floorPerStep, `communication ${(perStep * 1e3).toFixed(1)} ms per step, below the link's ${(floorPerStep * 1e3).toFixed(1)} ms: the link is not limited`);
    assert.ok(metrics.hiddenSeconds > 0, 'some buckets finished before the backward pass ended');
  });

  it('--no-overlap: the same weights, nothing hidden', async () => {
    const { metrics, weights } = await twoNodes('no-overlap', ['--no-overlap'], 29611);
    for (const [name, w] of weights) assert.deepEqual(w, sharedMemory.get(name), name);
    assert.equal(metrics.hiddenSeconds, 0);
    assert.ok(metrics.allReduceSeconds / STEPS >= 0.8 * gradientBytes * 8 / (RATE_MBIT * 1e6), 'all of it exposed');
  });
});
