import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfig } from './config';
import type { EpochMetrics } from './metrics';

/** What `runs/<id>/run.json` holds: enough to tell runs apart and redo one. */
export interface RunInfo {
  id: string;
  startedAt: string;
  config: TrainConfig;
  engine: string;
  parameters: number;
  stepsPerEpoch: number;
  microBatch: number;
  /** Workers (processes) that trained together. */
  worldSize: number;
}

export interface RunEnd {
  finishedAt: string;
  /** 'completed' | 'early-stop' | 'diverged' | 'failed' | 'interrupted' */
  outcome: string;
  message?: string;
}

/** One line of `runs/<id>/resumes.jsonl`: the run was continued from a checkpoint. */
export interface RunResume {
  /** When the state was loaded and training went on. */
  at: string;
  /** Epochs the checkpoint had completed (0: none yet, the run started over). */
  fromEpoch: number;
  /** The run's --epochs from then on. */
  epochs: number;
  /** '--resume' or 'restart k of n' (the launcher's --max-restarts). */
  reason: string;
  /** Newer checkpoints that did not read back whole, and why. */
  skipped: { file: string; reason: string }[];
}

function runId(model: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${model}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Writes a whole file or nothing: a temporary file renamed over the name. */
export function writeFileAtomic(file: string, text: string): void {
  const temporary = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(temporary, text);
    fs.renameSync(temporary, file);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

/** Records this process has open and not finished: a signal or a lost launcher ends them as interrupted. */
const openRecords = new Set<RunRecord>();
/** Records this process ended as failed: a lost launcher can be the cause (a peer that died with it). */
const failedRecords = new Set<RunRecord>();

/**
 * A run's folder: run.json (the configuration) first, then one metrics line per epoch and a
 * checkpoint after each, then end.json (how it ended). A folder without end.json is a run that
 * was interrupted (or is still going).
 */
export class RunRecord {
  readonly dir: string;
  readonly id: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.id = path.basename(dir);
    openRecords.add(this);
  }

  /** A new run's folder under `runsDir`, named `config.runId` or date-model-random. */
  static create(runsDir: string, info: Omit<RunInfo, 'id' | 'startedAt'>): RunRecord {
    const now = new Date();
    const id = info.config.runId ?? runId(info.config.model, now);
    const dir = path.resolve(runsDir, id);
    fs.mkdirSync(path.resolve(runsDir), { recursive: true });
    try {
      fs.mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      throw new RangeError(`--run-id ${id}: ${dir} exists already; continue it with --resume ${id}, or choose another name`);
    }
    const full: RunInfo = { id, startedAt: now.toISOString(), ...info };
    fs.writeFileSync(path.join(dir, 'run.json'), json(full));
    return new RunRecord(dir);
  }

  /**
   * An existing run's folder, continued from a checkpoint: its metrics become the checkpoint's
   * (epochs after it are trained again), its end is removed, the resume is logged, and run.json
   * takes the new target (--epochs, --target-accuracy, --patience).
   */
  static reopen(dir: string, resume: { config: TrainConfig; metrics: EpochMetrics[] } & Omit<RunResume, 'at' | 'epochs'>): RunRecord {
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunInfo;
    const { epochs, targetAccuracy, patience } = resume.config;
    writeFileAtomic(path.join(dir, 'run.json'), json({ ...info, config: { ...info.config, epochs, targetAccuracy, patience } }));
    writeFileAtomic(path.join(dir, 'metrics.jsonl'), resume.metrics.map((m) => JSON.stringify(m) + '\n').join(''));
    fs.rmSync(path.join(dir, 'end.json'), { force: true });
    const line: RunResume = { at: new Date().toISOString(), fromEpoch: resume.fromEpoch, epochs, reason: resume.reason, skipped: resume.skipped };
    fs.appendFileSync(path.join(dir, 'resumes.jsonl'), JSON.stringify(line) + '\n');
    return new RunRecord(dir);
  }

  addEpoch(metrics: EpochMetrics): void {
    fs.appendFileSync(path.join(this.dir, 'metrics.jsonl'), JSON.stringify(metrics) + '\n');
  }

  finish(end: Omit<RunEnd, 'finishedAt'>): void {
    openRecords.delete(this);
    if (end.outcome === 'failed') failedRecords.add(this);
    writeEnd(this.dir, end);
  }
}

/** Writes a run folder's end.json. */
export function writeEnd(dir: string, end: Omit<RunEnd, 'finishedAt'>): void {
  const full: RunEnd = { finishedAt: new Date().toISOString(), ...end };
  writeFileAtomic(path.join(dir, 'end.json'), json(full));
}

/**
 * Ends every record this process still has open (on a signal, or when the launcher is gone):
 * best effort, since the process is about to exit.
 */
export function finishOpenRecords(end: Omit<RunEnd, 'finishedAt'>, options: { causedFailures?: boolean } = {}): void {
  // With causedFailures, a record that already failed (its peer died first, with the launcher) is rewritten too.
  const records = [...openRecords, ...(options.causedFailures ? failedRecords : [])];
  failedRecords.clear();
  for (const record of records) {
    try {
      record.finish(end);
    } catch {
      // Nothing more can be done for it; the folder without end.json reads as interrupted.
    }
  }
}

/** A run that did not finish: no end recorded (killed), or ended by an interrupt or a failure. */
export function isUnfinished(end: RunEnd | null): boolean {
  return end == null || end.outcome === 'interrupted' || end.outcome === 'failed';
}

/** How a run ended, for tables and legends: its outcome, or 'interrupted' when it recorded no end. */
export function outcomeOf(end: RunEnd | null): string {
  return end?.outcome ?? 'interrupted';
}

/** Reads a run folder back (for notebooks and tests). */
export function readRun(dir: string): { info: RunInfo; epochs: EpochMetrics[]; end: RunEnd | null; resumes: RunResume[] } {
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunInfo;
  const metricsPath = path.join(dir, 'metrics.jsonl');
  const epochs = fs.existsSync(metricsPath)
    ? fs.readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EpochMetrics)
    : [];
  const endPath = path.join(dir, 'end.json');
  const end = fs.existsSync(endPath) ? (JSON.parse(fs.readFileSync(endPath, 'utf8')) as RunEnd) : null;
  const resumesPath = path.join(dir, 'resumes.jsonl');
  const resumes = fs.existsSync(resumesPath)
    ? fs.readFileSync(resumesPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as RunResume)
    : [];
  return { info, epochs, end, resumes };
}
