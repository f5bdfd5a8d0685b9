import * as tf from '@tensorflow/tfjs';
import { requireMomentSettings } from './errors';
import { checkStateGroups, checkStepArguments, variablesFrom, zerosLike, type Optimizer } from './optimizer';

export interface NovoGradOptions {
  /** Default 0.95. */
  beta1?: number;
  /** Default 0 (v is then the last gradient's squared norm). */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Default 0. */
  weightDecay?: number;
  /** Scale the normalized gradient by (1 - beta1) before the momentum. Default false (the course sets it). */
  gradAveraging?: boolean;
  /** Normalize by the largest v seen so far. Default false. */
  amsgrad?: boolean;
}

export const NOVOGRAD_DEFAULTS = { beta1: 0.95, beta2: 0, eps: 1e-8, weightDecay: 0, gradAveraging: false, amsgrad: false } as const;

/**
 * NovoGrad as torch_optimizer.NovoGrad (jettify/pytorch-optimizer) computes it,
 * per parameter tensor (Ginsburg et al. 2019, arXiv:1905.11286):
 *   n = sum(g^2)                                   (squared L2 norm of the tensor's gradient)
 *   v = n if v == 0 (its initial value) else beta2 * v + (1 - beta2) * n
 *   vmax = max(vmax, v) with amsgrad, and d = sqrt(vmax or v) + eps
 *   g' = g / d;  g' += weightDecay * p;  g' *= (1 - beta1) with gradAveraging
 *   m = beta1 * m + g'                             (m starts at zeros)
 *   p -= lr * m
 * v is one scalar per tensor; "v == 0" is torch_optimizer's own test, so a
 * tensor whose gradients were all zero so far takes the next norm as it is.
 */
export class NovoGrad implements Optimizer {
  readonly name = 'novograd';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly gradAveraging: boolean;
  readonly amsgrad: boolean;
  private moments: { m: tf.Variable[]; v: tf.Variable[]; vMax: tf.Variable[] } | null = null;

  constructor(options: NovoGradOptions = {}) {
    this.beta1 = options.beta1 ?? NOVOGRAD_DEFAULTS.beta1;
    this.beta2 = options.beta2 ?? NOVOGRAD_DEFAULTS.beta2;
    this.eps = options.eps ?? NOVOGRAD_DEFAULTS.eps;
    this.weightDecay = options.weightDecay ?? NOVOGRAD_DEFAULTS.weightDecay;
    this.gradAveraging = options.gradAveraging ?? NOVOGRAD_DEFAULTS.gradAveraging;
    this.amsgrad = options.amsgrad ?? NOVOGRAD_DEFAULTS.amsgrad;
    requireMomentSettings(this);
  }

  step(params: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    checkStepArguments(params, grads, lr);
    const { beta1, beta2, eps, weightDecay, gradAveraging, amsgrad } = this;
    tf.tidy(() => {
      const scalars = grads.map(() => tf.scalar(0));
      this.moments ??= { m: zerosLike(params), v: zerosLike(scalars), vMax: amsgrad ? zerosLike(scalars) : [] };
      const { m, v, vMax } = this.moments;
      params.forEach((p, i) => {
        const g = grads[i];
        const norm = tf.sum(tf.square(g));
        v[i].assign(tf.where(tf.equal(v[i], 0), norm, tf.add(tf.mul(v[i], beta2), tf.mul(norm, 1 - beta2))));
        if (amsgrad) vMax[i].assign(tf.maximum(vMax[i], v[i]));
        const denom = tf.add(tf.sqrt(amsgrad ? vMax[i] : v[i]), eps);
        let update = tf.div(g, denom);
        if (weightDecay !== 0) update = tf.add(update, tf.mul(p, weightDecay));
        if (gradAveraging) update = tf.mul(update, 1 - beta1);
        m[i].assign(tf.add(tf.mul(m[i], beta1), update));
        p.assign(tf.sub(p, tf.mul(m[i], lr)));
      });
    });
  }

  /** [m of each tensor, v of each tensor, then with amsgrad the max v of each]. */
  state(): tf.Tensor[] {
    if (this.moments == null) return [];
    return [...this.moments.m, ...this.moments.v, ...this.moments.vMax];
  }

  counters(): Record<string, number> {
    return {};
  }

  loadState(tensors: tf.Tensor[]): void {
    this.dispose();
    if (tensors.length === 0) return;
    const parts = this.amsgrad ? 3 : 2;
    checkStateGroups('novograd', tensors, parts);
    const n = tensors.length / parts;
    const all = variablesFrom(tensors);
    this.moments = { m: all.slice(0, n), v: all.slice(n, 2 * n), vMax: all.slice(2 * n) };
  }

  describe(): string {
    const extras = [
      this.weightDecay !== 0 ? `weight decay ${this.weightDecay}` : '',
      this.gradAveraging ? 'grad averaging' : '',
      this.amsgrad ? 'amsgrad' : '',
    ].filter((s) => s);
    return `novograd (beta1 ${this.beta1}, beta2 ${this.beta2}, eps ${this.eps}${extras.map((e) => `, ${e}`).join('')})`;
  }

  dispose(): void {
    if (this.moments == null) return;
    tf.dispose(this.state());
    this.moments = null;
  }
}
