import * as tf from '@tensorflow/tfjs';
import { SeededInit } from './init';

/**
 * A small convnet for quick lessons on a laptop: conv 3x3 32, max-pool,
 * conv 3x3 64, max-pool, dense 128, dense 10 (225,034 parameters). No
 * BatchNorm and no dropout, so N workers averaging gradients train exactly
 * like one worker on the N-times-larger batch.
 */
export function buildCnn(seed: number): tf.LayersModel {
  const init = new SeededInit(seed);
  const conv = (name: string, inC: number, filters: number) =>
    tf.layers.conv2d({
      name, filters, kernelSize: 3, padding: 'valid', activation: 'relu',
      kernelInitializer: init.uniform(inC * 9), biasInitializer: init.uniform(inC * 9),
    });
  const dense = (name: string, inUnits: number, units: number, activation?: 'relu') =>
    tf.layers.dense({
      name, units, activation, kernelInitializer: init.uniform(inUnits), biasInitializer: init.uniform(inUnits),
    });
  const input = tf.input({ shape: [28, 28, 1], name: 'image' });
  let x = conv('conv1', 1, 32).apply(input) as tf.SymbolicTensor; // 26x26x32
  x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(x) as tf.SymbolicTensor; // 13x13
  x = conv('conv2', 32, 64).apply(x) as tf.SymbolicTensor; // 11x11x64
  x = tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }).apply(x) as tf.SymbolicTensor; // 5x5
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = dense('fc1', 5 * 5 * 64, 128, 'relu').apply(x) as tf.SymbolicTensor;
  const logits = dense('logits', 128, 10).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'cnn' });
}
