import * as fs from 'node:fs';
import * as path from 'node:path';
import { configToArgv, flagField, parseArgs } from '../cli/args';
import { checkDevices } from '../launch/launch';
import { trainingProgress } from '../plot/progress';
import { DEFAULT_CONFIG, type TrainConfig } from '../train/config';
import type { EpochMetrics } from '../train/metrics';
import { train } from '../launch/train';

/** One labelled training run of a lesson. */
export interface Experiment {
  label: string;
  config: TrainConfig;
  epochs: EpochMetrics[];
  outcome: string;
  diverged: { epoch: number; step: number } | null;
  runDir: string;
}

/** What `runs/<id>/experiment.json` holds: the run was a lesson's experiment, under this label. */
export interface ExperimentTag {
  label: string;
  lesson: string | null;
}

export const EXPERIMENT_FILE = 'experiment.json';

export interface ExperimentOptions {
  /** The lesson the run belongs to, so that later runs of the lesson can find it. */
  lesson?: string;
}

/**
 * The configuration a lesson asks for, checked with the command line's own
 * rules and the launcher's count of devices, so that a bad setting stops the
 * cell, naming the setting, before anything runs.
 */
export function lessonConfig(settings: Partial<TrainConfig>): TrainConfig {
  const config = { ...DEFAULT_CONFIG, progress: false, ...settings };
  try {
    parseArgs(configToArgv(config));
    if (config.numGpus > 1) checkDevices(config);
  } catch (error) {
    throw inNotebookTerms(error);
  }
  return config;
}

/**
 * The same error, its message naming the setting a notebook writes next to
 * the flag the command line would take: `numGpus (--num-gpus)`.
 */
export function inNotebookTerms(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  error.message = error.message.replace(/--[a-z][a-z-]*/g, (flag) => {
    const field = flagField(flag);
    return field == null ? flag : `${field} (${flag})`;
  });
  return error;
}

/** A run a lesson plans in its settings cell: estimated first, then trained. */
export interface PlannedRun {
  label: string;
  settings: Partial<TrainConfig>;
}

/** Trains with a live progress display and returns what the lesson plots. */
export async function runExperiment(run: PlannedRun, options?: ExperimentOptions): Promise<Experiment>;
export async function runExperiment(label: string, settings: Partial<TrainConfig>, options?: ExperimentOptions): Promise<Experiment>;
export async function runExperiment(
  first: PlannedRun | string, second?: Partial<TrainConfig> | ExperimentOptions, third?: ExperimentOptions,
): Promise<Experiment> {
  const [label, settings, options] = typeof first === 'string'
    ? [first, (second ?? {}) as Partial<TrainConfig>, third ?? {}]
    : [first.label, first.settings, (second ?? {}) as ExperimentOptions];
  const config = lessonConfig(settings);
  const progress = trainingProgress(config.epochs, { label });
  try {
    const result = await train(config, { onEvent: progress.onEvent }).catch((error: unknown) => {
      throw inNotebookTerms(error);
    });
    if (result.runDir !== '') {
      const tag: ExperimentTag = { label, lesson: options.lesson ?? null };
      fs.writeFileSync(path.join(result.runDir, EXPERIMENT_FILE), JSON.stringify(tag, null, 2) + '\n');
    }
    return { label, config, epochs: result.epochs, outcome: result.outcome, diverged: result.diverged, runDir: result.runDir };
  } finally {
    progress.close();
  }
}

/** One row per epoch and experiment, for the line charts. */
export function experimentRows(experiments: Experiment[]): Record<string, string | number>[] {
  return experiments.flatMap((e) => e.epochs.map((m) => ({
    run: e.label, epoch: m.epoch, seconds: m.cumulativeTime, accuracy: m.valAccuracy, loss: m.valLoss, lr: m.lr, imagesPerSec: m.imagesPerSec,
  })));
}
