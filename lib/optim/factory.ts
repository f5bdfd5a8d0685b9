import { OptimizerConfigError } from './errors';
import { LAMB_DEFAULTS, Lamb } from './lamb';
import { LARS_DEFAULTS, Lars } from './lars';
import { NOVOGRAD_DEFAULTS, NovoGrad } from './novograd';
import type { Optimizer } from './optimizer';
import { Sgd } from './sgd';

export const OPTIMIZER_NAMES = ['sgd', 'novograd', 'lamb', 'lars'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/**
 * Every optimizer setting the command line knows. Each optimizer reads only
 * its own fields (OPTIMIZER_SETTINGS). beta1, beta2 and eps are null for "the
 * optimizer's own default", since those differ: novograd 0.95 / 0 / 1e-8
 * (torch_optimizer's), lamb 0.9 / 0.999 / 1e-6 (the paper's BERT setting).
 */
export interface OptimizerSpec {
  name: OptimizerName;
  /** sgd and lars. */
  momentum: number;
  /** All four; an L2 term (sgd, novograd, lars) or decoupled decay (lamb). */
  weightDecay: number;
  /** sgd. */
  nesterov: boolean;
  /** novograd and lamb; null = the optimizer's default. */
  beta1: number | null;
  beta2: number | null;
  eps: number | null;
  /** novograd. */
  gradAveraging: boolean;
  amsgrad: boolean;
  /** lars (eta). */
  trustCoefficient: number;
}

export type OptimizerSetting = Exclude<keyof OptimizerSpec, 'name'>;

/** The course's default: SGD with momentum 0.9; the other fields are each optimizer's own defaults. */
export const DEFAULT_OPTIMIZER_SPEC: Readonly<OptimizerSpec> = Object.freeze({
  name: 'sgd',
  momentum: 0.9,
  weightDecay: 0,
  nesterov: false,
  beta1: null,
  beta2: null,
  eps: null,
  gradAveraging: NOVOGRAD_DEFAULTS.gradAveraging,
  amsgrad: NOVOGRAD_DEFAULTS.amsgrad,
  trustCoefficient: LARS_DEFAULTS.trustCoefficient,
});

/** The command-line flag of each setting. */
export const OPTIMIZER_FLAGS: Readonly<Record<OptimizerSetting, string>> = Object.freeze({
  momentum: '--momentum',
  weightDecay: '--weight-decay',
  nesterov: '--nesterov',
  beta1: '--beta1',
  beta2: '--beta2',
  eps: '--eps',
  gradAveraging: '--grad-averaging',
  amsgrad: '--amsgrad',
  trustCoefficient: '--trust-coefficient',
});

/** The settings each optimizer reads; the others have no effect on it. */
export const OPTIMIZER_SETTINGS: Readonly<Record<OptimizerName, readonly OptimizerSetting[]>> = Object.freeze({
  sgd: ['momentum', 'weightDecay', 'nesterov'],
  novograd: ['beta1', 'beta2', 'eps', 'weightDecay', 'gradAveraging', 'amsgrad'],
  lamb: ['beta1', 'beta2', 'eps', 'weightDecay'],
  lars: ['momentum', 'weightDecay', 'trustCoefficient'],
});

function checkName(name: string): OptimizerName {
  const found = OPTIMIZER_NAMES.find((n) => n === name);
  if (found === undefined) throw new OptimizerConfigError(`--optimizer must be one of ${OPTIMIZER_NAMES.join(', ')} (got '${name}')`);
  return found;
}

/** The spec with beta1, beta2 and eps filled in with novograd's or lamb's own defaults (for logs and run records). */
export function resolveOptimizerSpec(spec: OptimizerSpec): OptimizerSpec {
  const name = checkName(spec.name);
  if (name !== 'novograd' && name !== 'lamb') return { ...spec, name };
  const own = name === 'lamb' ? LAMB_DEFAULTS : NOVOGRAD_DEFAULTS;
  return { ...spec, name, beta1: spec.beta1 ?? own.beta1, beta2: spec.beta2 ?? own.beta2, eps: spec.eps ?? own.eps };
}

/**
 * Throws when a setting that differs from DEFAULT_OPTIMIZER_SPEC has no effect
 * on the chosen optimizer (e.g. --nesterov with --optimizer lamb), so that a
 * flag is never ignored silently.
 */
export function checkSettingsApply(spec: OptimizerSpec): void {
  const name = checkName(spec.name);
  const used = OPTIMIZER_SETTINGS[name];
  for (const key of Object.keys(OPTIMIZER_FLAGS) as OptimizerSetting[]) {
    if (used.includes(key) || spec[key] === DEFAULT_OPTIMIZER_SPEC[key]) continue;
    const users = OPTIMIZER_NAMES.filter((n) => OPTIMIZER_SETTINGS[n].includes(key));
    throw new OptimizerConfigError(`${OPTIMIZER_FLAGS[key]} has no effect on --optimizer ${name} (it applies to ${users.join(', ')})`);
  }
}

/** Builds the optimizer a spec names; throws OptimizerConfigError for a bad name or hyperparameter. */
export function createOptimizer(spec: OptimizerSpec): Optimizer {
  const name = checkName(spec.name);
  const undefinedIfNull = (x: number | null) => x ?? undefined;
  switch (name) {
    case 'sgd':
      return new Sgd({ momentum: spec.momentum, weightDecay: spec.weightDecay, nesterov: spec.nesterov });
    case 'novograd':
      return new NovoGrad({
        beta1: undefinedIfNull(spec.beta1), beta2: undefinedIfNull(spec.beta2), eps: undefinedIfNull(spec.eps),
        weightDecay: spec.weightDecay, gradAveraging: spec.gradAveraging, amsgrad: spec.amsgrad,
      });
    case 'lamb':
      return new Lamb({ beta1: undefinedIfNull(spec.beta1), beta2: undefinedIfNull(spec.beta2), eps: undefinedIfNull(spec.eps), weightDecay: spec.weightDecay });
    case 'lars':
      return new Lars({ momentum: spec.momentum, weightDecay: spec.weightDecay, trustCoefficient: spec.trustCoefficient });
  }
}
