/**
 * The reducer (lib/ddp/reducer.ts): gradient buckets in reverse parameter order, filled by hooks as
 * the backward pass computes each weight's gradient, all-reduced during the backward pass (or after
 * it, --no-overlap), with gradient accumulation (--accumulation-steps). Equivalence runs on real
 * worker processes: whatever the buckets, N workers train like one worker on the global batch.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { assignBuckets, FIRST_BUCKET_BYTES } from '../lib/ddp/buckets';
import { GradientTap } from '../lib/ddp/gradient-hooks';
import { gatherBatch, loadFashionMnist } from '../lib/data/fashion-mnist';
import { buildModel } from '../lib/models/index';
import { Sgd } from '../lib/optim/sgd';
import { DEFAULT_CONFIG, type TrainConfig } from '../lib/train/config';
import { readSavedWeights } from '../lib/train/save';
import { train } from '../lib/launch/train';
import { Trainer } from '../lib/train/trainer';
import { waitUntilGone } from './support/processes';

const MIB = 1024 * 1024;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-reducer-'));
const config = (overrides: Partial<TrainConfig>): TrainConfig => ({
  ...DEFAULT_CONFIG, runsDir: path.join(tmp, 'runs'), progress: false, epochs: 1, valSubset: 200, targetAccuracy: 1,
  model: 'cnn', baseLr: 0.01, momentum: 0.9, trainSubset: 512, ...overrides,
});

type Weights = Map<string, Float32Array>;

/** Largest |a - b| over all weights, relative to the largest |a|. */
function maxRelativeDifference(a: Weights, b: Weights): number {
  let diff = 0;
  let scale = 0;
  for (const [name, va] of a) {
    const vb = b.get(name)!;
    for (let i = 0; i < va.length; i++) {
      diff = Math.max(diff, Math.abs(va[i] - vb[i]));
      scale = Math.max(scale, Math.abs(va[i]));
    }
  }
  return diff / scale;
}

async function trainAndSave(name: string, overrides: Partial<TrainConfig>) {
  const save = path.join(tmp, name);
  const result = await train(config({ ...overrides, save }));
  return { result, weights: readSavedWeights(save) };
}

describe('bucket assignment (PyTorch DDP: reverse parameter order, a size cap, a small first bucket)', () => {
  it('fills buckets from the last parameter to the first, never splitting one', () => {
    const sizes = [100, 10, 50_000, 64, 300_000, 128];
    const buckets = assignBuckets(sizes, 1);
    assert.deepEqual(buckets.flatMap((b) => b.params), [5, 4, 3, 2, 1, 0]);
    for (const b of buckets) {
      assert.deepEqual(b.offsets, b.params.map((_, k) => b.params.slice(0, k).reduce((s, p) => s + sizes[p], 0)));
      assert.equal(b.floats, b.params.reduce((s, p) => s + sizes[p], 0));
      assert.ok(b.floats * 4 <= MIB || b.params.length === 1, `a bucket of ${b.floats * 4} bytes holds ${b.params.length} parameters`);
    }
  });

  it('caps the first bucket at 1 MiB and the others at bucket_cap_mb', () => {
    const sizes = Array.from({ length: 40 }, () => 100_000); // 400 kB each
    const buckets = assignBuckets(sizes, 2);
    assert.ok(buckets[0].floats * 4 <= FIRST_BUCKET_BYTES);
    assert.equal(buckets[0].params.length, 2);
    for (const b of buckets.slice(1, -1)) assert.equal(b.params.length, 5); // 2 MB = 5 x 400 kB
  });

  it('0 MB gives one bucket of everything (the naive algorithm); a parameter above the cap gets a bucket of its own', () => {
    assert.equal(assignBuckets([5, 6, 7], 0).length, 1);
    // Cap 0 is one bucket however big: the first bucket's 1 MiB does not apply.
    const whole = assignBuckets([300_000, 5, 300_000], 0);
    assert.deepEqual(whole.map((b) => b.params), [[2, 1, 0]]);
    assert.deepEqual(whole[0].offsets, [0, 300_000, 300_005]);
    const big = assignBuckets([10, 1_000_000, 10], 1);
    assert.deepEqual(big.map((b) => b.params), [[2], [1], [0]]);
    assert.throws(() => assignBuckets([1], -1), /non-negative/);
  });
});

