import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  DATA_PARALLEL_EFFICIENCY, SMOKE_PROBE, VALIDATION_SPEED_UP, WARN_ABOVE_SECONDS, WORKER_START_SECONDS, estimateBundle, estimateLines, estimateRuns,
  formatDuration, measureImagesPerSec, showEstimate, type PlannedRun, type Probe,
} from '../lib/lessons/estimate';
import type { ProbeOptions, ThroughputProbe } from '../lib/lessons/probe';
import { MIME } from '../lib/plot/types';

/** A probe that reports `rate` images/s for every model, on wasm, and counts its calls. */
function fakeProbe(rate: number): Probe & { calls: number } {
  const probes = new Map<string, ThroughputProbe>();
  const probe = async (model: ThroughputProbe['model'], batchSize: number): Promise<ThroughputProbe> => {
    probe.calls++;
    const key = `${model}/${batchSize}`;
    if (!probes.has(key)) {
      probes.set(key, {
        engine: 'wasm', engineDescription: 'wasm (fake)', model, batchSize, microBatch: batchSize,
        imagesPerSec: rate, timedSteps: 1, timedSeconds: 1, warmupSteps: 1, warmupSeconds: 1,
      });
    }
    return probes.get(key) as ThroughputProbe;
  };
  probe.calls = 0;
  return probe;
}

const small = { model: 'cnn' as const, batchSize: 32, epochs: 2, trainSubset: 3_200, valSubset: 600 };

describe('measureImagesPerSec (the real probe, wasm)', () => {
  it('measures a positive finite rate for the cnn, leaves no tensors behind, and measures each batch once', async () => {
    const before = tf.memory().numTensors;
    const first = await measureImagesPerSec('cnn', 32, { backend: 'wasm', budgetSeconds: 0.5 });
    assert.equal(tf.memory().numTensors, before, 'tensors left behind by the probe');
    assert.ok(Number.isFinite(first.imagesPerSec) && first.imagesPerSec > 0, `imagesPerSec ${first.imagesPerSec}`);
    assert.equal(first.engine, 'wasm');
    assert.equal(first.model, 'cnn');
    assert.equal(first.batchSize, 32);
    assert.equal(first.warmupSteps, 2);
    assert.ok(first.timedSteps >= 1 && first.timedSteps <= 50, `timed steps ${first.timedSteps}`);

    const started = performance.now();
    const again = await measureImagesPerSec('cnn', 32, { backend: 'wasm', budgetSeconds: 0.5 });
    assert.equal(again, first, 'the second probe of the same model and batch was measured again');
    assert.ok(performance.now() - started < 50, 'a cached probe took time');

    const other = await measureImagesPerSec('cnn', 16, { backend: 'wasm', budgetSeconds: 0.2 });
    assert.notEqual(other, first);
    assert.equal(other.batchSize, 16);
    assert.equal(tf.memory().numTensors, before, 'tensors left behind by the second probe');
  });

  it('runs one warm-up and one timed step when a step outlasts the budget', async () => {
    const probe = await measureImagesPerSec('cnn', 64, { backend: 'wasm', budgetSeconds: 0 });
    assert.equal(probe.warmupSteps, 1);
    assert.equal(probe.timedSteps, 1);
  });
});

