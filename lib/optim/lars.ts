import * as tf from '@tensorflow/tfjs';
import { requireNonNegative, requirePositive, requireUnitInterval } from './errors';
import { bothPositive, checkStepArguments, l2Norm, ratioOrOne, variablesFrom, zerosLike, type Optimizer } from './optimizer';

export interface LarsOptions {
  /** Default 0.9. */
  momentum?: number;
  /** beta of the paper. Default 0. */
  weightDecay?: number;
  /** eta of the paper. Default 0.001. */
  trustCoefficient?: number;
}

export const LARS_DEFAULTS = { momentum: 0.9, weightDecay: 0, trustCoefficient: 0.001 } as const;

/**
 * LARS, Algorithm 1 of You, Gitman and Ginsburg 2017 (arXiv:1708.03888), per
 * parameter tensor ("layer"), with the global learning rate lr of the step:
 *   local = eta * ||p|| / (||g|| + weightDecay * ||p||), or 1 when ||p|| or ||g|| is 0
 *   v = momentum * v + lr * local * (g + weightDecay * p)     (v starts at zeros)
 *   p -= v
 * The fallback to 1 is the convention of NVIDIA's LARC and torchlars; every
 * tensor is adapted (none is excluded, biases included).
 */
export class Lars implements Optimizer {
  readonly name = 'lars';
  readonly momentum: number;
  readonly weightDecay: number;
  readonly trustCoefficient: number;
  private velocities: tf.Variable[] | null = null;

  constructor(options: LarsOptions = {}) {
    this.momentum = options.momentum ?? LARS_DEFAULTS.momentum;
    this.weightDecay = options.weightDecay ?? LARS_DEFAULTS.weightDecay;
    this.trustCoefficient = options.trustCoefficient ?? LARS_DEFAULTS.trustCoefficient;
    requireUnitInterval('--momentum', this.momentum);
    requireNonNegative('--weight-decay', this.weightDecay);
    requirePositive('--trust-coefficient', this.trustCoefficient);
  }

  step(params: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    checkStepArguments(params, grads, lr);
    const { momentum, weightDecay, trustCoefficient } = this;
    tf.tidy(() => {
      this.velocities ??= zerosLike(params);
      const velocities = this.velocities;
      params.forEach((p, i) => {
        const g = grads[i];
        const weightNorm = l2Norm(p);
        const gradNorm = l2Norm(g);
        const denominator = tf.add(gradNorm, tf.mul(weightNorm, weightDecay));
        const local = ratioOrOne(tf.mul(weightNorm, trustCoefficient), denominator, bothPositive(weightNorm, gradNorm));
        const direction = weightDecay === 0 ? g : tf.add(g, tf.mul(p, weightDecay));
        velocities[i].assign(tf.add(tf.mul(velocities[i], momentum), tf.mul(direction, tf.mul(local, lr))));
        p.assign(tf.sub(p, velocities[i]));
      });
    });
  }

  /** The momentum buffer v of each tensor. */
  state(): tf.Tensor[] {
    return this.velocities ?? [];
  }

  counters(): Record<string, number> {
    return {};
  }

  loadState(tensors: tf.Tensor[]): void {
    this.dispose();
    this.velocities = tensors.length === 0 ? null : variablesFrom(tensors);
  }

  describe(): string {
    const decay = this.weightDecay !== 0 ? `, weight decay ${this.weightDecay}` : '';
    return `lars (momentum ${this.momentum}, trust coefficient ${this.trustCoefficient}${decay})`;
  }

  dispose(): void {
    this.velocities?.forEach((v) => v.dispose());
    this.velocities = null;
  }
}
