/**
 * Repeated runs: every configuration a lesson compares is trained with several seeds (the
 * initial weights, the shuffling, dropout), independent seeds side by side on the machine's
 * cores, and summarized as the mean and the range over the seeds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import { isInstalled } from '../backend/devices';
import { compiledEntry } from '../launch/launch';
import type { TrainConfig } from '../train/config';
import type { EpochMetrics } from '../train/metrics';
import { showEstimate } from './estimate';
import { tableBundle, type TableColumn } from '../plot/table';
import type { MimeBundle } from '../plot/types';
import type { LessonSetting } from './settings';
import {
  experimentOf, experimentWatcher, inNotebookTerms, lessonConfig, prepareExperiment, trainPrepared,
  type Experiment, type StepLoss, type ExperimentOptions, type PlannedRun, type PreparedExperiment,
} from './experiment';
import type { ExperimentProcessMessage, ExperimentStartMessage } from './experiment-messages';
import { formatSpread, separated, spread, type Spread } from './spread';

/** The seeds of a compared configuration unless a lesson says otherwise. */
export const DEFAULT_SEEDS: readonly number[] = [0, 1, 2];

/** One configuration of a comparison, to be trained once per seed. */
export interface RepeatedPlan {
  label: string;
  /** Everything but the seed. */
  settings: Partial<TrainConfig>;
  seeds: number[];
  /** A point of a tuning sweep: it may run one seed; what the sweep picks is rerun on fresh seeds. */
  tuning?: boolean;
}

/** A configuration's runs, one per seed, in the order of its seeds. */
export interface RepeatedExperiment {
  label: string;
  settings: Partial<TrainConfig>;
  seeds: number[];
  runs: Experiment[];
}

export function repeated(label: string, settings: Partial<TrainConfig>, seeds: readonly number[] = DEFAULT_SEEDS): RepeatedPlan {
  if (seeds.length === 0) throw new RangeError(`repeated('${label}'): give at least one seed`);
  return { label, settings, seeds: [...seeds] };
}

/** The single runs of repeated plans: one per seed, labelled "<label>, seed <s>". */
export function seedRuns(plans: RepeatedPlan[]): PlannedRun[] {
  return plans.flatMap((p) => p.seeds.map((seed) => ({ label: `${p.label}, seed ${seed}`, settings: { ...p.settings, seed } })));
}

/**
 * How many runs can train at once here: one per core for one-core engines (wasm, cpu),
 * divided among each run's workers; one at a time when a run's engine takes every core
 * (tfjs-node) or a GPU (tfjs-node-gpu), and across nodes.
 */
export function runsAtOnce(configs: Pick<TrainConfig, 'backend' | 'numGpus' | 'numNodes'>[], cores = os.availableParallelism()): number {
  const takesTheMachine = (c: Pick<TrainConfig, 'backend'>) =>
    c.backend === 'tensorflow' || c.backend === 'tensorflow-gpu' ||
    (c.backend === 'auto' && (isInstalled('@tensorflow/tfjs-node') || isInstalled('@tensorflow/tfjs-node-gpu')));
  if (configs.some((c) => takesTheMachine(c) || c.numNodes > 1)) return 1;
  const workers = Math.max(1, ...configs.map((c) => c.numGpus));
  return Math.max(1, Math.floor(cores / workers));
}

/** The estimate of every seed's run, side by side as runRepeated will train them. */
export async function showRepeatedEstimate(plans: RepeatedPlan[], options: { setting?: LessonSetting; atOnce?: number } = {}): Promise<void> {
  const runs = seedRuns(plans);
  const atOnce = options.atOnce ?? runsAtOnce(runs.map((r) => ({ ...lessonConfig(r.settings), numGpus: 1 })));
  await showEstimate(runs, { setting: options.setting, atOnce });
}

export interface RepeatedOptions extends ExperimentOptions {
  /** Runs trained side by side (default: runsAtOnce). 1 trains them one after another in this process. */
  atOnce?: number;
}

