import * as os from 'node:os';
import type { EngineName } from '../backend/select';
import { show } from '../plot/display';
import { escapeHtml, htmlBundle, type MimeBundle } from '../plot/types';
import type { ModelName, TrainConfig } from '../train/config';
import { stepsPerEpoch } from '../train/sampler';
import { lessonConfig, type PlannedRun } from './experiment';

export type { PlannedRun } from './experiment';
import { measureImagesPerSec, type ProbeOptions, type ThroughputProbe } from './probe';
import type { LessonSetting } from './settings';

export { measureImagesPerSec, type ProbeOptions, type ThroughputProbe } from './probe';

const TRAIN_IMAGES = 60_000;
const TEST_IMAGES = 10_000;
/** Validation runs the forward pass only, about three times faster than a training step. */
export const VALIDATION_SPEED_UP = 3;
/** Share of N workers' combined speed left after waiting for each other and averaging gradients. */
export const DATA_PARALLEL_EFFICIENCY = 0.9;
/** Starting worker processes (fork, load the data, start the engine), measured ~3 s on wasm. */
export const WORKER_START_SECONDS = 3;
/** Above this total the estimate warns that the job is GPU-sized. */
export const WARN_ABOVE_SECONDS = 30 * 60;
/**
 * The smoke setting's probes: a few steps each. Its runs are too short for an estimate to mean
 * much (start-up dominates them); the test suite runs every lesson in it.
 */
export const SMOKE_PROBE: ProbeOptions = { budgetSeconds: 0.25, maxSteps: 5 };
/** The course's wideresnet on one H100, images trained per second. */
const H100_IMAGES_PER_SEC = 8_000;


export interface RunEstimate {
  label: string;
  model: ModelName;
  batchSize: number;
  workers: number;
  globalBatch: number;
  /** Over all epochs. */
  trainImages: number;
  valImages: number;
  /** Training images per second expected for the run (all its workers). */
  imagesPerSec: number;
  seconds: number;
  /** Early stop (targetAccuracy) may end the run sooner than estimated. */
  mayStopEarly: boolean;
}

export interface Estimate {
  runs: RunEstimate[];
  totalSeconds: number;
  engine: EngineName;
  engineDescription: string;
  /** One probe per model and batch, in the order the runs first need them. */
  probes: ThroughputProbe[];
  cores: number;
  /** Runs trained side by side. */
  atOnce: number;
}

export type Probe = (model: ModelName, batchSize: number, options: ProbeOptions) => Promise<ThroughputProbe>;

export interface EstimateOptions {
  /** Measures a model's throughput (default: measureImagesPerSec). */
  probe?: Probe;
  /** Budget and step limit of each probe. */
  probeOptions?: ProbeOptions;
  /** CPU cores this machine lends to workers (default: os.availableParallelism()). */
  cores?: number;
  /** Runs that train side by side (independent seeds, one per core): the total divides by it (default 1). */
  atOnce?: number;
}

/** How many probes' worth of throughput `workers` workers on one machine add up to. */
export function parallelSpeedUp(engine: EngineName, workers: number, cores: number): number {
  switch (engine) {
    case 'tensorflow': return 1; // libtensorflow already used every core in the probe
    case 'tensorflow-gpu': return workers; // one GPU each
    default: return Math.min(workers, cores);
  }
}

/**
 * Each run's time on this machine: its epochs of training at the probed
 * throughput times the workers that run at once, plus validation. Early stop
 * can only make runs shorter, so the times are upper bounds.
 */
export async function estimateRuns(runs: PlannedRun[], options: EstimateOptions = {}): Promise<Estimate> {
  if (runs.length === 0) throw new RangeError('estimateRuns: no runs to estimate');
  const probe = options.probe ?? measureImagesPerSec;
  const cores = options.cores ?? os.availableParallelism();
  const probes: ThroughputProbe[] = [];
  const estimates: RunEstimate[] = [];
  for (const run of runs) {
    const config = lessonConfig(run.settings);
    const measured = await probe(config.model, config.batchSize, { ...options.probeOptions, backend: config.backend });
    if (!probes.includes(measured)) probes.push(measured);
    const workers = config.numGpus * config.numNodes;
    const machines = config.numNodes;
    const speedUp = parallelSpeedUp(measured.engine, config.numGpus, cores) * machines;
    const imagesPerSec = measured.imagesPerSec * speedUp * (workers > 1 ? DATA_PARALLEL_EFFICIENCY : 1);
    const trainSet = Math.min(config.trainSubset ?? TRAIN_IMAGES, TRAIN_IMAGES);
    const globalBatch = workers * config.batchSize;
    const trainImages = config.epochs * stepsPerEpoch(trainSet, workers, config.batchSize) * globalBatch;
    const valImages = config.epochs * Math.min(config.valSubset ?? TEST_IMAGES, TEST_IMAGES);
    estimates.push({
      label: run.label, model: config.model, batchSize: config.batchSize, workers, globalBatch, trainImages, valImages, imagesPerSec,
      seconds: (workers > 1 ? WORKER_START_SECONDS : 0) + trainImages / imagesPerSec + valImages / (VALIDATION_SPEED_UP * imagesPerSec),
      mayStopEarly: config.targetAccuracy < 1,
    });
  }
  const atOnce = Math.max(1, Math.min(options.atOnce ?? 1, estimates.length));
  return {
    runs: estimates, totalSeconds: estimates.reduce((sum, r) => sum + r.seconds, 0) / atOnce,
    engine: probes[0].engine, engineDescription: probes[0].engineDescription, probes, cores, atOnce,
  };
}

