import * as tf from '@tensorflow/tfjs';
import { requireNonNegative, requireUnitInterval, OptimizerConfigError } from './errors';
import { checkStepArguments, type Optimizer, variablesFrom } from './optimizer';

export interface SgdOptions {
  momentum: number;
  /** L2 penalty added to the gradient (torch's weight_decay); default 0. */
  weightDecay?: number;
  /** Nesterov momentum; needs momentum > 0. Default false. */
  nesterov?: boolean;
}

/**
 * torch.optim.SGD with dampening 0:
 *   g = grad + weightDecay * p
 *   buf = g on the first step, then buf = momentum * buf + g
 *   d = g + momentum * buf (Nesterov) or d = buf
 *   p -= lr * d
 * With momentum 0 there is no buffer: p -= lr * g.
 */
export class Sgd implements Optimizer {
  readonly name = 'sgd';
  readonly momentum: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private buffers: tf.Variable[] | null = null;

  constructor(options: SgdOptions) {
    this.momentum = options.momentum;
    this.weightDecay = options.weightDecay ?? 0;
    this.nesterov = options.nesterov ?? false;
    requireUnitInterval('--momentum', this.momentum);
    requireNonNegative('--weight-decay', this.weightDecay);
    if (this.nesterov && this.momentum === 0) {
      throw new OptimizerConfigError('--nesterov needs --momentum > 0 (got 0)');
    }
  }

  step(params: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    checkStepArguments(params, grads, lr);
    const { momentum, weightDecay, nesterov } = this;
    tf.tidy(() => {
      const decayed = weightDecay === 0 ? grads : grads.map((g, i) => tf.add(g, tf.mul(params[i], weightDecay)));
      if (momentum === 0) {
        params.forEach((p, i) => p.assign(tf.sub(p, tf.mul(decayed[i], lr))));
        return;
      }
      if (this.buffers == null) {
        this.buffers = decayed.map((g) => tf.variable(g.clone(), false));
      } else {
        const buffers = this.buffers;
        decayed.forEach((g, i) => buffers[i].assign(tf.add(tf.mul(buffers[i], momentum), g)));
      }
      const buffers = this.buffers;
      params.forEach((p, i) => {
        const direction = nesterov ? tf.add(decayed[i], tf.mul(buffers[i], momentum)) : buffers[i];
        p.assign(tf.sub(p, tf.mul(direction, lr)));
      });
    });
  }

  state(): tf.Tensor[] {
    return this.buffers ?? [];
  }

  counters(): Record<string, number> {
    return {};
  }

  /** The momentum buffers, or none (before the first step, or without momentum). */
  loadState(tensors: tf.Tensor[]): void {
    this.dispose();
    this.buffers = tensors.length === 0 ? null : variablesFrom(tensors);
  }

  describe(): string {
    const extras = [this.nesterov ? 'Nesterov' : '', this.weightDecay !== 0 ? `weight decay ${this.weightDecay}` : ''].filter((s) => s);
    return `sgd (momentum ${this.momentum}${extras.map((e) => `, ${e}`).join('')})`;
  }

  dispose(): void {
    this.buffers?.forEach((b) => b.dispose());
    this.buffers = null;
  }
}
