/**
 * Earlier runs of a lesson, read back from `runs/`, drawn next to the runs just made so that the
 * user can see what an edit changed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lineChart, type AxisField } from '../plot/charts';
import type { VegaLiteSpec } from '../plot/types';
import { DEFAULT_CONFIG } from '../train/config';
import { outcomeOf, readRun } from '../train/run-record';
import { EXPERIMENT_FILE, experimentRows, type Experiment, type ExperimentTag } from './experiment';
import { lessonSetting, type LessonSetting } from './settings';

/** An experiment read back from its run folder. */
export interface EarlierExperiment extends Experiment {
  startedAt: string;
  lesson: string | null;
  setting: LessonSetting | null;
}

export interface EarlierRunsOptions {
  /** Default: the training default, 'runs' (relative to the working directory). */
  runsDir?: string;
  lesson?: string;
  label?: string;
  /**
   * Only runs made at this lesson setting (default: the current one, so that CI's smoke runs never
   * appear beside a learner's quick ones); 'any' keeps every setting, and records without one.
   */
  setting?: LessonSetting | 'any';
  /** Runs to leave out, typically the ones just made. */
  exclude?: Experiment[];
  /** Default 10. */
  limit?: number;
}

export const THIS_RUN = 'this run';
export const EARLIER = 'earlier';

function readExperiment(runDir: string): EarlierExperiment | null {
  try {
    const tag = JSON.parse(fs.readFileSync(path.join(runDir, EXPERIMENT_FILE), 'utf8')) as ExperimentTag;
    const { info, epochs, end } = readRun(runDir);
    if (typeof tag.label !== 'string' || typeof info.startedAt !== 'string' || epochs.length === 0) return null;
    const at = /diverged at epoch (\d+), step (\d+)/.exec(end?.message ?? '');
    return {
      label: tag.label,
      lesson: tag.lesson ?? null,
      setting: tag.setting ?? null,
      config: info.config,
      epochs,
      outcome: outcomeOf(end),
      diverged: at ? { epoch: Number(at[1]), step: Number(at[2]) } : null,
      runDir,
      steps: [],
      validations: [],
      startedAt: info.startedAt,
    };
  } catch {
    return null;
  }
}

function realPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** The experiments kept in `runs/` that match, newest first; unreadable or partial folders are skipped. */
export function earlierRuns(options: EarlierRunsOptions = {}): EarlierExperiment[] {
  const runsDir = path.resolve(options.runsDir ?? DEFAULT_CONFIG.runsDir);
  const setting = options.setting ?? lessonSetting();
  const excluded = new Set((options.exclude ?? []).filter((e) => e.runDir !== '').map((e) => realPath(e.runDir)));
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(runsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const found: EarlierExperiment[] = [];
  for (const entry of entries) {
    const runDir = path.join(runsDir, entry.name);
    if (!entry.isDirectory() || excluded.has(realPath(runDir))) continue;
    const experiment = readExperiment(runDir);
    if (experiment == null) continue;
    if (options.lesson !== undefined && experiment.lesson !== options.lesson) continue;
    if (options.label !== undefined && experiment.label !== options.label) continue;
    if (setting !== 'any' && experiment.setting !== setting) continue;
    found.push(experiment);
  }
  const time = (e: EarlierExperiment) => Date.parse(e.startedAt) || 0;
  found.sort((a, b) => time(b) - time(a) || b.runDir.localeCompare(a.runDir));
  return found.slice(0, Math.max(0, options.limit ?? 10));
}

const pad = (n: number) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** '14:05, 28 Nov' in local time. */
export function whenLabel(startedAt: string): string {
  const d = new Date(startedAt);
  if (Number.isNaN(d.getTime())) return startedAt;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}, ${d.getDate()} ${MONTHS[d.getMonth()]}`;
}

/**
 * Chart rows of the current runs (`when: 'this run'`) and of earlier ones (`when: 'earlier'`), the
 * earlier ones named `label (HH:MM, day)` so that each draws its own line.
 */
export function overlayRows(current: Experiment[], earlier: (Experiment & { startedAt: string })[]): Record<string, string | number>[] {
  const names = new Set(current.map((e) => e.label));
  const renamed = earlier.map((e) => {
    const ended = e.outcome === 'interrupted' || e.outcome === 'failed' ? `, ${e.outcome}` : '';
    const base = `${e.label} (${whenLabel(e.startedAt)}${ended})`;
    let name = base;
    for (let n = 2; names.has(name); n++) name = `${base} #${n}`;
    names.add(name);
    return { ...e, label: name };
  });
  return [
    ...experimentRows(current).map((row) => ({ ...row, when: THIS_RUN })),
    ...experimentRows(renamed).map((row) => ({ ...row, when: EARLIER })),
  ];
}

export interface OverlayChartOptions {
  title: string;
  current: Experiment[];
  earlier: (Experiment & { startedAt: string })[];
  /** Default 'accuracy'. */
  y?: 'accuracy' | 'loss';
  /** Default 'epoch'. */
  x?: 'epoch' | 'seconds';
  width?: number;
  height?: number;
}

const X_AXES: Record<'epoch' | 'seconds', AxisField> = {
  epoch: { field: 'epoch', title: 'epoch', format: 'd' },
  seconds: { field: 'seconds', title: 'training time (s)', format: '.1f' },
};
const Y_AXES: Record<'accuracy' | 'loss', AxisField> = {
  accuracy: { field: 'accuracy', title: 'validation accuracy', format: '.3f' },
  loss: { field: 'loss', title: 'validation loss', format: '.3f' },
};

/** One line per run, coloured by run: the current runs solid, the earlier ones dashed and faded. */
export function overlayChart(o: OverlayChartOptions): VegaLiteSpec {
  return lineChart({
    title: o.title,
    data: overlayRows(o.current, o.earlier),
    x: X_AXES[o.x ?? 'epoch'],
    y: Y_AXES[o.y ?? 'accuracy'],
    color: { field: 'run', title: 'run' },
    strokeDash: { field: 'when', title: 'when', values: [THIS_RUN, EARLIER] },
    width: o.width,
    height: o.height,
  });
}
