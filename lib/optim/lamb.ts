import * as tf from '@tensorflow/tfjs';
import { requireMomentSettings } from './errors';
import { bothPositive, checkStateGroups, checkStepArguments, l2Norm, ratioOrOne, variablesFrom, zerosLike, type Optimizer } from './optimizer';

export interface LambOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-6. */
  eps?: number;
  /** Decoupled weight decay lambda, added to the Adam step. Default 0. */
  weightDecay?: number;
}

export const LAMB_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0 } as const;

/**
 * LAMB, Algorithm 2 of You et al. 2019 (arXiv:1904.00962), with Adam's bias
 * correction and phi = identity (no clipping of the weight norm), per
 * parameter tensor, t counting steps from 1:
 *   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2   (m, v start at zeros)
 *   r = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 *   u = r + weightDecay * p
 *   trust = ||p|| / ||u||, or 1 when either norm is 0
 *   p -= lr * trust * u
 * (torch_optimizer.Lamb differs: no bias correction, ||p|| clipped to 10.)
 */
export class Lamb implements Optimizer {
  readonly name = 'lamb';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private moments: { m: tf.Variable[]; v: tf.Variable[] } | null = null;
  private t = 0;

  constructor(options: LambOptions = {}) {
    this.beta1 = options.beta1 ?? LAMB_DEFAULTS.beta1;
    this.beta2 = options.beta2 ?? LAMB_DEFAULTS.beta2;
    this.eps = options.eps ?? LAMB_DEFAULTS.eps;
    this.weightDecay = options.weightDecay ?? LAMB_DEFAULTS.weightDecay;
    requireMomentSettings(this);
  }

  step(params: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    checkStepArguments(params, grads, lr);
    const { beta1, beta2, eps, weightDecay } = this;
    this.t += 1;
    const correction1 = 1 - beta1 ** this.t;
    const correction2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      this.moments ??= { m: zerosLike(params), v: zerosLike(params) };
      const { m, v } = this.moments;
      params.forEach((p, i) => {
        const g = grads[i];
        m[i].assign(tf.add(tf.mul(m[i], beta1), tf.mul(g, 1 - beta1)));
        v[i].assign(tf.add(tf.mul(v[i], beta2), tf.mul(tf.square(g), 1 - beta2)));
        const ratio = tf.div(tf.div(m[i], correction1), tf.add(tf.sqrt(tf.div(v[i], correction2)), eps));
        const update = weightDecay === 0 ? ratio : tf.add(ratio, tf.mul(p, weightDecay));
        const weightNorm = l2Norm(p);
        const updateNorm = l2Norm(update);
        const trust = ratioOrOne(weightNorm, updateNorm, bothPositive(weightNorm, updateNorm));
        p.assign(tf.sub(p, tf.mul(update, tf.mul(trust, lr))));
      });
    });
  }

  /** [m of each tensor, v of each tensor]; the step count is `steps`. */
  state(): tf.Tensor[] {
    if (this.moments == null) return [];
    return [...this.moments.m, ...this.moments.v];
  }

  /** Steps taken so far (t of the bias correction). */
  get steps(): number {
    return this.t;
  }

  counters(): Record<string, number> {
    return { t: this.t };
  }

  loadState(tensors: tf.Tensor[], counters: Record<string, number>): void {
    this.dispose();
    checkStateGroups('lamb', tensors, 2);
    const t = counters.t ?? 0;
    if (!Number.isInteger(t) || t < 0 || (t === 0) !== (tensors.length === 0)) throw new RangeError(`lamb: a saved step count of ${t} does not fit ${tensors.length} tensors`);
    this.t = t;
    if (tensors.length === 0) return;
    const n = tensors.length / 2;
    const all = variablesFrom(tensors);
    this.moments = { m: all.slice(0, n), v: all.slice(n) };
  }

  describe(): string {
    const decay = this.weightDecay !== 0 ? `, weight decay ${this.weightDecay}` : '';
    return `lamb (beta1 ${this.beta1}, beta2 ${this.beta2}, eps ${this.eps}${decay})`;
  }

  dispose(): void {
    if (this.moments != null) tf.dispose(this.state());
    this.moments = null;
    this.t = 0;
  }
}
