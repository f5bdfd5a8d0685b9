import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/**
 * Writes the model in tfjs's standard layers format (model.json +
 * weights.bin), loadable with tf.loadLayersModel. Works on every engine:
 * tfjs's own file:// saver exists only with tfjs-node.
 */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData as ArrayBuffer | ArrayBuffer[]);
    const modelJson = {
      modelTopology: artifacts.modelTopology,
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: null,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(weightData));
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }));
}

/** The saved weights by name, read straight from the files (no model needed). */
export function readSavedWeights(dir: string): Map<string, Float32Array> {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as {
    weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
  };
  const weights = new Map<string, Float32Array>();
  for (const group of manifest.weightsManifest) {
    const buffers = group.paths.map((p) => fs.readFileSync(path.join(dir, p)));
    const bytes = Buffer.concat(buffers);
    let offset = 0;
    for (const spec of group.weights) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      if (spec.dtype !== 'float32') throw new Error(`${dir}: weight ${spec.name} has dtype ${spec.dtype}, expected float32`);
      weights.set(spec.name, new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + size * 4)));
      offset += size * 4;
    }
  }
  return weights;
}

/** Loads a saved model into tfjs from its folder (any engine). */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const weights = fs.readFileSync(path.join(dir, 'weights.bin'));
  const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights);
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs,
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
  }));
}
