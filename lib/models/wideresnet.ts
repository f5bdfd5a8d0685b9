import * as tf from '@tensorflow/tfjs';
import { batchNorm } from './batch-norm';
import { SeededDropout } from './dropout';
import { SeededInit } from './init';
import { reLU } from './relu';

type Sym = tf.SymbolicTensor;

/** Channel widths of the course's WideResNet. */
const WIDTHS = [1, 16, 160, 320, 640] as const;

/**
 * The course's WideResNet, as its published script defines it:
 * cbr(1,16), blocks 16->160, 160->160, max-pool 2, 160->320, 320->320,
 * max-pool 2, 320->640, 640->640, average-pool 7, linear 640->10.
 * cbr(in, out) = 3x3 'same' conv without bias, BatchNorm, ReLU.
 * block(in, out) = cbr(in, out), dropout (0.01), cbr(out, out), plus the input
 * (through a 1x1 conv with bias when the width changes).
 * `depthwise` groups each 3x3 conv by input channel (PyTorch groups = in),
 * which tfjs writes as a depthwise conv with channel multiplier out/in.
 */
export function buildWideResNet(seed: number, depthwise: boolean, dropout: number, widths: readonly number[] = WIDTHS): tf.LayersModel {
  const init = new SeededInit(seed);
  let layerIndex = 0;
  const nextName = (kind: string) => `${kind}${++layerIndex}`;

  const conv3x3 = (x: Sym, inC: number, outC: number): Sym => {
    if (depthwise) {
      return tf.layers.depthwiseConv2d({
        name: nextName('dwconv'), kernelSize: 3, depthMultiplier: outC / inC, padding: 'same', useBias: false,
        depthwiseInitializer: init.uniform(9),
      }).apply(x) as Sym;
    }
    return tf.layers.conv2d({
      name: nextName('conv'), filters: outC, kernelSize: 3, padding: 'same', useBias: false,
      kernelInitializer: init.uniform(inC * 9),
    }).apply(x) as Sym;
  };
  const cbr = (x: Sym, inC: number, outC: number): Sym => {
    const conv = conv3x3(x, inC, outC);
    const normed = batchNorm(nextName('bn')).apply(conv) as Sym;
    return reLU(nextName('relu')).apply(normed) as Sym;
  };
  const block = (x: Sym, inC: number, outC: number): Sym => {
    let main = cbr(x, inC, outC);
    main = new SeededDropout(init.seed(), { name: nextName('dropout'), rate: dropout }).apply(main) as Sym;
    main = cbr(main, outC, outC);
    const skip = inC === outC ? x : tf.layers.conv2d({
      name: nextName('skip'), filters: outC, kernelSize: 1, useBias: true,
      kernelInitializer: init.uniform(inC), biasInitializer: init.uniform(inC),
    }).apply(x) as Sym;
    return tf.layers.add({ name: nextName('add') }).apply([main, skip]) as Sym;
  };

  const [c0, c1, c2, c3, c4] = widths;
  const input = tf.input({ shape: [28, 28, c0], name: 'image' });
  let x = cbr(input, c0, c1);
  x = block(x, c1, c2);
  x = block(x, c2, c2);
  x = tf.layers.maxPooling2d({ name: nextName('pool'), poolSize: 2 }).apply(x) as Sym;
  x = block(x, c2, c3);
  x = block(x, c3, c3);
  x = tf.layers.maxPooling2d({ name: nextName('pool'), poolSize: 2 }).apply(x) as Sym;
  x = block(x, c3, c4);
  x = block(x, c4, c4);
  x = tf.layers.averagePooling2d({ name: nextName('avgpool'), poolSize: 7 }).apply(x) as Sym;
  x = tf.layers.flatten({ name: nextName('flatten') }).apply(x) as Sym;
  const logits = tf.layers.dense({
    name: 'logits', units: 10, kernelInitializer: init.uniform(c4), biasInitializer: init.uniform(c4),
  }).apply(x) as Sym;
  return tf.model({ inputs: input, outputs: logits, name: depthwise ? 'wideresnet_dw' : 'wideresnet' });
}
