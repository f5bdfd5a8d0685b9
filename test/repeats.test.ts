import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { fitRingCostModel, ringAllReduceMs, type RingTiming } from '../lib/launch/ring-benchmark';
import { countDeadUnits, deadUnitsOfRun } from '../lib/lessons/dead-units';
import { fitCriticalBatch, reachOf } from '../lib/lessons/critical-batch';
import type { DeviceResult } from '../lib/lessons/devices';
import { runExperiment, type Experiment } from '../lib/lessons/experiment';
import {
  compareFinal, finalSpread, rankByFinal, repeated, runRepeated, runsAtOnce, seedRuns, stepLossRows, type RepeatedExperiment,
} from '../lib/lessons/repeats';
import { buildModel } from '../lib/models/index';
import { DEFAULT_CONFIG, type TrainConfig } from '../lib/train/config';
import type { EpochMetrics } from '../lib/train/metrics';
import { isAlive } from './support/processes';

const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-repeats-'));
after(() => fs.rmSync(runsDir, { recursive: true, force: true }));

const tiny: Partial<TrainConfig> = {
  model: 'cnn', batchSize: 32, trainSubset: 256, valSubset: 200, epochs: 2, momentum: 0.9, baseLr: 0.05, targetAccuracy: 1, progress: false, runsDir,
};

/** A finished run with these final accuracies, for the summaries. */
function fakeRun(accuracy: number, losses: number[] = []): Experiment {
  const m = { epoch: 1, valAccuracy: accuracy, valLoss: 1 - accuracy, cumulativeTime: 1, imagesPerSec: 1 } as EpochMetrics;
  return {
    label: 'x', config: { ...DEFAULT_CONFIG, batchSize: 32 }, epochs: [m], outcome: 'completed', diverged: null, runDir: '',
    steps: losses.map((loss, i) => ({ epoch: 1, step: i + 1, steps: 100, loss })), validations: [],
  };
}
const fake = (label: string, accuracies: number[]): RepeatedExperiment => ({
  label, settings: {}, seeds: accuracies.map((_, i) => i), runs: accuracies.map((a) => fakeRun(a)),
});

describe('repeated runs: the summaries', () => {
  it('claims a difference only when the ranges over the seeds do not overlap', () => {
    const a = fake('A', [0.85, 0.86, 0.87]);
    const b = fake('B', [0.80, 0.81, 0.82]);
    const c = fake('C', [0.84, 0.90, 0.88]);
    assert.deepEqual(finalSpread(a), { mean: 0.86, min: 0.85, max: 0.87, n: 3 });
    assert.match(compareFinal(a, b), /^A: 0\.860 \(0\.850-0\.870\) against B: 0\.810 \(0\.800-0\.820\) .*over 3 and 3 seeds, all 10,000 test images\): A is better by 0\.050, and the ranges do not overlap\.$/);
    assert.match(compareFinal(b, a), /A is better by 0\.050/);
    assert.match(compareFinal(a, c), /the ranges overlap, so these runs show no difference between them\.$/);
    assert.match(compareFinal(a, b, { metric: 'valLoss' }), /A is better by 0\.050/, 'a lower loss is better');
    assert.match(compareFinal(fake('one', [0.9]), fake('other', [0.1])), /the ranges overlap/, 'one seed proves nothing');
    assert.deepEqual(rankByFinal([b, c, a]).map((r) => r.label), ['C', 'A', 'B']);
    const nan = fake('diverged at once', [Number.NaN, 0.5, 0.5]);
    nan.runs[0].outcome = 'diverged';
    assert.deepEqual(rankByFinal([nan, b, a]).map((r) => r.label), ['A', 'B', 'diverged at once'], 'no number: last');
    assert.match(compareFinal(a, nan), /diverged at once: 1 diverged, 2 completed, each counted at its last epoch/);
  });

  it('labels and seeds every run, and averages the per-step losses over the seeds', () => {
    const plan = repeated('lr 0.1', { baseLr: 0.1 }, [4, 5]);
    assert.deepEqual(seedRuns([plan]), [
      { label: 'lr 0.1, seed 4', settings: { baseLr: 0.1, seed: 4 } }, { label: 'lr 0.1, seed 5', settings: { baseLr: 0.1, seed: 5 } },
    ]);
    assert.throws(() => repeated('none', {}, []), /at least one seed/);
    const r: RepeatedExperiment = { label: 'r', settings: {}, seeds: [0, 1], runs: [fakeRun(0.5, [2, 1, 0.5]), fakeRun(0.5, [4, 3])] };
    assert.deepEqual(stepLossRows([r]), [{ run: 'r', images: 32, loss: 3 }, { run: 'r', images: 64, loss: 2 }]);
    // A seed resumed in epoch 2 has only its later steps: seeds line up by step, not by position.
    const resumed = fakeRun(0.5);
    resumed.steps = [{ epoch: 2, step: 1, steps: 2, loss: 1 }, { epoch: 2, step: 2, steps: 2, loss: 1 }];
    const whole = fakeRun(0.5);
    whole.steps = [1, 2, 3, 4].map((k) => ({ epoch: k <= 2 ? 1 : 2, step: k <= 2 ? k : k - 2, steps: 2, loss: 3 }));
    assert.deepEqual(stepLossRows([{ label: 'r', settings: {}, seeds: [0, 1], runs: [whole, resumed] }]), [{ run: 'r', images: 96, loss: 2 }, { run: 'r', images: 128, loss: 2 }]);
  });

  it('trains one run per core on one-core engines, one at a time when a run takes the machine', () => {
    assert.equal(runsAtOnce([{ backend: 'wasm', numGpus: 1, numNodes: 1 }], 2), 2);
    assert.equal(runsAtOnce([{ backend: 'wasm', numGpus: 2, numNodes: 1 }], 2), 1);
    assert.equal(runsAtOnce([{ backend: 'cpu', numGpus: 2, numNodes: 1 }], 16), 8);
    assert.equal(runsAtOnce([{ backend: 'tensorflow', numGpus: 1, numNodes: 1 }], 16), 1);
    assert.equal(runsAtOnce([{ backend: 'wasm', numGpus: 1, numNodes: 2 }], 16), 1);
  });
});

