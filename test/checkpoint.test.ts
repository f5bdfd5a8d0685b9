import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { createOptimizer, DEFAULT_OPTIMIZER_SPEC, type OptimizerSpec } from '../lib/optim/factory';
import {
  CheckpointError, checkpointFileName, decodeCheckpoint, encodeCheckpoint, listCheckpoints, readLatestCheckpoint, writeCheckpoint,
} from '../lib/train/checkpoint-file';
import { mulberry32 } from '../lib/train/random';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-checkpoint-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Header { tensors: { shape: number[] }[]; epoch: number }

function sample(epoch: number, floats = 1000): { header: Header; values: Float32Array[] } {
  const next = mulberry32(epoch);
  const a = Float32Array.from({ length: floats }, () => next() - 0.5);
  const b = Float32Array.from({ length: 10 }, () => next());
  return { header: { epoch, tensors: [{ shape: [floats] }, { shape: [2, 5] }] }, values: [a, b] };
}

describe('the checkpoint file', () => {
  it('reads back exactly what was written', () => {
    const { header, values } = sample(3);
    const back = decodeCheckpoint<Header>(encodeCheckpoint(header, values));
    assert.equal(back.header.epoch, 3);
    assert.deepEqual(back.values, values);
  });

  it('refuses every truncation and every altered byte, naming what is wrong', () => {
    const bytes = encodeCheckpoint(sample(4).header, sample(4).values);
    const next = mulberry32(99);
    for (let trial = 0; trial < 200; trial++) {
      const cut = Math.floor(next() * bytes.length);
      assert.throws(() => decodeCheckpoint(bytes.subarray(0, cut)), (e: Error) => e instanceof CheckpointError && /truncated|signature/.test(e.message));
      const flipped = Buffer.from(bytes);
      const at = Math.floor(next() * bytes.length);
      flipped[at] ^= 1 << Math.floor(next() * 8);
      assert.throws(() => decodeCheckpoint(flipped), (e: Error) => e instanceof CheckpointError && /checksum|signature/.test(e.message), `byte ${at}`);
    }
  });

  it('keeps only the last checkpoint, or every one with keepAll, and reads the newest whole one', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'run-'));
    for (let epoch = 1; epoch <= 3; epoch++) writeCheckpoint(dir, epoch, encodeCheckpoint(sample(epoch).header, sample(epoch).values), { keepAll: false });
    assert.deepEqual(listCheckpoints(dir).map((c) => c.epoch), [3]);
    const all = fs.mkdtempSync(path.join(tmp, 'run-'));
    for (let epoch = 1; epoch <= 3; epoch++) writeCheckpoint(all, epoch, encodeCheckpoint(sample(epoch).header, sample(epoch).values), { keepAll: true });
    assert.deepEqual(listCheckpoints(all).map((c) => c.epoch), [3, 2, 1]);
    // Damage the newest: it is passed over, with the reason, for the one before.
    const newest = path.join(all, checkpointFileName(3));
    fs.truncateSync(newest, fs.statSync(newest).size - 100);
    const { found, skipped } = readLatestCheckpoint<Header>(all);
    assert.equal(found?.file, path.join(all, checkpointFileName(2)));
    assert.equal(skipped.length, 1);
    assert.match(skipped[0].reason, /truncated or corrupted/);
  });

  it('a writer killed at any moment leaves a checkpoint that reads back whole (at least 10 kills, some during a write)', async () => {
    const writer = path.join(__dirname, '..', 'lib', 'train', 'checkpoint-file.js');
    const script = `
      const { encodeCheckpoint, writeCheckpoint } = require(${JSON.stringify(writer)});
      const floats = 4 << 20; // 16 MB per checkpoint: a write takes long enough to be cut
      for (let epoch = 1; ; epoch++) {
        const values = [new Float32Array(floats).fill(epoch)];
        writeCheckpoint(process.argv[1], epoch, encodeCheckpoint({ epoch, tensors: [{ shape: [floats] }] }, values), { keepAll: false });
        if (epoch === 1) process.stdout.write('first\\n');
      }`;
    const next = mulberry32(7);
    let cutWrites = 0;
    for (let trial = 0; trial < 40 && (trial < 10 || cutWrites < 3); trial++) {
      const dir = fs.mkdtempSync(path.join(tmp, 'kill-'));
      const child = spawn(process.execPath, ['-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 20 + next() * 300));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      if (fs.readdirSync(dir).some((name) => name.includes('.ckpt.tmp-'))) cutWrites++;
      const { found, skipped } = readLatestCheckpoint<Header>(dir);
      assert.ok(found != null, `trial ${trial}: no checkpoint (${fs.readdirSync(dir).join(', ')})`);
      assert.deepEqual(skipped, [], `trial ${trial}`);
      assert.ok(found.values[0].every((v) => v === found.header.epoch), `trial ${trial}: mixed contents`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(cutWrites >= 1, 'no kill landed during a write: the test proved nothing');
  });
});

describe('optimizer state saved and loaded', () => {
  before(async () => {
    await initEngine('cpu');
  });

  const specs: [string, Partial<OptimizerSpec>][] = [
    ['sgd with momentum', { name: 'sgd', momentum: 0.9, nesterov: true }],
    ['plain sgd', { name: 'sgd', momentum: 0 }],
    ['novograd with amsgrad', { name: 'novograd', beta1: 0.95, beta2: 0.98, eps: 1e-8, amsgrad: true, gradAveraging: true }],
    ['lamb', { name: 'lamb', beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 }],
    ['lars', { name: 'lars', momentum: 0.9, weightDecay: 1e-4, trustCoefficient: 0.001 }],
  ];
  for (const [name, settings] of specs) {
    it(`${name}: a copy loaded from the saved state takes the same next steps as the original`, () => {
      const spec = { ...DEFAULT_OPTIMIZER_SPEC, ...settings } as OptimizerSpec;
      const next = mulberry32(5);
      const random = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() - 0.5), shape);
      const shapes = [[3, 4], [4], [2, 2, 3]];
      const params = shapes.map((s) => tf.variable(random(s)));
      const grads = Array.from({ length: 5 }, () => shapes.map(random));
      const original = createOptimizer(spec);
      for (const g of grads.slice(0, 3)) original.step(params, g, 0.1);
      const copy = createOptimizer(spec);
      copy.loadState(original.state().map((t) => t.clone()), original.counters());
      const copyParams = params.map((p) => tf.variable(p.clone()));
      for (const g of grads.slice(3)) {
        original.step(params, g, 0.1);
        copy.step(copyParams, g, 0.1);
      }
      params.forEach((p, i) => assert.deepEqual(copyParams[i].dataSync(), p.dataSync(), `parameter ${i}`));
      assert.equal(copy.state().length, original.state().length);
      tf.dispose([...params, ...copyParams, ...grads.flat()]);
      original.dispose();
      copy.dispose();
    });
  }
});
