import * as os from 'node:os';
import { availableDevices } from '../launch/launch';
import { type RingCostModel, fitRingCostModel, measureAllReduce, ringAllReduceMs } from '../launch/ring-benchmark';
import { MODELS } from '../models/index';
import { readRun } from '../train/run-record';
import type { ModelName, TrainConfig } from '../train/config';
import { type Experiment, experimentRows, lessonConfig } from './experiment';
import { runRepeated, type RepeatedExperiment, type RepeatedOptions } from './repeats';

/**
 * How the learning rate follows the number of devices: kept as it is, or the
 * course's recipe (Goyal et al. 2017): scaled linearly with the global batch,
 * warmed up from the one-device rate over the first epochs.
 */
export const LR_RULES = ['kept', 'linear + warmup'] as const;
export type LrRule = (typeof LR_RULES)[number];

export interface DeviceRunSpec {
  devices: number;
  /** Images per device per step; the global batch is devices x this. */
  perDeviceBatch: number;
  /** The one-device learning rate. */
  baseLr: number;
  rule: LrRule;
  /** Epochs of warmup under 'linear + warmup'. */
  warmupEpochs: number;
  /** Devices this machine has (default: its GPUs, else its cores); more devices than this are emulated. */
  available?: number;
  /** One run per seed (default [0]). */
  seeds?: readonly number[];
}

/** One run of the lesson: what it trains, and whether its devices are real worker processes. */
export interface DeviceRun {
  label: string;
  devices: number;
  rule: LrRule;
  globalBatch: number;
  /** The learning rate after scaling (what the warmup ends at). */
  lr: number;
  /** Trained in one process on the global batch (see placeDevices). */
  emulated: boolean;
  settings: Partial<TrainConfig>;
  /** Trained once per seed. */
  seeds: number[];
}

/** Where N devices' work runs: on N real workers, or emulated in one process when the machine has fewer devices. */
export interface Placement {
  numGpus: number;
  batchSize: number;
  emulated: boolean;
}

/**
 * N devices at a per-device batch. Emulation trains one process on the global
 * batch: the same updates as the devices (averaging per-device gradients is
 * the gradient of the global batch, lesson 0), not their time. Models with
 * BatchNorm differ slightly: their statistics then cover the global batch.
 */
export function placeDevices(devices: number, perDeviceBatch: number, available: number = availableDevices({ backend: 'auto' }).count): Placement {
  if (!Number.isInteger(devices) || devices < 1) throw new RangeError(`devices must be a whole number of at least 1 (got ${devices})`);
  return devices > available
    ? { numGpus: 1, batchSize: devices * perDeviceBatch, emulated: true }
    : { numGpus: devices, batchSize: perDeviceBatch, emulated: false };
}

/** The settings that put a run on N devices at a per-device batch (see placeDevices). */
export function onDevices(devices: number, perDeviceBatch: number, available?: number): Pick<TrainConfig, 'numGpus' | 'batchSize'> {
  const { numGpus, batchSize } = placeDevices(devices, perDeviceBatch, available);
  return { numGpus, batchSize };
}

/** The training settings of N devices at a fixed per-device batch under one learning-rate rule. */
export function deviceRun(spec: DeviceRunSpec): DeviceRun {
  const n = spec.devices;
  const place = placeDevices(n, spec.perDeviceBatch, spec.available);
  const scaled = spec.rule === 'linear + warmup' && n > 1;
  const lr = scaled ? spec.baseLr * n : spec.baseLr;
  const warmupEpochs = scaled ? spec.warmupEpochs : 0;
  const settings: Partial<TrainConfig> = {
    numGpus: place.numGpus, batchSize: place.batchSize, baseLr: lr, scaleLr: 'none', warmupEpochs,
    ...(warmupEpochs > 0 ? { warmupStartFactor: 1 / n } : {}),
  };
  const devices = `${n} device${n > 1 ? 's' : ''}`;
  const label = n === 1 ? devices : `${devices}, ${scaled ? `lr x${n}${warmupEpochs > 0 ? ' + warmup' : ''}` : 'lr kept'}`;
  return { label, devices: n, rule: spec.rule, globalBatch: n * spec.perDeviceBatch, lr, emulated: place.emulated, settings, seeds: [...(spec.seeds ?? [0])] };
}

/**
 * The lesson's grid: one device once, then every other device count under
 * every rule. Each run's settings are checked with the command line's rules
 * now, so a bad setting stops the cell before anything trains.
 */
export function deviceGrid(
  common: Partial<TrainConfig>, options: Omit<DeviceRunSpec, 'devices' | 'rule'> & { devices: number[]; rules?: readonly LrRule[] },
): DeviceRun[] {
  const runs: DeviceRun[] = [];
  const available = options.available ?? availableDevices({ backend: common.backend ?? 'auto' }).count;
  for (const devices of options.devices) {
    for (const rule of devices === 1 ? (['kept'] as const) : options.rules ?? LR_RULES) {
      const run = deviceRun({ ...options, available, devices, rule });
      lessonConfig({ ...common, ...run.settings });
      runs.push({ ...run, settings: { ...common, ...run.settings } });
    }
  }
  return runs;
}

/** A finished run (one seed) with its training time per epoch, measured or projected. */
export interface DeviceResult extends DeviceRun {
  seed: number;
  experiment: Experiment;
  stepsPerEpoch: number;
  /** Training seconds at the end of each epoch: measured, or projected for emulated devices. */
  seconds: number[];
  timeIs: 'measured' | 'projected';
}

export interface TimeModel {
  /** The most devices that ran as real workers here, and their measured milliseconds per step. */
  devices: number;
  stepMs: number;
  ring: RingCostModel;
  gradientBytes: number;
}