describe('runRepeated (real training, in child processes)', () => {
  it('trains seeds side by side exactly as one after another in this process, in the order of the seeds', { timeout: 300_000 }, async () => {
    const plans = [repeated('lr 0.05', tiny, [1, 2]), repeated('lr 0.1', { ...tiny, baseLr: 0.1 }, [1, 2])];
    const side = await runRepeated(plans, { lesson: 'repeats-test', atOnce: 2 });
    const here = await runRepeated(plans, { lesson: 'repeats-test-here', atOnce: 1 });
    assert.deepEqual(side.map((r) => r.label), ['lr 0.05', 'lr 0.1']);
    for (let p = 0; p < plans.length; p++) {
      assert.deepEqual(side[p].runs.map((r) => r.config.seed), [1, 2]);
      assert.deepEqual(side[p].runs.map((r) => r.label), [`${plans[p].label}, seed 1`, `${plans[p].label}, seed 2`]);
      for (let k = 0; k < 2; k++) {
        assert.deepEqual(side[p].runs[k].epochs.map((e) => [e.valLoss, e.valAccuracy]), here[p].runs[k].epochs.map((e) => [e.valLoss, e.valAccuracy]));
        assert.equal(side[p].runs[k].steps.length, 2 * 8, 'every step of the child reached this process');
        assert.deepEqual(side[p].runs[k].steps, here[p].runs[k].steps);
        assert.ok(fs.existsSync(path.join(side[p].runs[k].runDir, 'experiment.json')), 'tagged for a rerun to find');
      }
    }
    assert.notDeepEqual(side[0].runs[0].epochs.map((e) => e.valLoss), side[0].runs[1].epochs.map((e) => e.valLoss), 'the seeds differ');
  });

  it('gives a run of two workers both cores, and trains one-worker runs two at a time around it', { timeout: 300_000 }, async () => {
    const plans = [repeated('one worker', tiny, [1]), repeated('two workers', { ...tiny, numGpus: 2, batchSize: 16 }, [1]), repeated('one worker again', tiny, [2, 3])];
    const [one, two, again] = await runRepeated(plans, { atOnce: 2 });
    assert.equal(two.runs[0].config.numGpus, 2);
    const span = (e: Experiment) => {
      const info = JSON.parse(fs.readFileSync(path.join(e.runDir, 'run.json'), 'utf8')) as { startedAt: string };
      const end = JSON.parse(fs.readFileSync(path.join(e.runDir, 'end.json'), 'utf8')) as { finishedAt: string };
      return [Date.parse(info.startedAt), Date.parse(end.finishedAt)];
    };
    const [twoStart, twoEnd] = span(two.runs[0]);
    for (const e of [one.runs[0], ...again.runs]) {
      const [start, end] = span(e);
      assert.ok(end <= twoStart || start >= twoEnd, `${e.label} trained while the two-worker run held both cores`);
    }
    const [a, b] = again.runs.map(span);
    assert.ok(a[0] < b[1] && b[0] < a[1], 'the one-worker runs after it trained side by side');
  });

  it('stops every run when one fails, naming it, and leaves no process behind', { timeout: 120_000 }, async () => {
    const missing = path.join(runsDir, 'no-data-here');
    // The broken run starts once the short one is done, while the long one trains.
    const plans = [repeated('long', { ...tiny, trainSubset: 20_000, epochs: 5 }, [0]), repeated('short', tiny, [0]), repeated('broken', { ...tiny, dataDir: missing }, [0])];
    const before = new Set(fs.readdirSync(runsDir));
    let pids: number[] = [];
    const watch = setInterval(() => {
      pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
        try {
          const parent = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
          return parent === process.pid && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('experiment-process.js');
        } catch { return false; }
      }).concat(pids);
    }, 100);
    await assert.rejects(runRepeated(plans, { atOnce: 2 }), (e: Error) => /^broken, seed 0: .*no-data-here/.test(e.message));
    clearInterval(watch);
    assert.ok(pids.length >= 1, 'the runs trained in child processes');
    assert.deepEqual([...new Set(pids)].filter(isAlive), [], 'child processes left behind');
    const long = fs.readdirSync(runsDir).filter((d) => !before.has(d)).map((d) => path.join(runsDir, d, 'end.json')).filter(fs.existsSync);
    assert.ok(long.some((f) => /interrupted|failed/.test(fs.readFileSync(f, 'utf8'))), 'the stopped run recorded its end');
  });
});