const KILL_GRACE_MS = 3000;

/** Trains one prepared run in a child process, with the same live display and record as in this process. */
function trainInChild(prepared: PreparedExperiment, children: Set<ChildProcess>): Promise<Experiment> {
  const watcher = experimentWatcher(prepared);
  const child = fork(compiledEntry('experiment-process.js', 'lessons'), [], {
    execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced',
  });
  children.add(child);
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '' || /^\s+at /.test(line)) continue;
      tail.push(line.trim());
      if (tail.length > 3) tail.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done: Experiment | null = null;
  let reported: Error | null = null;
  child.on('message', (message: ExperimentProcessMessage) => {
    if (message.type === 'event') watcher.onEvent(message.event);
    else if (message.type === 'done') done = experimentOf(prepared, message.result, watcher);
    else {
      reported = Object.assign(new Error(`${prepared.label}: ${message.message}`), { name: message.kind });
    }
  });
  child.send({ type: 'train', config: prepared.trainConfig } satisfies ExperimentStartMessage);
  return new Promise<Experiment>((resolve, reject) => {
    let spawnError: Error | null = null;
    child.on('error', (error) => { spawnError ??= error; });
    // 'close', not 'exit': it comes after the IPC channel has delivered the child's last message.
    child.on('close', (code, signal) => {
      children.delete(child);
      watcher.close();
      if (done != null && code === 0) resolve(done);
      else if (spawnError != null && reported == null) reject(new Error(`${prepared.label}: its training process could not run: ${spawnError.message}`));
      else if (reported != null) reject(inNotebookTerms(reported));
      else {
        const how = signal != null ? `killed by ${signal}` : `exited with code ${code}`;
        reject(new Error(`${prepared.label}: its training process ${how}${tail.length > 0 ? `; its last words: ${tail.join(' | ')}` : ''}`));
      }
    });
  });
}

/**
 * Trains every plan once per seed and returns each plan's runs. Runs train side by side, each in
 * its own process, as many as the cores take (trainSideBySide); the first failure stops the
 * others and is thrown, naming its run.
 * An interrupt (the kernel's stop button, Ctrl-C) is passed to every run, which records it.
 */
export async function runRepeated(plans: RepeatedPlan[], options: RepeatedOptions = {}): Promise<RepeatedExperiment[]> {
  // Every run's settings are checked before any trains.
  const jobs = plans.flatMap((plan, p) => plan.seeds.map((seed) => ({
    p, prepared: prepareExperiment(`${plan.label}, seed ${seed}`, { ...plan.settings, seed }, options),
  })));
  const cores = os.availableParallelism();
  // As many runs at once as one-core runs would fit; each run then takes a core per worker.
  const atOnce = Math.min(options.atOnce ?? runsAtOnce(jobs.map((j) => ({ ...j.prepared.config, numGpus: 1 })), cores), jobs.length);
  const results: Experiment[][] = plans.map(() => []);
  if (atOnce <= 1) {
    for (const job of jobs) {
      results[job.p].push(await trainPrepared(job.prepared));
    }
  } else {
    const children = new Set<ChildProcess>();
    const forward = (signal: NodeJS.Signals) => () => { for (const child of children) child.kill(signal); };
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    try {
      const finished = await trainSideBySide(jobs.map((j) => j.prepared), { atOnce, cores }, children);
      jobs.forEach((job, index) => results[job.p].push(finished[index]));
    } finally {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    }
  }
  return plans.map((plan, p) => ({ label: plan.label, settings: plan.settings, seeds: plan.seeds, runs: results[p] }));
}

/**
 * Trains the runs in their order, starting the next whenever at most `atOnce` run and the cores
 * their workers take (one each) are free; a run wider than the machine trains alone. The first
 * failure stops the others and is thrown once every child process has exited.
 */
