/**
 * A hyperparameter out of range. The message names the command-line flag that
 * sets it, e.g. "--momentum must be in [0, 1) (got 1.5)", so the command line
 * can show it as it is.
 */
export class OptimizerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptimizerConfigError';
  }
}

/** Checks that `value` lies in [0, 1); `flag` names it in the message. */
export function requireUnitInterval(flag: string, value: number): void {
  if (!(value >= 0 && value < 1)) throw new OptimizerConfigError(`${flag} must be in [0, 1) (got ${value})`);
}

/** Checks that `value` is finite and >= 0. */
export function requireNonNegative(flag: string, value: number): void {
  if (!(value >= 0 && Number.isFinite(value))) throw new OptimizerConfigError(`${flag} must be >= 0 (got ${value})`);
}

/** Checks that `value` is finite and > 0. */
export function requirePositive(flag: string, value: number): void {
  if (!(value > 0 && Number.isFinite(value))) throw new OptimizerConfigError(`${flag} must be > 0 (got ${value})`);
}

/** The settings of the optimizers that keep Adam-style moments (NovoGrad, LAMB). */
export function requireMomentSettings(s: { beta1: number; beta2: number; eps: number; weightDecay: number }): void {
  requireUnitInterval('--beta1', s.beta1);
  requireUnitInterval('--beta2', s.beta2);
  requirePositive('--eps', s.eps);
  requireNonNegative('--weight-decay', s.weightDecay);
}
