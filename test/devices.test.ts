import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { ringAllReduceMs } from '../lib/launch/ring-benchmark';
import {
  deviceChartRows, deviceGrid, deviceRun, onDevices, placeDevices, projectedEpochSeconds, runDeviceGrid, secondsToReach,
} from '../lib/lessons/devices';
import { lessonConfig, runExperiment } from '../lib/lessons/experiment';
import type { TrainConfig } from '../lib/train/config';

const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-devices-'));
after(() => fs.rmSync(runsDir, { recursive: true, force: true }));

const tiny: Partial<TrainConfig> = {
  model: 'cnn', trainSubset: 256, valSubset: 200, epochs: 2, momentum: 0.9, seed: 3, targetAccuracy: 1, progress: false, runsDir,
};
const ring = { latencyMs: 0.5, bytesPerMs: 1e6 };

describe('devices of lesson 6', () => {
  it('places devices on real workers while the machine has them, in one process beyond', () => {
    assert.deepEqual(placeDevices(2, 32, 2), { numGpus: 2, batchSize: 32, emulated: false });
    assert.deepEqual(placeDevices(4, 32, 2), { numGpus: 1, batchSize: 128, emulated: true });
    assert.deepEqual(onDevices(4, 32, 2), { numGpus: 1, batchSize: 128 });
    assert.deepEqual(onDevices(2, 32, 2), { numGpus: 2, batchSize: 32 });
    assert.throws(() => placeDevices(0, 32, 2), /devices must be a whole number of at least 1 \(got 0\)/);
  });

  it('scales the rate linearly and warms it up from the one-device rate, on real and emulated devices alike', () => {
    const spec = { perDeviceBatch: 32, baseLr: 0.025, warmupEpochs: 2, rule: 'linear + warmup' as const };
    const real = deviceRun({ ...spec, devices: 4, available: 4 });
    const emulated = deviceRun({ ...spec, devices: 4, available: 2 });
    assert.equal(real.label, '4 devices, lr x4 + warmup');
    assert.equal(real.lr, 0.1);
    assert.deepEqual(real.settings, { numGpus: 4, batchSize: 32, baseLr: 0.1, scaleLr: 'none', warmupEpochs: 2, warmupStartFactor: 0.25 });
    assert.deepEqual(emulated.settings, { ...real.settings, numGpus: 1, batchSize: 128 });
    const kept = deviceRun({ ...spec, devices: 4, available: 4, rule: 'kept' });
    assert.equal(kept.label, '4 devices, lr kept');
    assert.deepEqual(kept.settings, { numGpus: 4, batchSize: 32, baseLr: 0.025, scaleLr: 'none', warmupEpochs: 0 });
    assert.equal(deviceRun({ ...spec, devices: 1, available: 1 }).label, '1 device');
    assert.equal(deviceRun({ ...spec, devices: 8, available: 1, warmupEpochs: 0 }).label, '8 devices, lr x8');
  });

  it('builds the grid with one one-device run, and refuses a bad setting before anything trains', () => {
    const runs = deviceGrid(tiny, { devices: [1, 2, 4], perDeviceBatch: 32, baseLr: 0.025, warmupEpochs: 1, available: 2 });
    assert.deepEqual(runs.map((r) => [r.label, r.emulated]), [
      ['1 device', false], ['2 devices, lr kept', false], ['2 devices, lr x2 + warmup', false],
      ['4 devices, lr kept', true], ['4 devices, lr x4 + warmup', true],
    ]);
    assert.equal(runs[0].settings.runsDir, runsDir);
    assert.throws(
      () => deviceGrid({ ...tiny, optimizer: 'adam' as never }, { devices: [1], perDeviceBatch: 32, baseLr: 0.025, warmupEpochs: 1, available: 2 }),
      /--optimizer/,
    );
  });

  it('emulated devices train the same model as real worker processes', async () => {
    const spec = { devices: 2, perDeviceBatch: 32, baseLr: 0.05, warmupEpochs: 1, rule: 'linear + warmup' as const };
    const real = await runExperiment('real', { ...tiny, ...deviceRun({ ...spec, available: 2 }).settings });
    const emulated = await runExperiment('emulated', { ...tiny, ...deviceRun({ ...spec, available: 1 }).settings });
    assert.equal(real.config.numGpus, 2);
    assert.equal(emulated.config.numGpus, 1);
    assert.equal(real.epochs.length, 2);
    for (let i = 0; i < 2; i++) {
      assert.equal(real.epochs[i].lr, emulated.epochs[i].lr);
      assert.ok(Math.abs(real.epochs[i].valLoss - emulated.epochs[i].valLoss) < 1e-4 * real.epochs[i].valLoss,
        `epoch ${i + 1}: validation loss ${real.epochs[i].valLoss} (2 workers) against ${emulated.epochs[i].valLoss} (one process)`);
    }
    assert.equal(real.epochs[0].lr, 0.05, 'the warmup starts at the one-device rate');
    assert.equal(real.epochs[1].lr, 0.1);
  });

  it("projects emulated devices' time from one device's step and the ring, and charts the one-device run under both rules", async () => {
    const runs = deviceGrid(tiny, { devices: [1, 4], perDeviceBatch: 32, baseLr: 0.025, warmupEpochs: 1, available: 1 });
    const results = await runDeviceGrid(runs, ring);
    const [one, kept, scaled] = results;
    assert.equal(one.timeIs, 'measured');
    assert.deepEqual(one.seconds, one.experiment.epochs.map((e) => e.cumulativeTime));
    assert.equal(kept.timeIs, 'projected');
    assert.equal(kept.stepsPerEpoch, 2); // 256 images in steps of 4 x 32
    const stepMs = (one.experiment.epochs[1].epochTime / one.stepsPerEpoch) * 1000;
    const gradientBytes = 225_034 * 4;
    const epochSeconds = (2 * (stepMs + ringAllReduceMs(ring, 4, gradientBytes))) / 1000;
    assert.ok(Math.abs(kept.seconds[0] - epochSeconds) < 1e-9);
    assert.ok(Math.abs(kept.seconds[1] - 2 * epochSeconds) < 1e-9);
    assert.equal(projectedEpochSeconds({ devices: 1, stepMs: 10, ring, gradientBytes: 1e6 }, 1, 3), 0.03);
    assert.notDeepEqual(kept.experiment.epochs.map((e) => e.valAccuracy), scaled.experiment.epochs.map((e) => e.valAccuracy));

    const rows = deviceChartRows(results);
    assert.equal(rows.length, 4 * 2);
    assert.deepEqual(rows.filter((r) => r.devices === 1).map((r) => r.rule), ['lr kept', 'lr kept', 'lr x N + warmup', 'lr x N + warmup']);
    const reached = secondsToReach(one, 0);
    assert.equal(reached, one.seconds[0]);
    assert.equal(secondsToReach(one, 1.01), null);
  });

  it('anchors emulated devices on the largest real run: its step plus the extra ring cost', async () => {
    const runs = deviceGrid(tiny, { devices: [1, 2, 4], rules: ['kept'], perDeviceBatch: 32, baseLr: 0.025, warmupEpochs: 1, available: 2 });
    assert.deepEqual(runs.map((r) => r.emulated), [false, false, true]);
    const [, two, four] = await runDeviceGrid(runs, ring);
    assert.equal(two.timeIs, 'measured');
    assert.equal(four.timeIs, 'projected');
    const anchor = { devices: 2, stepMs: (two.experiment.epochs[1].epochTime / two.stepsPerEpoch) * 1000, ring, gradientBytes: 225_034 * 4 };
    const extraMs = ringAllReduceMs(ring, 4, anchor.gradientBytes) - ringAllReduceMs(ring, 2, anchor.gradientBytes);
    assert.ok(extraMs > 0);
    assert.ok(Math.abs(four.seconds[0] - (four.stepsPerEpoch * (anchor.stepMs + extraMs)) / 1000) < 1e-9);
    assert.equal(projectedEpochSeconds(anchor, 4, four.stepsPerEpoch), four.seconds[0]);
  });

  it('refuses, before training, to project time without a real run first', async () => {
    const runs = deviceGrid(tiny, { devices: [4], perDeviceBatch: 32, baseLr: 0.025, warmupEpochs: 1, available: 1 });
    const before = fs.readdirSync(runsDir).length;
    await assert.rejects(runDeviceGrid(runs, ring), /take their time per step from a real run, and the grid has none: include 1 device/);
    assert.equal(fs.readdirSync(runsDir).length, before, 'nothing trained');
  });
});

describe('lesson settings', () => {
  it('refuses a bad setting naming the setting and its flag, before anything runs', () => {
    assert.throws(() => lessonConfig({ optimizer: 'adam' as never }), /^UsageError: optimizer \(--optimizer\) must be one of sgd, novograd, lamb, lars \(got 'adam'\)/);
    const tooMany = os.availableParallelism() + 1;
    assert.throws(
      () => lessonConfig({ numGpus: tooMany }),
      new RegExp(`numGpus \\(--num-gpus\\) ${tooMany} asks for more devices than this machine has .* oversubscribe \\(--oversubscribe\\)`),
    );
    assert.equal(lessonConfig({ numGpus: tooMany, oversubscribe: true }).numGpus, tooMany);
  });

  it('runs a planned run as given', async () => {
    const run = await runExperiment({ label: 'planned', settings: { ...tiny, epochs: 1, batchSize: 64 } }, { lesson: 'test' });
    assert.equal(run.label, 'planned');
    assert.equal(run.config.batchSize, 64);
    assert.equal(run.epochs.length, 1);
  });
});