describe('estimateRuns', () => {
  it('counts the epochs of training and validation at the probed rate', async () => {
    const estimate = await estimateRuns([{ label: 'one', settings: small }], { probe: fakeProbe(100), cores: 2 });
    const [run] = estimate.runs;
    assert.equal(run.workers, 1);
    assert.equal(run.globalBatch, 32);
    assert.equal(run.trainImages, 6_400);
    assert.equal(run.valImages, 1_200);
    assert.equal(run.imagesPerSec, 100);
    assert.equal(run.seconds, 6_400 / 100 + 1_200 / (VALIDATION_SPEED_UP * 100));
    assert.equal(estimate.totalSeconds, run.seconds);
    assert.equal(estimate.engine, 'wasm');
  });

  it('drops the incomplete last global batch, and reads null subsets as the whole sets', async () => {
    const estimate = await estimateRuns([
      { label: 'ragged', settings: { ...small, batchSize: 512 } },
      { label: 'all', settings: { ...small, epochs: 1, trainSubset: null, valSubset: null } },
    ], { probe: fakeProbe(100), cores: 2 });
    assert.equal(estimate.runs[0].trainImages, 2 * 6 * 512);
    assert.equal(estimate.runs[1].trainImages, 60_000);
    assert.equal(estimate.runs[1].valImages, 10_000);
  });

  it('scales with the workers up to the cores, at the stated efficiency', async () => {
    // The `cores` option plays other machines; oversubscribe lets 4 workers pass this machine's device check.
    const runs: PlannedRun[] = [1, 2, 4].map((n) => ({ label: `${n}`, settings: { ...small, numGpus: n, trainSubset: 12_800, oversubscribe: true } }));
    const onTwo = await estimateRuns(runs, { probe: fakeProbe(100), cores: 2 });
    assert.deepEqual(onTwo.runs.map((r) => r.imagesPerSec), [100, 200 * DATA_PARALLEL_EFFICIENCY, 200 * DATA_PARALLEL_EFFICIENCY]);
    assert.deepEqual(onTwo.runs.map((r) => r.globalBatch), [32, 64, 128]);
    const onEight = await estimateRuns(runs, { probe: fakeProbe(100), cores: 8 });
    assert.deepEqual(onEight.runs.map((r) => r.imagesPerSec), [100, 200 * DATA_PARALLEL_EFFICIENCY, 400 * DATA_PARALLEL_EFFICIENCY]);
    const four = onEight.runs[2];
    assert.equal(four.seconds, WORKER_START_SECONDS + 25_600 / four.imagesPerSec + 1_200 / (VALIDATION_SPEED_UP * four.imagesPerSec));
    assert.equal(onEight.runs[0].seconds, 25_600 / 100 + 1_200 / (VALIDATION_SPEED_UP * 100));
  });

  it('lists each probed model and batch once, and sums the runs', async () => {
    const probe = fakeProbe(100);
    const estimate = await estimateRuns([
      { label: 'a', settings: small }, { label: 'b', settings: { ...small, baseLr: 0.1 } }, { label: 'c', settings: { ...small, batchSize: 64 } },
    ], { probe, cores: 2 });
    assert.equal(estimate.probes.length, 2);
    assert.equal(estimate.totalSeconds, estimate.runs.reduce((s, r) => s + r.seconds, 0));
  });

  it('divides the total by the runs trained side by side, and says so', async () => {
    const runs = [{ label: 'a', settings: small }, { label: 'b', settings: small }, { label: 'c', settings: small }];
    const one = await estimateRuns(runs, { probe: fakeProbe(100), cores: 2 });
    const two = await estimateRuns(runs, { probe: fakeProbe(100), cores: 2, atOnce: 2 });
    assert.equal(two.totalSeconds, one.totalSeconds / 2);
    assert.match(estimateLines(two).notes.join(' '), /2 runs train side by side/);
    assert.doesNotMatch(estimateLines(one).notes.join(' '), /side by side/);
  });

  it('rejects settings the command line rejects, and more devices than this machine has', async () => {
    await assert.rejects(estimateRuns([{ label: 'bad', settings: { ...small, batchSize: 0 } }], { probe: fakeProbe(100) }), /batch-size/);
    await assert.rejects(estimateRuns([{ label: 'too many', settings: { ...small, numGpus: 512 } }], { probe: fakeProbe(100) }), /numGpus \(--num-gpus\) 512 asks for more devices/);
  });
});