describe('gradient hooks and accumulation in one process', () => {
  let data: ReturnType<typeof loadFashionMnist>;
  before(async () => {
    await initEngine('wasm');
    data = loadFashionMnist();
  });

  it('hand each weight its gradient during the backward pass, last layer first, equal to variableGrads', () => {
    const model = buildModel('cnn', 3);
    const params = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const batch = gatherBatch(data.train, Int32Array.from({ length: 16 }, (_, i) => i));
    const loss = () => tf.tidy(() => {
      const xs = tf.tensor4d(batch.images, [16, 28, 28, 1]);
      const logits = model.apply(xs, { training: true }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(batch.labels, 'int32'), 10), logits) as tf.Scalar;
    });
    const plain = tf.variableGrads(loss, params);
    const tap = new GradientTap(model);
    const seen: { param: number; values: Float32Array }[] = [];
    const tapped = tap.run((param, grad) => seen.push({ param, values: (grad.dataSync() as Float32Array).slice() }), () => tf.variableGrads(loss, params));
    tap.remove();
    // Every weight once, layer by layer from the last to the first (within a layer, in the order of its ops).
    const layerOf = new Map<number, number>();
    model.layers.forEach((layer, l) => layer.trainableWeights.forEach((w) => layerOf.set(params.findIndex((p) => p.name === (w as unknown as { val: tf.Variable }).val.name), l)));
    assert.deepEqual([...seen.map((s) => s.param)].sort((a, b) => a - b), params.map((_, i) => i), 'each weight once');
    const layers = seen.map((s) => layerOf.get(s.param)!);
    assert.deepEqual(layers, [...layers].sort((a, b) => b - a), `the layers' order: ${layers.join(', ')}`);
    assert.equal(layers[0], Math.max(...layers));
    for (const { param, values } of seen) {
      assert.deepEqual(values, plain.grads[params[param].name].dataSync(), `weight ${param}`);
      assert.deepEqual(values, tapped.grads[params[param].name].dataSync());
    }
    tf.dispose([plain.value, tapped.value, ...Object.values(plain.grads), ...Object.values(tapped.grads)]);
  });

  it('K accumulation passes give the gradient of the whole batch, with tensors constant from step to step', () => {
    const batch = gatherBatch(data.train, Int32Array.from({ length: 32 }, (_, i) => i * 7));
    const results = [1, 2, 4].map((k) => {
      const trainer = new Trainer(buildModel('cnn', 5), new Sgd({ momentum: 0 }), 32);
      const first = trainer.computeGradients(batch, k);
      const values = first.grads.map((g) => (g.dataSync() as Float32Array).slice());
      tf.dispose(first.grads);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.dispose(trainer.computeGradients(batch, k).grads);
      assert.equal(tf.memory().numTensors, before, `K = ${k}: tensors leak`);
      return { loss: first.loss, values };
    });
    const largest = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    for (const r of results.slice(1)) {
      assert.ok(Math.abs(r.loss - results[0].loss) < 1e-5, `loss ${r.loss} vs ${results[0].loss}`);
      r.values.forEach((v, p) => {
        const base = results[0].values[p];
        const diff = largest(v.map((x, i) => x - base[i]));
        assert.ok(diff <= 1e-5 * largest(base) + 1e-7, `weight ${p}: ${diff} against ${largest(base)}`);
      });
    }
    assert.throws(() => new Trainer(buildModel('cnn', 5), new Sgd({ momentum: 0 }), 32).computeGradients(batch, 3), /cannot be cut into 3 equal accumulation steps/);
  });
});

