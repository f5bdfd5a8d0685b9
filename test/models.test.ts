import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { buildModel, countTrainableParameters, MODELS } from '../lib/models';
import { MODEL_NAMES } from '../lib/train/config';

const ROOT = path.resolve(__dirname, '..', '..');

describe('models', () => {
  before(async () => {
    await initEngine('wasm');
  });

  it('have the trainable parameter counts PyTorch gives the same architectures', () => {
    const out = execFileSync('/usr/bin/python3', [path.join(ROOT, 'bench', 'pytorch_reference.py'), '--params-only'], { encoding: 'utf8' });
    const torchCounts = JSON.parse(out) as Record<string, number>;
    for (const name of MODEL_NAMES) {
      const model = buildModel(name, 0);
      const count = countTrainableParameters(model);
      assert.equal(count, torchCounts[name], `${name}: ours ${count}, PyTorch ${torchCounts[name]}`);
      assert.equal(count, MODELS[name].parameters);
      model.dispose();
    }
    assert.equal(torchCounts['wideresnet'], 17_117_466);
    assert.equal(torchCounts['wideresnet-dw'], 315_546);
  });

  it('draw their initial weights from the seed', () => {
    const weights = (seed: number) => buildModel('cnn', seed).getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(weights(5), weights(5));
    assert.notDeepEqual(weights(5), weights(6));
  });

  it('initialise like PyTorch: uniform within 1/sqrt(fan_in)', () => {
    const model = buildModel('cnn', 0);
    const conv2 = model.getLayer('conv2').getWeights()[0];
    const bound = 1 / Math.sqrt(32 * 9);
    const values = Array.from(conv2.dataSync() as Float32Array);
    const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(max <= bound && max > 0.9 * bound, `max |w| ${max}, bound ${bound}`);
  });

  it('map a batch of images to 10 logits', () => {
    for (const name of ['cnn', 'wideresnet-dw'] as const) {
      const model = buildModel(name, 0);
      const out = model.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor;
      assert.deepEqual(out.shape, [2, 10]);
    }
  });
});