describe('validation within epochs (validateEvery)', () => {
  it('validates every N steps on a subset and at epoch ends on all, without changing the training or its time', { timeout: 120_000 }, async () => {
    const plain = await runExperiment('plain', tiny);
    const probed = await runExperiment('probed', { ...tiny, validateEvery: 3, validateEveryImages: 50 });
    assert.deepEqual(probed.epochs.map((e) => [e.valLoss, e.valAccuracy, e.trainLoss]), plain.epochs.map((e) => [e.valLoss, e.valAccuracy, e.trainLoss]));
    // 8 steps an epoch: within it after steps 3 and 6 (50 images), then at its end (200).
    assert.deepEqual(probed.validations.map((v) => [v.epoch, v.step, v.globalStep, v.images]), [
      [1, 3, 3, 50], [1, 6, 6, 50], [1, 8, 8, 200], [2, 3, 11, 50], [2, 6, 14, 50], [2, 8, 16, 200],
    ]);
    assert.deepEqual(plain.validations.map((v) => [v.step, v.images]), [[8, 200], [8, 200]]);
    const ends = probed.validations.filter((v) => v.images === 200);
    assert.deepEqual(ends.map((v) => [v.valAccuracy, v.seconds]), probed.epochs.map((e) => [e.valAccuracy, e.cumulativeTime]));
    const seconds = probed.validations.map((v) => v.seconds);
    assert.deepEqual(seconds, [...seconds].sort((a, b) => a - b), 'training time only grows');
  });
});