describe('the reducer across worker processes', () => {
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('2 workers x 8 images x 2 accumulation steps, with any buckets, overlapped or not, train like 1 worker x 32 (16 steps)', { timeout: 300_000 }, async () => {
    const one = await trainAndSave('one-by-32', { numGpus: 1, batchSize: 32 });
    const half = await trainAndSave('one-by-16', { numGpus: 1, batchSize: 16 });
    // What a different global batch does: the equivalences below are far closer than this.
    const apart = maxRelativeDifference(one.weights, half.weights);
    assert.ok(apart > 1e-3, `1 x 16 vs 1 x 32: ${apart}`);
    for (const [bucketCapMb, overlap] of [[25, true], [0.05, true], [0.05, false], [0, true]] as const) {
      const name = `two-by-8-by-2-cap-${bucketCapMb}-${overlap ? 'overlap' : 'no-overlap'}`;
      const two = await trainAndSave(name, { numGpus: 2, batchSize: 8, accumulationSteps: 2, bucketCapMb, overlap });
      const difference = maxRelativeDifference(one.weights, two.weights);
      assert.ok(difference < 1e-5, `${name}: ${difference}`);
      assert.deepEqual(two.result.replicas[0], two.result.replicas[1], `${name}: the replicas differ`);
    }
  });

  it('starts buckets during the backward pass with overlap, and only after it with --no-overlap', { timeout: 120_000 }, async () => {
    for (const overlap of [true, false]) {
      const { epochs } = await train(config({ numGpus: 2, batchSize: 32, bucketCapMb: 0.05, overlap, trainSubset: 640 }));
      const timeline = epochs[0].timeline;
      assert.ok(timeline, 'no timeline of the last step');
      assert.ok(timeline.buckets.length >= 4, `${timeline.buckets.length} buckets`);
      const early = timeline.buckets.slice(0, -1).filter((b) => b.startedAt < timeline.backwardEnd).length;
      if (overlap) assert.ok(early >= 1, `no bucket started before the backward pass ended: ${JSON.stringify(timeline)}`);
      else assert.equal(early, 0, `a bucket started before the end of the backward pass: ${JSON.stringify(timeline)}`);
      for (const b of timeline.buckets) assert.ok(b.finishedAt <= timeline.waitEnd + 0.5 && b.startedAt >= b.readyAt - 0.5, JSON.stringify(b));
      const m = epochs[0];
      assert.ok(m.communicationSeconds > 0 && m.hiddenSeconds <= m.communicationSeconds);
      // Hidden: what the communication thread did before the backward pass ended; none without overlap.
      if (overlap) assert.ok(m.hiddenSeconds > 0, `nothing hidden: ${JSON.stringify(m)}`);
      else assert.equal(m.hiddenSeconds, 0);
    }
  });

  it('stops the run, naming the rank, when a peer dies while buckets are in flight, and leaves no worker', { timeout: 120_000 }, async () => {
    let pids: number[] = [];
    process.env.FASHION_MNIST_FAULT = '1:3:kill';
    try {
      // Rank 1 dies after step 3; rank 0 is then in step 4, its first buckets started during its backward pass.
      await assert.rejects(
        train(config({ numGpus: 2, batchSize: 32, bucketCapMb: 0.05, trainSubset: 640 }), { onWorkers: (p) => { pids = p; } }),
        /rank 1 failed: killed by SIGKILL/,
      );
    } finally {
      delete process.env.FASHION_MNIST_FAULT;
    }
    assert.equal(pids.length, 2);
    assert.deepEqual(await waitUntilGone(pids, 5000), [], 'workers left running');
  });

  it('does not deadlock when a rank finishes its backward passes late, and measures the wait for it', { timeout: 120_000 }, async () => {
    const delayMs = 40;
    process.env.FASHION_MNIST_FAULT = `1:${delayMs}:slow`;
    try {
      const { epochs, replicas } = await train(config({ numGpus: 2, batchSize: 32, bucketCapMb: 0.05, trainSubset: 640 }));
      const steps = 640 / 64;
      assert.deepEqual(replicas[0], replicas[1]);
      // Rank 0 waits about delayMs a step for rank 1; at least half of it is measured as such.
      assert.ok(epochs[0].waitSeconds >= (0.5 * steps * delayMs) / 1000, `waited ${epochs[0].waitSeconds} s for the slowest rank in ${steps} steps`);
    } finally {
      delete process.env.FASHION_MNIST_FAULT;
    }
  });
});
