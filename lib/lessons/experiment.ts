import * as fs from 'node:fs';
import * as path from 'node:path';
import { configToArgv, flagField, parseArgs } from '../cli/args';
import { checkDevices } from '../launch/launch';
import { trainingProgress } from '../plot/progress';
import { DEFAULT_CONFIG, type TrainConfig } from '../train/config';
import type { EpochMetrics } from '../train/metrics';
import { train, type TrainEvent, type TrainResult } from '../launch/train';
import type { ValidationEvent } from '../train/events';
import { listCheckpoints } from '../train/checkpoint-file';
import { resumeConfig } from '../launch/resume';
import { isUnfinished, readRun } from '../train/run-record';
import { lessonSetting, type LessonSetting } from './settings';

/** One labelled training run of a lesson. */
export interface Experiment {
  label: string;
  config: TrainConfig;
  epochs: EpochMetrics[];
  outcome: string;
  diverged: { epoch: number; step: number } | null;
  runDir: string;
  /** The training loss of every step this process saw (a resumed run: from where it continued). */
  steps: StepLoss[];
  /** Every validation, within epochs (validateEvery) and at their ends, in order. */
  validations: ValidationPoint[];
}

/** One validation of a run: where in training, and what it measured. */
export type ValidationPoint = Omit<ValidationEvent, 'type'>;

/**
 * What `runs/<id>/experiment.json` holds: the run was a lesson's experiment, under this label, at
 * this lesson setting (smoke, quick or full; null in records written before the setting was kept).
 */
export interface ExperimentTag {
  label: string;
  lesson: string | null;
  setting: LessonSetting | null;
}

export const EXPERIMENT_FILE = 'experiment.json';

export interface ExperimentOptions {
  /** The lesson the run belongs to, so that later runs of the lesson can find it. */
  lesson?: string;
  /**
   * Continue this experiment's last run when it was interrupted or crashed, from its checkpoint,
   * if its settings are the same (default true); false starts afresh.
   */
  resume?: boolean;
}

/**
 * The newest run of this experiment (lesson and label) that ended without finishing (interrupted,
 * crashed, or cut off) and can be continued with `config`: same settings, a checkpoint, epochs left.
 */
export function unfinishedRun(label: string, lesson: string | null, config: TrainConfig): { runDir: string; epoch: number } | null {
  const runsDir = path.resolve(config.runsDir);
  let names: string[];
  try {
    names = fs.readdirSync(runsDir);
  } catch {
    return null;
  }
  const candidates = names
    .map((name) => path.join(runsDir, name))
    .filter((dir) => {
      try {
        const tag = JSON.parse(fs.readFileSync(path.join(dir, EXPERIMENT_FILE), 'utf8')) as ExperimentTag;
        return tag.label === label && (tag.lesson ?? null) === lesson && isUnfinished(readRun(dir).end);
      } catch {
        return false;
      }
    })
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  for (const runDir of candidates) {
    const epoch = listCheckpoints(runDir)[0]?.epoch;
    if (epoch == null) continue;
    try {
      resumeConfig({ ...config, resume: runDir });
      return { runDir, epoch };
    } catch {
      // other settings, or nothing left to train: not this experiment's run
    }
  }
  return null;
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

/** A run ready to train: its checked configuration (with `resume` when it continues an interrupted run) and its tag. */
export interface PreparedExperiment {
  label: string;
  /** The configuration as the lesson asked for it. */
  config: TrainConfig;
  /** What train() is given: `config`, or `config` continuing its interrupted run. */
  trainConfig: TrainConfig;
  tag: ExperimentTag;
}

/**
 * Checks a run's settings (a bad one stops the cell, naming it) and finds the interrupted run it
 * continues, saying so.
 */
export function prepareExperiment(label: string, settings: Partial<TrainConfig>, options: ExperimentOptions = {}): PreparedExperiment {
  const config = lessonConfig(settings);
  const tag: ExperimentTag = { label, lesson: options.lesson ?? null, setting: lessonSetting() };
  const unfinished = options.resume === false ? null : unfinishedRun(label, tag.lesson, config);
  if (unfinished != null) {
    console.log(`${label}: continuing its interrupted run from the checkpoint of epoch ${unfinished.epoch} ` +
      `(${path.basename(unfinished.runDir)}); pass { resume: false } with the lesson's tag to start it afresh`);
  }
  return { label, config, trainConfig: unfinished != null ? { ...config, resume: unfinished.runDir } : config, tag };
}

/** The loss of one training step. */
export interface StepLoss {
  epoch: number;
  /** 1-based within the epoch, of `steps`. */
  step: number;
  steps: number;
  loss: number;
}

/**
 * What a run's events feed: the tag written as soon as the run has a folder (so that a rerun after
 * an interrupt finds it), the live progress display, and the per-step losses.
 */
export function experimentWatcher(prepared: PreparedExperiment): {
  onEvent: (event: TrainEvent) => void; steps: StepLoss[]; validations: ValidationPoint[]; close: () => void;
} {
  const progress = trainingProgress(prepared.config.epochs, { label: prepared.label });
  const steps: StepLoss[] = [];
  const validations: ValidationPoint[] = [];
  const onEvent = (event: TrainEvent) => {
    if (event.type === 'start' && event.runDir !== '') fs.writeFileSync(path.join(event.runDir, EXPERIMENT_FILE), JSON.stringify(prepared.tag, null, 2) + '\n');
    if (event.type === 'step') steps.push({ epoch: event.epoch, step: event.step, steps: event.steps, loss: event.loss });
    if (event.type === 'validation') {
      const { type: _, ...point } = event;
      validations.push(point);
    }
    progress.onEvent(event);
  };
  return { onEvent, steps, validations, close: () => progress.close() };
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
  return trainPrepared(prepareExperiment(label, settings, options));
}

/** What a lesson keeps of a finished run: its result and what its events recorded. */
export function experimentOf(
  prepared: PreparedExperiment, result: Pick<TrainResult, 'epochs' | 'outcome' | 'diverged' | 'runDir'>,
  watcher: Pick<ReturnType<typeof experimentWatcher>, 'steps' | 'validations'>,
): Experiment {
  return {
    label: prepared.label, config: prepared.config, epochs: result.epochs, outcome: result.outcome, diverged: result.diverged,
    runDir: result.runDir, steps: watcher.steps, validations: watcher.validations,
  };
}

/** Trains a prepared run in this process, with a live progress display. */
export async function trainPrepared(prepared: PreparedExperiment): Promise<Experiment> {
  const watcher = experimentWatcher(prepared);
  try {
    const result = await train(prepared.trainConfig, { onEvent: watcher.onEvent }).catch((error: unknown) => {
      throw inNotebookTerms(error);
    });
    return experimentOf(prepared, result, watcher);
  } finally {
    watcher.close();
  }
}

/** One row per epoch and experiment, for the line charts. */
export function experimentRows(experiments: Experiment[]): Record<string, string | number>[] {
  return experiments.flatMap((e) => e.epochs.map((m) => ({
    run: e.label, epoch: m.epoch, seconds: m.cumulativeTime, accuracy: m.valAccuracy, loss: m.valLoss, lr: m.lr, imagesPerSec: m.imagesPerSec,
  })));
}
