import * as tf from '@tensorflow/tfjs';
import type { ModelName } from '../train/config';
import { buildCnn } from './cnn';
import { buildWideResNet } from './wideresnet';

export interface ModelSpec {
  name: ModelName;
  /** One line for learners: what the model is and where it comes from. */
  summary: string;
  /** Trainable parameters (checked against PyTorch in the tests). */
  parameters: number;
  /** Has BatchNorm or dropout, so batch splitting changes what it computes. */
  batchDependent: boolean;
}

export const MODELS: Record<ModelName, ModelSpec> = {
  cnn: {
    name: 'cnn', parameters: 225_034, batchDependent: false,
    summary: 'small convnet (conv 32, conv 64, dense 128): fast on a laptop, no BatchNorm or dropout',
  },
  'wideresnet-dw': {
    name: 'wideresnet-dw', parameters: 315_546, batchDependent: true,
    summary: "the course's WideResNet with depthwise 3x3 convolutions (groups = in): its CPU-sized variant",
  },
  wideresnet: {
    name: 'wideresnet', parameters: 17_117_466, batchDependent: true,
    summary: "the course's WideResNet as published (dense 3x3 convolutions): GPU-sized",
  },
};

export interface ModelOptions {
  /** Dropout rate inside the WideResNet blocks (the course's 0.01). */
  dropout?: number;
  /** The WideResNets' channels: input, stem, then the three stages (tests build narrow ones of the same layers). */
  widths?: readonly number[];
}

/** Builds a model with PyTorch-style initial weights drawn from `seed`. */
export function buildModel(name: ModelName, seed: number, options: ModelOptions = {}): tf.LayersModel {
  const dropout = options.dropout ?? 0.01;
  switch (name) {
    case 'cnn': return buildCnn(seed);
    case 'wideresnet-dw': return buildWideResNet(seed, true, dropout, options.widths);
    case 'wideresnet': return buildWideResNet(seed, false, dropout, options.widths);
  }
}

export function countTrainableParameters(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((sum, w) => sum + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

/**
 * Floats of activations one image produces in a forward pass (every layer's
 * output), the basis of the memory estimate that picks micro-batch sizes.
 */
export function activationFloatsPerImage(model: tf.LayersModel): number {
  let total = 0;
  for (const layer of model.layers) {
    const shape = layer.outputShape as (number | null)[];
    total += shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  }
  return total;
}