/**
 * Emulated devices' time, from lesson 1's cost model, anchored on the largest
 * real run: its measured step (compute, waiting for the slowest worker, its
 * own all-reduce) plus what the ring costs more among N devices. It assumes
 * each added device has a core or GPU of its own, so N devices wait for each
 * other no more than the measured ones did.
 */
export function projectedEpochSeconds(model: TimeModel, devices: number, steps: number): number {
  const extraRingMs = ringAllReduceMs(model.ring, devices, model.gradientBytes) - ringAllReduceMs(model.ring, model.devices, model.gradientBytes);
  return (steps * (model.stepMs + extraRingMs)) / 1000;
}

/** Milliseconds per step of a run (its last epoch, past warm-up). */
export function stepMsOf(result: Pick<DeviceResult, 'experiment' | 'stepsPerEpoch'>): number {
  const last = result.experiment.epochs[result.experiment.epochs.length - 1];
  return (last.epochTime / result.stepsPerEpoch) * 1000;
}

/**
 * This machine's ring between two processes, fitted from a one-float and a
 * gradient-sized all-reduce (lesson 1 measures it in detail). With a single
 * core there is no ring to measure; `fallback` is returned.
 */
export async function measureRing(model: ModelName, fallback: RingCostModel, repeats = 20): Promise<RingCostModel> {
  if (os.availableParallelism() < 2) return fallback;
  // The ring alone, each process on a core of its own, on shared buffers as the gradient buckets are.
  const timings = await measureAllReduce(2, [{ name: 'one float', floats: 1 }, { name: `${model} gradients`, floats: MODELS[model].parameters }], repeats, { raw: true, pin: true });
  return fitRingCostModel(timings);
}

/**
 * Runs the grid, every run once per seed. Real devices train one run at a time, so that their
 * measured time is the devices' own; emulated devices take their time from the largest real run
 * (the mean over its seeds), so they may train side by side (runRepeated).
 */
export async function runDeviceGrid(runs: DeviceRun[], ring: RingCostModel, options: RepeatedOptions = {}): Promise<DeviceResult[]> {
  const results: DeviceResult[] = [];
  const finish = (run: DeviceRun, seed: number, experiment: Experiment): DeviceResult => {
    const stepsPerEpoch = readRun(experiment.runDir).info.stepsPerEpoch;
    return { ...run, seed, experiment, stepsPerEpoch, seconds: experiment.epochs.map((e) => e.cumulativeTime), timeIs: 'measured' };
  };
  const real = runs.filter((r) => !r.emulated);
  const emulated = runs.filter((r) => r.emulated);
  if (emulated.length > 0 && real.length === 0) {
    throw new Error('runDeviceGrid: emulated devices take their time per step from a real run, and the grid has none: include 1 device');
  }
  const measured = await runRepeated(real.map((r) => ({ label: r.label, settings: r.settings, seeds: r.seeds })), { ...options, atOnce: 1 });
  real.forEach((run, i) => measured[i].runs.forEach((e, k) => results.push(finish(run, run.seeds[k], e))));
  const anchor = real.reduce<DeviceRun | null>((a, r) => (a == null || r.devices > a.devices ? r : a), null);
  const anchorResults = results.filter((r) => r.label === anchor?.label);
  const timeModel: TimeModel | null = anchor == null ? null : {
    devices: anchor.devices, ring, gradientBytes: MODELS[anchorResults[0].experiment.config.model].parameters * 4,
    stepMs: anchorResults.reduce((sum, r) => sum + stepMsOf(r), 0) / anchorResults.length,
  };
  const trained = await runRepeated(emulated.map((r) => ({ label: r.label, settings: r.settings, seeds: r.seeds })), options);
  emulated.forEach((run, i) => trained[i].runs.forEach((e, k) => {
    const result = finish(run, run.seeds[k], e);
    if (timeModel != null) {
      const epochSeconds = projectedEpochSeconds(timeModel, run.devices, result.stepsPerEpoch);
      result.seconds = e.epochs.map((_, j) => (j + 1) * epochSeconds);
      result.timeIs = 'projected';
    }
    results.push(result);
  }));
  return results;
}

/** Names of the rules in charts. */
export const RULE_NAMES: Record<LrRule, string> = { kept: 'lr kept', 'linear + warmup': 'lr x N + warmup' };

/**
 * One row per run and epoch, for charts coloured by devices and dashed by
 * rule. The one-device run belongs to both rules (at N = 1 they are the
 * same), so its rows appear once under each.
 */
export function deviceChartRows(results: DeviceResult[]): Record<string, string | number>[] {
  return results.flatMap((r) => {
    const rules = r.devices === 1 ? LR_RULES : [r.rule];
    return rules.flatMap((rule) => experimentRows([r.experiment]).map((row, i) => ({
      ...row, run: r.label, seed: r.seed, devices: r.devices, rule: RULE_NAMES[rule], seconds: r.seconds[i], time: r.timeIs,
    })));
  });
}

/** First training time at which a run's validation accuracy reached `target` (null: never). */
export function secondsToReach(result: DeviceResult, target: number): number | null {
  const i = result.experiment.epochs.findIndex((m) => m.valAccuracy >= target);
  return i < 0 ? null : result.seconds[i];
}

/** The grid's results grouped by run, one entry per run with its seeds' experiments (for repeats.ts's summaries). */
export function repeatedOf(results: DeviceResult[]): RepeatedExperiment[] {
  const labels = [...new Set(results.map((r) => r.label))];
  return labels.map((label) => {
    const mine = results.filter((r) => r.label === label);
    return { label, settings: mine[0].settings, seeds: mine.map((r) => r.seed), runs: mine.map((r) => r.experiment) };
  });
}
