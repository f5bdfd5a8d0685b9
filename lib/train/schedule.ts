/**
 * Learning-rate scaling rules and warmup, as pure functions (no tfjs).
 *
 * The course: lr = base_lr x num_gpus (the linear scaling rule of Goyal et
 * al. 2017, arXiv:1706.02677), warmed up with
 * `LinearLR(optimizer, start_factor=1/num_gpus, total_iters=warmup_epochs)` and
 * `scheduler.step()` after each epoch, so epoch e (from 0) trains at
 * lr x factor(e). Goyal et al. instead raise the rate a little every
 * iteration: factor(global step) with total_iters = warmup_epochs x steps_per_epoch.
 */

export const SCALE_RULES = ['linear', 'sqrt', 'none'] as const;
export type ScaleRule = (typeof SCALE_RULES)[number];

export const WARMUP_UNITS = ['epoch', 'iteration'] as const;
export type WarmupUnit = (typeof WARMUP_UNITS)[number];

/** A schedule setting out of range; the message names the command-line flag. */
export class ScheduleConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleConfigError';
  }
}

function requirePositiveInteger(flag: string, value: number): void {
  if (!(Number.isSafeInteger(value) && value > 0)) throw new ScheduleConfigError(`${flag} must be a positive integer (got ${value})`);
}

function requireNonNegativeInteger(flag: string, value: number): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) throw new ScheduleConfigError(`${flag} must be a non-negative integer (got ${value})`);
}

/** The learning rate for `workers` data-parallel workers: lr x N ('linear'), lr x sqrt(N) ('sqrt') or lr ('none'). */
export function scaledLr(baseLr: number, workers: number, rule: ScaleRule): number {
  if (!(baseLr > 0 && Number.isFinite(baseLr))) throw new ScheduleConfigError(`--base-lr must be a positive finite number (got ${baseLr})`);
  requirePositiveInteger('the number of workers', workers);
  switch (rule) {
    case 'linear':
      return baseLr * workers;
    case 'sqrt':
      return baseLr * Math.sqrt(workers);
    case 'none':
      return baseLr;
    default:
      throw new ScheduleConfigError(`--scale-lr must be one of ${SCALE_RULES.join(', ')} (got '${String(rule)}')`);
  }
}

export interface LinearLrOptions {
  /** Factor at step 0, in (0, 1]. */
  startFactor: number;
  /** Factor from step totalIters on, in [0, 1]; default 1. */
  endFactor?: number;
  /** Scheduler steps to go from startFactor to endFactor; 0 means endFactor from the start. */
  totalIters: number;
}

/**
 * torch.optim.lr_scheduler.LinearLR's multiplicative factor after t calls of
 * scheduler.step(), in the closed form of its `_get_closed_form_lr`:
 *   start + (end - start) * min(t, total) / total
 * lr = baseLr * factor(t) gives exactly the doubles PyTorch's closed form gives.
 * (PyTorch's recursive `get_lr` can differ from it in the last bit.)
 */
export function linearLr(options: LinearLrOptions): (t: number) => number {
  const { startFactor, totalIters } = options;
  const endFactor = options.endFactor ?? 1;
  if (!(startFactor > 0 && startFactor <= 1)) throw new ScheduleConfigError(`LinearLR start factor must be in (0, 1] (got ${startFactor})`);
  if (!(endFactor >= 0 && endFactor <= 1)) throw new ScheduleConfigError(`LinearLR end factor must be in [0, 1] (got ${endFactor})`);
  requireNonNegativeInteger('LinearLR total iterations', totalIters);
  return (t: number) => {
    requireNonNegativeInteger('the scheduler step', t);
    if (totalIters === 0) return endFactor;
    return startFactor + ((endFactor - startFactor) * Math.min(totalIters, t)) / totalIters;
  };
}

export interface ScheduleOptions {
  /** --base-lr. */
  baseLr: number;
  /** Data-parallel workers (the world size). */
  workers: number;
  /** --scale-lr; the course uses 'linear'. */
  scaleRule: ScaleRule;
  /** --warmup-epochs; 0 = no warmup. */
  warmupEpochs: number;
  /** 'epoch' (the course: LinearLR stepped after each epoch) or 'iteration' (Goyal et al.). */
  warmupUnit: WarmupUnit;
  /** LinearLR's start factor; default 1 / workers, as in the course. */
  warmupStartFactor?: number;
}

/** The learning rate of every step of a run: scaled peak rate times the warmup factor. */
export class LearningRateSchedule {
  /** The rate after warmup: scaledLr(baseLr, workers, scaleRule). */
  readonly peakLr: number;
  readonly warmupEpochs: number;
  readonly warmupUnit: WarmupUnit;
  readonly startFactor: number;

  constructor(readonly options: ScheduleOptions) {
    this.peakLr = scaledLr(options.baseLr, options.workers, options.scaleRule);
    requireNonNegativeInteger('--warmup-epochs', options.warmupEpochs);
    if (!WARMUP_UNITS.includes(options.warmupUnit)) {
      throw new ScheduleConfigError(`warmup unit must be one of ${WARMUP_UNITS.join(', ')} (got '${String(options.warmupUnit)}')`);
    }
    this.warmupEpochs = options.warmupEpochs;
    this.warmupUnit = options.warmupUnit;
    this.startFactor = options.warmupStartFactor ?? 1 / options.workers;
    if (!(this.startFactor > 0 && this.startFactor <= 1)) {
      throw new ScheduleConfigError(`the warmup start factor must be in (0, 1] (got ${this.startFactor})`);
    }
  }

  /**
   * The rate of step `stepInEpoch` (from 0) of epoch `epochIndex` (from 0: the
   * loop's epoch 1 is 0), with `stepsPerEpoch` steps in an epoch.
   */
  lr(epochIndex: number, stepInEpoch: number, stepsPerEpoch: number): number {
    requireNonNegativeInteger('the epoch index', epochIndex);
    requireNonNegativeInteger('the step in the epoch', stepInEpoch);
    requirePositiveInteger('the steps per epoch', stepsPerEpoch);
    if (stepInEpoch >= stepsPerEpoch) throw new ScheduleConfigError(`step ${stepInEpoch} is past the epoch's ${stepsPerEpoch} steps`);
    if (this.warmupEpochs === 0) return this.peakLr;
    if (this.warmupUnit === 'epoch') {
      return this.peakLr * linearLr({ startFactor: this.startFactor, totalIters: this.warmupEpochs })(epochIndex);
    }
    const factor = linearLr({ startFactor: this.startFactor, totalIters: this.warmupEpochs * stepsPerEpoch });
    return this.peakLr * factor(epochIndex * stepsPerEpoch + stepInEpoch);
  }

  /** One line for the log. */
  describe(): string {
    const { baseLr, workers, scaleRule } = this.options;
    const scaled = scaleRule === 'none' ? `lr ${this.peakLr}` : `lr ${this.peakLr} (${baseLr} scaled by the ${scaleRule} rule for ${workers} workers)`;
    if (this.warmupEpochs === 0) return `${scaled}, no warmup`;
    return `${scaled}, linear warmup from ${this.startFactor} x lr over ${this.warmupEpochs} epochs, per ${this.warmupUnit}`;
  }
}