function trainSideBySide(runs: PreparedExperiment[], limits: { atOnce: number; cores: number }, children: Set<ChildProcess>): Promise<Experiment[]> {
  const finished: Experiment[] = [];
  const width = (r: PreparedExperiment) => Math.min(limits.cores, Math.max(1, r.config.numGpus));
  let next = 0;
  let running = 0;
  let busyCores = 0;
  let failure: unknown = null;
  return new Promise((resolve, reject) => {
    const settle = () => {
      if (running > 0) return;
      if (failure != null) reject(failure);
      else if (next >= runs.length) resolve(finished);
    };
    const startMore = () => {
      while (failure == null && next < runs.length) {
        const cores = width(runs[next]);
        if (running > 0 && (running >= limits.atOnce || busyCores + cores > limits.cores)) break;
        const index = next++;
        running++;
        busyCores += cores;
        trainInChild(runs[index], children).then(
          (experiment) => { finished[index] = experiment; },
          (error: unknown) => {
            if (failure != null) return;
            failure = error;
            for (const child of children) child.kill('SIGTERM');
            setTimeout(() => { for (const child of children) child.kill('SIGKILL'); }, KILL_GRACE_MS).unref();
          },
        ).finally(() => {
          running--;
          busyCores -= cores;
          startMore();
          settle();
        });
      }
      settle();
    };
    startMore();
  });
}

/** A metric of a run's last epoch; a run that diverged counts as what it recorded last. */
export type FinalMetric = keyof Pick<EpochMetrics, 'valAccuracy' | 'valLoss' | 'cumulativeTime' | 'imagesPerSec'>;

/** The metric of each seed's last epoch, over the seeds. */
export function finalSpread(r: RepeatedExperiment, metric: FinalMetric = 'valAccuracy'): Spread {
  const values = r.runs.map((run) => run.epochs[run.epochs.length - 1]?.[metric] ?? Number.NaN);
  return spread(values);
}

/** One row per epoch and seed, labelled with the configuration (for spreadChart: mean line, range, every seed). */
export function repeatedRows(rs: RepeatedExperiment[]): Record<string, string | number>[] {
  return rs.flatMap((r) => r.runs.flatMap((run, i) => run.epochs.map((m) => ({
    run: r.label, seed: r.seeds[i], epoch: m.epoch, seconds: m.cumulativeTime, accuracy: m.valAccuracy, loss: m.valLoss, lr: m.lr,
  }))));
}

export interface CompareOptions {
  metric?: FinalMetric;
  /** Decimals of the numbers (default 3). */
  digits?: number;
  /** Larger is better (default: true, except for losses and times). */
  higherIsBetter?: boolean;
}

/** How many test images a configuration's final numbers come from. */
function testImages(r: RepeatedExperiment): string {
  const n = r.runs[0]?.config.valSubset;
  return n == null ? 'all 10,000 test images' : `${n.toLocaleString('en-US')} of the 10,000 test images`;
}

/**
 * The outcome of comparing two configurations, as a lesson prints it: both spreads, and a
 * difference only where the ranges over the seeds do not overlap.
 */
export function compareFinal(a: RepeatedExperiment, b: RepeatedExperiment, o: CompareOptions = {}): string {
  const metric = o.metric ?? 'valAccuracy';
  const digits = o.digits ?? 3;
  const higherIsBetter = o.higherIsBetter ?? (metric === 'valAccuracy' || metric === 'imagesPerSec');
  const sa = finalSpread(a, metric);
  const sb = finalSpread(b, metric);
  const what = metric === 'valAccuracy' ? 'final test accuracy' : metric === 'valLoss' ? 'final test loss' : metric;
  // A seed that diverged counts with its last finished epoch (NaN before the first): say so.
  const unfinished = [a, b].filter((r) => r.runs.some((run) => run.outcome === 'diverged'))
    .map((r) => `${r.label}: ${outcomes(r)}`);
  const head = `${a.label}: ${formatSpread(sa, digits)} against ${b.label}: ${formatSpread(sb, digits)} ` +
    `(${what}, mean and range over ${sa.n} and ${sb.n} seeds, ${testImages(a)}` +
    `${unfinished.length > 0 ? `; ${unfinished.join('; ')}, each counted at its last epoch` : ''})`;
  if (!separated(sa, sb)) return `${head}: the ranges overlap, so these runs show no difference between them.`;
  const better = (sa.mean > sb.mean) === higherIsBetter ? a : b;
  return `${head}: ${better.label} is better by ${Math.abs(sa.mean - sb.mean).toFixed(digits)}, and the ranges do not overlap.`;
}