/** e.g. 40 s, 2.5 min, 25 min, 3.2 h, 6.7 days. */
export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = seconds / 60;
  if (minutes < 10) return `${minutes.toFixed(1)} min`;
  if (minutes < 90) return `${Math.round(minutes)} min`;
  const hours = minutes / 60;
  if (hours < 10) return `${hours.toFixed(1)} h`;
  if (hours < 48) return `${Math.round(hours)} h`;
  return `${(hours / 24).toFixed(1)} days`;
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M` : n.toLocaleString('en-US');
}

function probeUnit(engine: EngineName): string {
  switch (engine) {
    case 'tensorflow': return 'on all cores';
    case 'tensorflow-gpu': return 'on one GPU';
    default: return 'on one core';
  }
}

/** The estimate's summary lines: the total with the probe figures, then the caveats and any warning. */
export function estimateLines(estimate: Estimate, setting?: LessonSetting): { summary: string; notes: string[]; warning: string | null } {
  const measured = estimate.probes
    .map((p) => `${Math.round(p.imagesPerSec).toLocaleString('en-US')} images/s for model ${p.model} at batch ${p.batchSize}`)
    .join(', ');
  const summary = `${setting ? `${setting[0].toUpperCase()}${setting.slice(1)} setting: ` : ''}` +
    `about ${formatDuration(estimate.totalSeconds)} on this machine ` +
    `(engine ${estimate.engine}; measured ${measured} ${probeUnit(estimate.engine)})`;
  const notes: string[] = [];
  if (estimate.runs.some((r) => r.workers > 1)) {
    const perCore = probeUnit(estimate.engine) === 'on one core';
    notes.push(`N workers count as ${perCore ? `min(N, ${estimate.cores} cores) x ` : ''}the probe at ${Math.round(DATA_PARALLEL_EFFICIENCY * 100)}% efficiency, ` +
      `plus ${WORKER_START_SECONDS} s to start them.`);
  }
  if (estimate.atOnce > 1) notes.push(`${estimate.atOnce} runs train side by side, each in its own process on its own core(s).`);
  notes.push(`Validation is counted at ${VALIDATION_SPEED_UP}x the training speed.`);
  if (estimate.runs.some((r) => r.mayStopEarly)) notes.push('Runs that reach their target accuracy stop early: the times are upper bounds.');
  let warning: string | null = null;
  if (estimate.totalSeconds > WARN_ABOVE_SECONDS) {
    warning = `This is a GPU-sized job: about ${formatDuration(estimate.totalSeconds)} here. ` +
      `An H100 trains the course's wideresnet at ~${H100_IMAGES_PER_SEC.toLocaleString('en-US')} images/s. ` +
      (setting === 'quick' ? 'Lower the epochs or the training subset to run it on a laptop.' : 'On a laptop, use the quick setting.');
  }
  return { summary, notes, warning };
}

/** A small table of the runs with the summary, the caveats and any warning below it. */
export function estimateBundle(estimate: Estimate, setting?: LessonSetting): MimeBundle {
  const { summary, notes, warning } = estimateLines(estimate, setting);
  const cell = 'padding:3px 8px;text-align:right;border-bottom:1px solid #ddd';
  const columns = ['run', 'model', 'global batch', 'images', 'est. time'];
  const rows = estimate.runs.map((r) => [
    r.label, r.model, r.workers > 1 ? `${r.globalBatch} (${r.workers} x ${r.batchSize})` : String(r.globalBatch),
    formatCount(r.trainImages), `${r.mayStopEarly ? '≤ ' : ''}${formatDuration(r.seconds)}`,
  ]);
  const html = '<div style="font-family:sans-serif;font-size:13px">' +
    '<table style="border-collapse:collapse;font-variant-numeric:tabular-nums">' +
    `<thead><tr>${columns.map((c) => `<th style="${cell};border-bottom:2px solid #999">${c}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((v) => `<td style="${cell}">${escapeHtml(v)}</td>`).join('')}</tr>`).join('')}</tbody></table>` +
    `<p style="margin:6px 0 2px 0"><b>${escapeHtml(summary)}</b></p>` +
    `<p style="margin:2px 0;color:#666">${escapeHtml(notes.join(' '))}</p>` +
    (warning ? `<p style="margin:6px 0;padding:6px 8px;background:#fff3cd;border-left:4px solid #e0a800">⚠ ${escapeHtml(warning)}</p>` : '') +
    '</div>';
  const text = [
    ...rows.map((r) => `  ${r[0]}: ${r[1]}, global batch ${r[2]}, ${r[3]} images, ${r[4]}`),
    summary, ...notes, ...(warning ? [`WARNING: ${warning}`] : []),
  ].join('\n');
  return htmlBundle(html, text);
}

/**
 * Probes the runs' models on this machine, then shows how long the runs will
 * take before they start. Returns nothing, so the cell prints nothing more.
 */
export async function showEstimate(runs: PlannedRun[], options: EstimateOptions & { setting?: LessonSetting } = {}): Promise<void> {
  const probeOptions = options.probeOptions ?? (options.setting === 'smoke' ? SMOKE_PROBE : undefined);
  show(estimateBundle(await estimateRuns(runs, { ...options, probeOptions }), options.setting));
}
