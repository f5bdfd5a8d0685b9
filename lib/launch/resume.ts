/**
 * `--resume RUN`: the run's own configuration, with only the flags that do not change what it
 * computes taken from the command line, checked before anything loads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fieldFlag } from '../cli/args';
import { listCheckpoints } from '../train/checkpoint-file';
import type { TrainConfig } from '../train/config';
import type { RunInfo } from '../train/run-record';

export class ResumeError extends Error {
  override name = 'ResumeError';
}

/**
 * Settings a continued run may take from the command line: where things are, how it is shown and
 * supervised, when it stops. Every other field changes what a step computes (or the order in
 * which the ring sums), so the run's own value is kept and a different one is refused.
 */
const FREE_FIELDS: ReadonlySet<keyof TrainConfig> = new Set<keyof TrainConfig>([
  'epochs', 'targetAccuracy', 'patience', 'dataDir', 'save', 'runsDir', 'progress', 'oversubscribe', 'masterAddr', 'masterPort',
  'nodeId', 'overlap', 'simulatedLink', 'validateEvery', 'validateEveryImages', 'deviceMemoryGb', 'backend', 'resume', 'maxRestarts', 'keepCheckpoints', 'runId',
]);

/** The run folder `ref` names: a folder holding run.json, or a run id under `runsDir`. */
export function findRunDir(ref: string, runsDir: string): string {
  const candidates = [path.resolve(ref), path.resolve(runsDir, ref)];
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'run.json')));
  if (found == null) {
    const looked = [...new Set(candidates)].join(' and ');
    throw new ResumeError(`--resume ${ref}: no run folder there (looked for run.json in ${looked}); give a run's folder or its id under --runs-dir`);
  }
  return found;
}

function readInfo(runDir: string, ref: string): RunInfo {
  try {
    return JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunInfo;
  } catch (e) {
    throw new ResumeError(`--resume ${ref}: cannot read ${path.join(runDir, 'run.json')} (${(e as Error).message})`);
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The configuration that continues the run `config.resume` names: the run's own settings, with
 * the free ones that the command line gave (`given`; by default every field of `config`).
 * Throws, naming the flag, when a given setting would change what the run computes, and when
 * there is nothing left to train.
 */
export function resumeConfig(config: TrainConfig, given?: ReadonlySet<keyof TrainConfig>): TrainConfig {
  const ref = config.resume;
  if (ref == null) return config;
  const runDir = findRunDir(ref, config.runsDir);
  const info = readInfo(runDir, ref);
  const isGiven = (field: keyof TrainConfig) => given == null || given.has(field);
  const run = { ...config, ...info.config };
  for (const field of Object.keys(config) as (keyof TrainConfig)[]) {
    if (FREE_FIELDS.has(field) || !isGiven(field) || same(config[field], run[field])) continue;
    const flag = fieldFlag(field);
    const theirs = info.config[field] === undefined ? 'its default' : `its ${JSON.stringify(info.config[field])}`;
    throw new ResumeError(`--resume ${ref}: ${flag} ${JSON.stringify(config[field])} differs from the run's setting (${theirs}) and ` +
      `would change what it computes; leave ${flag} out to continue the run as it was, or start a new run without --resume`);
  }
  const resolved: TrainConfig = { ...run, resume: runDir, runsDir: path.dirname(runDir) };
  for (const field of FREE_FIELDS) {
    if (field !== 'resume' && field !== 'runsDir' && isGiven(field)) (resolved as unknown as Record<string, unknown>)[field] = config[field];
  }
  const done = listCheckpoints(runDir)[0]?.epoch ?? 0;
  if (resolved.epochs <= done) {
    throw new ResumeError(`--resume ${ref}: the run has already trained ${done} epoch${done === 1 ? '' : 's'} ` +
      `(--epochs ${resolved.epochs}); pass --epochs with more to train it further`);
  }
  return resolved;
}
