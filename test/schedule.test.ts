import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LearningRateSchedule, linearLr, ScheduleConfigError, scaledLr, type ScheduleOptions } from '../lib/train/schedule';

const ROOT = path.resolve(__dirname, '..', '..');
/** The project's own reference trajectories, written by bench/reference/torch_references.py. */
const TORCH_FIXTURE = path.join(ROOT, 'test', 'fixtures', 'optimizers-torch.json');
/** Optional extra check: the shared reference file beside the checkout, when there is one. */
const SHARED = path.resolve(ROOT, '..', 'shared', 'reference', 'optimizers.json');
const SHARED_SKIP = fs.existsSync(SHARED)
  ? false
  : `${SHARED} not found (an optional extra check beside the checkout; test/fixtures/optimizers-torch.json holds torch's rates)`;
/**
 * The first 8 rates of the LinearLR case of test/fixtures/optimizers-torch.json ('sgd momentum 0.9,
 * LinearLR(1/4, 5)'): torch.optim.lr_scheduler.LinearLR(start_factor=1/4, total_iters=5) from lr 0.08,
 * read from the optimizer before each step, the scheduler stepped in its closed form (torch 1.13;
 * bench/reference/torch_references.py says how).
 */
const REFERENCE_LRS = [0.02, 0.032, 0.044000000000000004, 0.055999999999999994, 0.068, 0.08, 0.08, 0.08];

type LrCases = { cases: { name: string; lr: number[] }[] };
/** The lr list of a reference file's LinearLR case. */
function linearLrCase(file: string): number[] {
  const warm = (JSON.parse(fs.readFileSync(file, 'utf8')) as LrCases).cases.filter((c) => c.name.includes('LinearLR'));
  assert.equal(warm.length, 1, `${file}: expected one LinearLR case`);
  return warm[0].lr;
}

const schedule = (overrides: Partial<ScheduleOptions>) =>
  new LearningRateSchedule({ baseLr: 0.02, workers: 4, scaleRule: 'linear', warmupEpochs: 5, warmupUnit: 'epoch', ...overrides });

describe('scaling rules', () => {
  it('scales by N, sqrt(N) or not at all', () => {
    assert.equal(scaledLr(0.01, 4, 'linear'), 0.04);
    assert.equal(scaledLr(0.01, 4, 'sqrt'), 0.02);
    assert.equal(scaledLr(0.01, 4, 'none'), 0.01);
    assert.equal(scaledLr(0.1, 1, 'linear'), 0.1);
    assert.equal(scaledLr(0.1, 1, 'sqrt'), 0.1);
    assert.equal(scaledLr(0.05, 8, 'sqrt'), 0.05 * Math.sqrt(8));
  });

  it('refuses bad inputs, naming the flag', () => {
    assert.throws(() => scaledLr(0.01, 0, 'linear'), ScheduleConfigError);
    assert.throws(() => scaledLr(0.01, 2.5, 'linear'), /the number of workers must be a positive integer/);
    assert.throws(() => scaledLr(-1, 2, 'linear'), /--base-lr must be a positive finite number \(got -1\)/);
    assert.throws(() => scaledLr(0.01, 2, 'cubic' as 'linear'), /--scale-lr must be one of linear, sqrt, none \(got 'cubic'\)/);
  });
});

describe("LinearLR (PyTorch's closed form)", () => {
  it("gives torch's learning rates exactly: base 0.08, start 1/4, 5 steps", () => {
    const factor = linearLr({ startFactor: 1 / 4, totalIters: 5 });
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((t) => 0.08 * factor(t)), REFERENCE_LRS);
    assert.deepEqual(linearLrCase(TORCH_FIXTURE).slice(0, REFERENCE_LRS.length), REFERENCE_LRS);
  });

  it("agrees with the lr list of the project's torch fixture", () => {
    const lr = linearLrCase(TORCH_FIXTURE);
    assert.ok(lr.length >= 8);
    const factor = linearLr({ startFactor: 1 / 4, totalIters: 5 });
    assert.deepEqual(lr.map((_, t) => 0.08 * factor(t)), lr);
  });

  it('agrees with the lr lists stored in the shared reference file (when present)', { skip: SHARED_SKIP }, () => {
    const lr = linearLrCase(SHARED);
    const factor = linearLr({ startFactor: 1 / 4, totalIters: 5 });
    assert.deepEqual(lr.map((_, t) => 0.08 * factor(t)), lr);
  });

  it("reproduces the example of PyTorch's documentation (start 0.5, 4 iterations, lr 0.05)", () => {
    const factor = linearLr({ startFactor: 0.5, totalIters: 4 });
    const expected = [0.025, 0.03125, 0.0375, 0.04375, 0.05, 0.05, 0.05];
    [0, 1, 2, 3, 4, 5, 99].forEach((t, i) => assert.ok(Math.abs(0.05 * factor(t) - expected[i]) < 1e-15, `t = ${t}: ${0.05 * factor(t)}`));
  });

  it('supports an end factor and refuses factors PyTorch refuses', () => {
    const factor = linearLr({ startFactor: 1, endFactor: 0.5, totalIters: 2 });
    assert.deepEqual([0, 1, 2, 3].map(factor), [1, 0.75, 0.5, 0.5]);
    assert.equal(linearLr({ startFactor: 0.25, totalIters: 0 })(0), 1);
    assert.throws(() => linearLr({ startFactor: 0, totalIters: 5 }), /start factor must be in \(0, 1\]/);
    assert.throws(() => linearLr({ startFactor: 1.5, totalIters: 5 }), ScheduleConfigError);
    assert.throws(() => linearLr({ startFactor: 0.5, endFactor: 2, totalIters: 5 }), /end factor must be in \[0, 1\]/);
    assert.throws(() => linearLr({ startFactor: 0.5, totalIters: -1 }), /total iterations must be a non-negative integer/);
    assert.throws(() => linearLr({ startFactor: 0.5, totalIters: 5 })(1.5), /scheduler step must be a non-negative integer/);
  });
});

