import * as fs from 'node:fs';
import * as path from 'node:path';
import { configToArgv, parseArgs } from '../cli/args';
import { trainingProgress } from '../plot/progress';
import { DEFAULT_CONFIG, type TrainConfig } from '../train/config';
import type { EpochMetrics } from '../train/metrics';
import { train } from '../train/train';

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
 * rules, so that a bad setting stops the cell with the message the command
 * would print (naming the option) before anything runs.
 */
export function lessonConfig(settings: Partial<TrainConfig>): TrainConfig {
  const config = { ...DEFAULT_CONFIG, progress: false, ...settings };
  parseArgs(configToArgv(config));
  return config;
}

/** Trains with a live progress display and returns what the lesson plots. */
export async function runExperiment(label: string, settings: Partial<TrainConfig>, options: ExperimentOptions = {}): Promise<Experiment> {
  const config = lessonConfig(settings);
  const progress = trainingProgress(config.epochs, { label });
  try {
    const result = await train(config, { onEvent: progress.onEvent });
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
