import * as tf from '@tensorflow/tfjs';
import type { Optimizer } from './optimizer';

export interface SgdOptions {
  momentum: number;
}

/**
 * torch.optim.SGD with dampening 0: buf = g on the first step, then
 * buf = momentum * buf + g; p -= lr * buf. With momentum 0: p -= lr * g.
 */
export class Sgd implements Optimizer {
  readonly name = 'sgd';
  private buffers: tf.Variable[] | null = null;

  constructor(private readonly options: SgdOptions) {}

  step(params: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    const { momentum } = this.options;
    tf.tidy(() => {
      if (momentum === 0) {
        params.forEach((p, i) => p.assign(tf.sub(p, tf.mul(grads[i], lr))));
        return;
      }
      if (this.buffers == null) {
        this.buffers = grads.map((g) => tf.variable(g, false));
      } else {
        const buffers = this.buffers;
        grads.forEach((g, i) => buffers[i].assign(tf.add(tf.mul(buffers[i], momentum), g)));
      }
      const buffers = this.buffers;
      params.forEach((p, i) => p.assign(tf.sub(p, tf.mul(buffers[i], lr))));
    });
  }

  state(): tf.Tensor[] {
    return this.buffers ?? [];
  }

  dispose(): void {
    this.buffers?.forEach((b) => b.dispose());
    this.buffers = null;
  }
}