describe('LearningRateSchedule', () => {
  it("per epoch, as the course steps LinearLR(start_factor=1/num_gpus) after each epoch: the reference's list", () => {
    const s = schedule({});
    assert.equal(s.peakLr, 0.08);
    assert.equal(s.startFactor, 1 / 4);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map((e) => s.lr(e, 0, 100)), REFERENCE_LRS);
    for (const step of [1, 50, 99]) assert.equal(s.lr(2, step, 100), s.lr(2, 0, 100));
  });

  it('per epoch starts from the unscaled rate with the linear rule (1/num_gpus)', () => {
    for (const workers of [1, 2, 3, 4, 8]) {
      const s = schedule({ baseLr: 0.1, workers, warmupEpochs: 5 });
      assert.ok(Math.abs(s.lr(0, 0, 10) - 0.1) < 1e-15, `${workers} workers: ${s.lr(0, 0, 10)}`);
      assert.equal(s.lr(5, 0, 10), 0.1 * workers);
      assert.equal(s.lr(30, 9, 10), 0.1 * workers);
    }
  });

  it('per iteration (Goyal et al.): a little higher every step, reaching the peak after warmup-epochs x steps', () => {
    const s = schedule({ warmupUnit: 'iteration' });
    const steps = 10;
    const lrs: number[] = [];
    for (let e = 0; e < 7; e++) for (let k = 0; k < steps; k++) lrs.push(s.lr(e, k, steps));
    assert.equal(lrs[0], 0.02);
    for (let t = 1; t <= 50; t++) assert.ok(lrs[t] > lrs[t - 1], `step ${t}`);
    assert.ok(lrs.slice(50).every((lr) => lr === 0.08));
    assert.equal(lrs[25], 0.08 * (0.25 + (0.75 * 25) / 50));
    const perEpoch = schedule({});
    for (let e = 0; e < 7; e++) assert.ok(Math.abs(lrs[e * steps] - perEpoch.lr(e, 0, steps)) < 1e-15, `epoch ${e}`);
  });

  it('without warmup every step trains at the scaled rate', () => {
    const s = schedule({ warmupEpochs: 0, scaleRule: 'sqrt' });
    assert.equal(s.lr(0, 0, 5), 0.04);
    assert.equal(s.lr(3, 4, 5), 0.04);
    assert.equal(s.describe(), 'lr 0.04 (0.02 scaled by the sqrt rule for 4 workers), no warmup');
    assert.equal(schedule({}).describe(), 'lr 0.08 (0.02 scaled by the linear rule for 4 workers), linear warmup from 0.25 x lr over 5 epochs, per epoch');
  });

  it('takes another start factor and refuses bad settings', () => {
    assert.equal(schedule({ warmupStartFactor: 0.5 }).lr(0, 0, 1), 0.04);
    assert.throws(() => schedule({ warmupEpochs: -1 }), /--warmup-epochs must be a non-negative integer \(got -1\)/);
    assert.throws(() => schedule({ warmupEpochs: 1.5 }), /--warmup-epochs must be a non-negative integer/);
    assert.throws(() => schedule({ warmupStartFactor: 0 }), /warmup start factor must be in \(0, 1\]/);
    assert.throws(() => schedule({ warmupUnit: 'batch' as 'epoch' }), /warmup unit must be one of epoch, iteration/);
    assert.throws(() => schedule({}).lr(0, 10, 10), /step 10 is past the epoch's 10 steps/);
    assert.throws(() => schedule({}).lr(-1, 0, 10), /the epoch index must be a non-negative integer/);
  });
});