describe('the estimate display', () => {
  const runs: PlannedRun[] = [{ label: 'full run', settings: { ...small, epochs: 1, trainSubset: null, valSubset: null } }];
  // 60,000 + 10,000 / 3 images: the rate that takes exactly WARN_ABOVE_SECONDS.
  const thresholdRate = (60_000 + 10_000 / VALIDATION_SPEED_UP) / WARN_ABOVE_SECONDS;

  it('warns of a GPU-sized job above the threshold', async () => {
    const estimate = await estimateRuns(runs, { probe: fakeProbe(thresholdRate * 0.9), cores: 2 });
    assert.ok(estimate.totalSeconds > WARN_ABOVE_SECONDS);
    const { warning } = estimateLines(estimate, 'full');
    assert.match(warning ?? '', /GPU-sized job: about 33 min here/);
    assert.match(warning ?? '', /H100/);
    assert.match(warning ?? '', /quick setting/);
    const bundle = estimateBundle(estimate, 'full');
    assert.match(bundle[MIME.html] as string, /GPU-sized/);
    assert.match(bundle[MIME.plain] as string, /WARNING: This is a GPU-sized job/);
  });

  it('does not warn below it, and names the engine and the probe', async () => {
    const estimate = await estimateRuns(runs, { probe: fakeProbe(thresholdRate * 1.1), cores: 2 });
    assert.ok(estimate.totalSeconds < WARN_ABOVE_SECONDS);
    const lines = estimateLines(estimate, 'quick');
    assert.equal(lines.warning, null);
    assert.equal(lines.summary, `Quick setting: about 27 min on this machine (engine wasm; measured ${Math.round(thresholdRate * 1.1)} images/s for model cnn at batch 32 on one core)`);
    assert.ok(lines.notes.some((n) => /upper bounds/.test(n)), 'no early-stop caveat');
    const text = estimateBundle(estimate, 'quick')[MIME.plain] as string;
    assert.doesNotMatch(text, /GPU-sized/);
    assert.match(text, /full run: cnn, global batch 32, 60,000 images, ≤ 27 min/);
  });

  it('drops the early-stop caveat when no run can stop early', async () => {
    const estimate = await estimateRuns([{ label: 'x', settings: { ...small, targetAccuracy: 1 } }], { probe: fakeProbe(100), cores: 2 });
    assert.ok(!estimateLines(estimate).notes.some((n) => /upper bounds/.test(n)));
  });
});

describe('showEstimate', () => {
  it('probes briefly in the smoke setting, with the default budget otherwise, and with the options given in either', async () => {
    const seen: (ProbeOptions | undefined)[] = [];
    const inner = fakeProbe(100);
    const probe: Probe = (model, batchSize, options) => {
      seen.push(options);
      return inner(model, batchSize, options);
    };
    const log = console.log;
    console.log = () => {};
    try {
      await showEstimate([{ label: 'x', settings: small }], { probe, setting: 'smoke' });
      await showEstimate([{ label: 'x', settings: small }], { probe, setting: 'quick' });
      await showEstimate([{ label: 'x', settings: small }], { probe, setting: 'smoke', probeOptions: { budgetSeconds: 3 } });
    } finally {
      console.log = log;
    }
    assert.deepEqual(seen.map((o) => [o?.budgetSeconds, o?.maxSteps]), [
      [SMOKE_PROBE.budgetSeconds, SMOKE_PROBE.maxSteps], [undefined, undefined], [3, undefined],
    ]);
    assert.ok((SMOKE_PROBE.budgetSeconds ?? Infinity) < 1);
  });
});

describe('formatDuration', () => {
  it('picks seconds, minutes, hours or days', () => {
    assert.equal(formatDuration(0.2), '1 s');
    assert.equal(formatDuration(42), '42 s');
    assert.equal(formatDuration(150), '2.5 min');
    assert.equal(formatDuration(25 * 60), '25 min');
    assert.equal(formatDuration(3.2 * 3600), '3.2 h');
    assert.equal(formatDuration(20 * 3600), '20 h');
    assert.equal(formatDuration(161 * 3600), '6.7 days');
  });
});
