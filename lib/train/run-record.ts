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
  /** 'completed' | 'early-stop' | 'diverged' | 'failed' */
  outcome: string;
  message?: string;
}

function runId(model: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${model}-${Math.random().toString(36).slice(2, 6)}`;
}

/** A run's folder: config first, then one metrics line per epoch, then how it ended. */
export class RunRecord {
  readonly dir: string;
  readonly id: string;

  constructor(runsDir: string, info: Omit<RunInfo, 'id' | 'startedAt'>) {
    const now = new Date();
    this.id = runId(info.config.model, now);
    this.dir = path.resolve(runsDir, this.id);
    fs.mkdirSync(this.dir, { recursive: true });
    const full: RunInfo = { id: this.id, startedAt: now.toISOString(), ...info };
    fs.writeFileSync(path.join(this.dir, 'run.json'), JSON.stringify(full, null, 2) + '\n');
  }

  addEpoch(metrics: EpochMetrics): void {
    fs.appendFileSync(path.join(this.dir, 'metrics.jsonl'), JSON.stringify(metrics) + '\n');
  }

  finish(end: Omit<RunEnd, 'finishedAt'>): void {
    const full: RunEnd = { finishedAt: new Date().toISOString(), ...end };
    fs.writeFileSync(path.join(this.dir, 'end.json'), JSON.stringify(full, null, 2) + '\n');
  }
}

/** Reads a run folder back (for notebooks and tests). */
export function readRun(dir: string): { info: RunInfo; epochs: EpochMetrics[]; end: RunEnd | null } {
  const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunInfo;
  const metricsPath = path.join(dir, 'metrics.jsonl');
  const epochs = fs.existsSync(metricsPath)
    ? fs.readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EpochMetrics)
    : [];
  const endPath = path.join(dir, 'end.json');
  const end = fs.existsSync(endPath) ? (JSON.parse(fs.readFileSync(endPath, 'utf8')) as RunEnd) : null;
  return { info, epochs, end };
}