describe('dead ReLU units', () => {
  it('counts the units that output zero for every image, on a run and on its checkpoint', { timeout: 120_000 }, async () => {
    await initEngine('wasm');
    const model = buildModel('cnn', 0);
    const images = tf.randomUniform([16, 28, 28, 1]) as tf.Tensor4D;
    const before = countDeadUnits(model, images);
    assert.deepEqual(before.map((d) => [d.layer, d.units]), [['conv1', 32], ['conv2', 64], ['fc1', 128]]);
    const fc1 = model.getLayer('fc1');
    const [kernel, bias] = fc1.getWeights();
    const killed = bias.arraySync() as number[];
    for (let i = 0; i < 10; i++) killed[i] = -1e6;
    fc1.setWeights([kernel, tf.tensor1d(killed)]);
    const after = countDeadUnits(model, images);
    assert.ok(after[2].dead >= 10 && after[2].dead >= before[2].dead, `fc1: ${after[2].dead} dead after killing 10, ${before[2].dead} before`);
    tf.dispose(images);
    model.dispose();

    const [run] = (await runRepeated([repeated('measured', tiny, [0])], { atOnce: 1 }))[0].runs;
    const { start, end } = await deadUnitsOfRun(run, 100);
    assert.equal(start.epoch, 0);
    assert.ok(end != null);
    assert.equal(end.epoch, 2);
    assert.deepEqual(start.layers.map((l) => l.units), [32, 64, 128]);
    assert.ok(end.layers.every((l) => l.dead >= 0 && l.dead <= l.units));
  });
});

describe('the ring cost model fit', () => {
  const timing = (floats: number, ms: number): RingTiming => ({ name: `${floats}`, workers: 2, floats, ms } as RingTiming);
  it('recovers α and β from timings that follow the model, and fits every size in relative terms', () => {
    const truth = { latencyMs: 0.25, bytesPerMs: 2e6 };
    const sizes = [1, 1024, 262_144, 17_117_574];
    const fit = fitRingCostModel(sizes.map((f) => timing(f, ringAllReduceMs(truth, 2, f * 4))));
    assert.ok(Math.abs(fit.latencyMs / truth.latencyMs - 1) < 1e-9 && Math.abs(fit.bytesPerMs / truth.bytesPerMs - 1) < 1e-9, JSON.stringify(fit));
    // The largest buffer 20% slower than the model: a plain least-squares fit would move α by
    // milliseconds to follow it; the relative fit keeps the 4-byte point close.
    const skewed = sizes.map((f, i) => timing(f, ringAllReduceMs(truth, 2, f * 4) * (i === sizes.length - 1 ? 1.2 : 1)));
    const relative = fitRingCostModel(skewed);
    const small = ringAllReduceMs(relative, 2, 4) / skewed[0].ms;
    assert.ok(Math.abs(small - 1) < 0.2, `the 4-byte all-reduce predicted at ${small.toFixed(2)} of its measured time`);
  });
});

describe('the critical batch (lesson 06)', () => {
  it("recovers S_min and B_crit from steps that follow McCandlish et al.'s curve, and refuses what it cannot fit", () => {
    const curve = (b: number) => 400 * (1 + 128 / b);
    const fit = fitCriticalBatch([32, 64, 128, 256].map((b) => ({ globalBatch: b, steps: curve(b) })));
    assert.ok(fit != null && Math.abs(fit.minSteps - 400) < 1e-6 && Math.abs(fit.criticalBatch - 128) < 1e-6, JSON.stringify(fit));
    assert.equal(fitCriticalBatch([{ globalBatch: 32, steps: 10 }]), null);
    assert.equal(fitCriticalBatch([{ globalBatch: 32, steps: 10 }, { globalBatch: 64, steps: 20 }]), null, 'more steps with a larger batch: no such curve');
  });

  it('reads when a run first reached the target from its validations, projecting the time of emulated devices', () => {
    const v = (globalStep: number, valAccuracy: number, seconds: number) => ({ epoch: 1, step: globalStep, globalStep, seconds, images: 100, valLoss: 1, valAccuracy, trainLoss: 1 });
    const experiment = { ...fakeRun(0.9), validations: [v(5, 0.5, 1), v(10, 0.81, 2), v(20, 0.9, 4)] };
    const result = {
      label: '4 devices', globalBatch: 128, seed: 0, experiment, stepsPerEpoch: 20, seconds: [8], timeIs: 'measured',
    } as unknown as DeviceResult;
    assert.deepEqual(reachOf(result, 0.8), { label: '4 devices', globalBatch: 128, seed: 0, steps: 10, images: 1280, seconds: 2, timeIs: 'measured' });
    assert.equal(reachOf({ ...result, timeIs: 'projected' }, 0.8).seconds, 4, '10 of 20 steps of a projected 8 s epoch');
    assert.equal(reachOf(result, 0.95).steps, null);
  });
});
