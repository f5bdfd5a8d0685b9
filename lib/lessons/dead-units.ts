/**
 * Dead ReLU units: a unit (a channel of a convolution, a neuron of a dense layer) whose output is
 * zero for every test image at every position has a zero gradient too, so training can never
 * revive it. Measured on a run's initial weights and on its checkpoints.
 */
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../backend/select';
import { gatherBatch, loadFashionMnist } from '../data/fashion-mnist';
import { buildModel } from '../models/index';
import { loadCheckpoint } from '../train/checkpoint';
import type { TrainConfig } from '../train/config';

export interface DeadUnits {
  layer: string;
  units: number;
  dead: number;
}

/** The layers whose output is a ReLU: ReLU layers, and layers with activation 'relu'. */
function reluLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === 'ReLU' || (l.getConfig() as { activation?: string }).activation === 'relu');
}

/** Per ReLU layer, the units that output zero for every one of `images` (NHWC or NC outputs: the last axis is the unit). */
export function countDeadUnits(model: tf.LayersModel, images: tf.Tensor4D): DeadUnits[] {
  const layers = reluLayers(model);
  if (layers.length === 0) throw new RangeError(`model ${model.name} has no ReLU layers`);
  const probe = tf.model({ inputs: model.inputs, outputs: layers.map((l) => l.output as tf.SymbolicTensor) });
  return tf.tidy(() => {
    const outputs = probe.predict(images);
    return (Array.isArray(outputs) ? outputs : [outputs]).map((out, i) => {
      const units = out.shape[out.shape.length - 1] as number;
      const alive = out.reshape([-1, units]).max(0).greater(0).sum().dataSync()[0];
      return { layer: layers[i].name, units, dead: units - alive };
    });
  });
}

export interface DeadUnitsAt {
  /** 0: the initial weights. */
  epoch: number;
  layers: DeadUnits[];
}

/**
 * Dead units of a run at its start (its seed's initial weights) and after its newest checkpoint
 * (null: the run has none, e.g. it diverged in its first epoch), on the first `images` test images.
 */
export async function deadUnitsOfRun(run: { config: TrainConfig; runDir: string }, images = 1000): Promise<{ start: DeadUnitsAt; end: DeadUnitsAt | null }> {
  await initEngine(run.config.backend);
  const data = loadFashionMnist({ dataDir: run.config.dataDir });
  const n = Math.min(images, data.test.count);
  const batch = gatherBatch(data.test, Array.from({ length: n }, (_, i) => i));
  const input = tf.tensor4d(batch.images, [n, 28, 28, 1]);
  const model = buildModel(run.config.model, run.config.seed, { dropout: run.config.dropout });
  try {
    const start: DeadUnitsAt = { epoch: 0, layers: countDeadUnits(model, input) };
    const { checkpoint } = loadCheckpoint(run.runDir);
    if (checkpoint == null) return { start, end: null };
    const weights = checkpoint.values.slice(0, checkpoint.header.weightCount).map((v, i) => tf.tensor(v, checkpoint.header.tensors[i].shape));
    model.setWeights(weights);
    tf.dispose(weights);
    return { start, end: { epoch: checkpoint.header.epoch, layers: countDeadUnits(model, input) } };
  } finally {
    model.dispose();
    input.dispose();
  }
}