/** The configurations best first by their mean final metric. */
export function rankByFinal(rs: RepeatedExperiment[], o: CompareOptions = {}): RepeatedExperiment[] {
  const metric = o.metric ?? 'valAccuracy';
  const higherIsBetter = o.higherIsBetter ?? (metric === 'valAccuracy' || metric === 'imagesPerSec');
  // Configurations without a number (a seed diverged in its first epoch) go last.
  const mean = (r: RepeatedExperiment) => {
    const m = finalSpread(r, metric).mean;
    return Number.isNaN(m) ? Number.NEGATIVE_INFINITY : higherIsBetter ? m : -m;
  };
  return [...rs].sort((x, y) => mean(y) - mean(x));
}

/** The images of one step of a run: its global batch. */
function globalBatch(c: TrainConfig): number {
  return c.batchSize * c.numGpus * c.numNodes * c.accumulationSteps;
}

/**
 * The training loss of every step, the mean over the seeds (or each seed's own), against the
 * images trained so far: one row per step and configuration (for lineChart, color by run).
 */
export function stepLossRows(rs: RepeatedExperiment[], o: { perSeed?: boolean } = {}): { run: string; images: number; loss: number }[] {
  const globalStep = (s: StepLoss) => (s.epoch - 1) * s.steps + s.step;
  if (o.perSeed) {
    return rs.flatMap((r) => r.runs.flatMap((run, k) => run.steps.map((step) => ({
      run: `${r.label}, seed ${r.seeds[k]}`, images: globalStep(step) * globalBatch(run.config), loss: step.loss,
    }))));
  }
  // The mean at each step every seed trained (a resumed run lacks the steps before it continued).
  return rs.flatMap((r) => {
    const bySeed = r.runs.map((run) => new Map(run.steps.map((s) => [globalStep(s), s.loss])));
    const shared = [...bySeed[0].keys()].filter((g) => bySeed.every((m) => m.has(g))).sort((x, y) => x - y);
    const batch = globalBatch(r.runs[0].config);
    return shared.map((g) => ({ run: r.label, images: g * batch, loss: bySeed.reduce((sum, m) => sum + (m.get(g) as number), 0) / bySeed.length }));
  });
}

/** How the seeds of a configuration ended: "3 completed", "2 completed, 1 diverged". */
export function outcomes(r: RepeatedExperiment): string {
  const counts = new Map<string, number>();
  for (const run of r.runs) counts.set(run.outcome, (counts.get(run.outcome) ?? 0) + 1);
  return [...counts].map(([outcome, n]) => `${n} ${outcome}`).join(', ');
}

/** A table of the configurations' final numbers over their seeds, with any further columns. */
export function finalTable(rs: RepeatedExperiment[], extra: TableColumn<RepeatedExperiment>[] = [], caption?: string): MimeBundle {
  return tableBundle<RepeatedExperiment>([
    { title: 'configuration', value: (r) => r.label },
    ...extra,
    { title: 'seeds', value: (r) => r.seeds.length },
    { title: 'final test accuracy: mean (min-max)', value: (r) => formatSpread(finalSpread(r), 3), numeric: true },
    { title: 'final test loss: mean (min-max)', value: (r) => formatSpread(finalSpread(r, 'valLoss'), 3), numeric: true },
    { title: 'runs', value: outcomes },
  ], rs, caption);
}
