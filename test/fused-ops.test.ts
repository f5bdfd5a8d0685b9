import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../lib/backend/select';
import { setSimdKernelsEnabled } from '../lib/backend/wasm-kernels/simd-module';
import { DROPOUT, DROPOUT_GRAD, dropoutKey, dropoutMask, registerDropoutKernels } from '../lib/kernels/dropout-kernels';
import { RELU_GRAD } from '../lib/kernels/relu-grad';
import { SeededDropout, seededDropout } from '../lib/models/dropout';
import { reLU } from '../lib/models/relu';

const normal = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** Bitwise equality (NaN equals NaN, +0 differs from -0). */
function assertSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i] && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) {
      assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/** Dropout's output and gradient (for the upstream gradient dy) on `backend`. */
function dropoutOn(backend: string, x: tf.Tensor, dy: tf.Tensor, rate: number, seed: number, call: number): { y: Float32Array; dx: Float32Array } {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => seededDropout(t, rate, seed, call))(x, dy);
    return { y: value.dataSync() as Float32Array, dx: grad.dataSync() as Float32Array };
  });
}

function dataIds(): number {
  return (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
}

/** Runs f and checks that it leaves no tensor and no backend buffer behind. */
function withoutLeaks(f: () => void): void {
  const before = { tensors: tf.memory().numTensors, ids: dataIds() };
  f();
  assert.equal(tf.memory().numTensors, before.tensors, 'tensors left behind');
  assert.equal(dataIds(), before.ids, 'backend buffers left behind');
}

describe('fused dropout', () => {
  before(async () => {
    await initEngine('wasm');
    registerDropoutKernels();
  });

  // Sizes with and without a tail after the SIMD groups of four.
  for (const shape of [[2, 5, 5, 3], [3, 7], [4, 28, 28, 16], [1_000_003]]) {
    it(`gives identical outputs and gradients on wasm (SIMD and JS loops) and cpu, shape [${shape}]`, () => {
      const x = normal(shape, 1);
      const dy = normal(shape, 2);
      const cpu = dropoutOn('cpu', x, dy, 0.3, 11, 4);
      const wasm = dropoutOn('wasm', x, dy, 0.3, 11, 4);
      setSimdKernelsEnabled(false);
      const wasmJs = dropoutOn('wasm', x, dy, 0.3, 11, 4);
      setSimdKernelsEnabled(true);
      for (const [name, r] of [['wasm', wasm], ['wasm without SIMD', wasmJs]] as const) {
        assertSameBits(r.y, cpu.y, `${name} output`);
        assertSameBits(r.dx, cpu.dx, `${name} gradient`);
      }
      tf.dispose([x, dy]);
    });
  }

  it('matches the tf-ops path other backends take (same mask, same values)', () => {
    const x = normal([6, 9, 9, 5], 3);
    const dy = normal([6, 9, 9, 5], 4);
    const fused = dropoutOn('cpu', x, dy, 0.2, 5, 9);
    const configs = [DROPOUT, DROPOUT_GRAD].map((k) => tf.getKernel(k, 'cpu'));
    for (const k of [DROPOUT, DROPOUT_GRAD]) tf.unregisterKernel(k, 'cpu');
    try {
      const ops = dropoutOn('cpu', x, dy, 0.2, 5, 9);
      assertSameBits(fused.y, ops.y, 'output');
      assertSameBits(fused.dx, ops.dx, 'gradient');
      tf.setBackend('cpu');
      // ...and tf.dropout's formula with that mask.
      const expected = tf.tidy(() => tf.mul(tf.div(x, 0.8), tf.tensor(dropoutMask(x.size, 0.2, dropoutKey(5, 9)), x.shape)).dataSync() as Float32Array);
      assertSameBits(ops.y, expected, 'tf.dropout formula');
    } finally {
      for (const c of configs) tf.registerKernel(c as tf.KernelConfig);
    }
    tf.dispose([x, dy]);
  });

  it('gives masks that look independent across calls and across neighbouring elements', () => {
    tf.setBackend('wasm');
    const n = 1_000_000;
    const x = tf.ones([n]);
    for (const rate of [0.5, 0.1]) {
      const [m0, m1] = [0, 1].map((call) => tf.tidy(() => seededDropout(x, rate, 7, call).dataSync() as Float32Array));
      let acrossCalls = 0;
      let neighbours = 0;
      for (let i = 0; i < n - 1; i++) {
        if (m0[i] === 0 && m1[i] === 0) acrossCalls++;
        if (m0[i] === 0 && m0[i + 1] === 0) neighbours++;
      }
      // Independent masks drop both with probability rate^2 (binomial spread well under the tolerance).
      const tolerance = 6 * Math.sqrt(rate * rate / n);
      assert.ok(Math.abs(acrossCalls / n - rate * rate) < tolerance, `rate ${rate}, two calls: ${acrossCalls / n}`);
      assert.ok(Math.abs(neighbours / n - rate * rate) < tolerance, `rate ${rate}, neighbours: ${neighbours / n}`);
    }
    x.dispose();
  });

  it('drops a fraction rate of the elements', () => {
    tf.setBackend('wasm');
    const x = tf.ones([1_000_000]);
    for (const [rate, tolerance] of [[0.3, 0.005], [0.01, 0.001], [0.5, 0.005]]) {
      for (const call of [0, 1]) {
        const y = tf.tidy(() => seededDropout(x, rate, 42, call).dataSync() as Float32Array);
        let dropped = 0;
        for (const v of y) if (v === 0) dropped++;
        const fraction = dropped / y.length;
        assert.ok(Math.abs(fraction - rate) < tolerance, `rate ${rate}: dropped ${fraction}`);
        const kept = Math.fround(1 / Math.fround(1 - rate));
        assert.ok(y.every((v) => v === 0 || v === kept), 'kept values are x / (1 - rate)');
      }
    }
    x.dispose();
  });

  it('is reproducible, and differs between calls and between seeds (independent masks)', () => {
    tf.setBackend('wasm');
    const x = tf.ones([200_000]);
    const mask = (seed: number, call: number) => tf.tidy(() => (seededDropout(x, 0.3, seed, call).dataSync() as Float32Array).map((v) => (v === 0 ? 0 : 1)));
    assertSameBits(mask(7, 3), mask(7, 3), 'same seed and call');
    const masks = [mask(7, 3), mask(7, 4), mask(8, 3), mask(8, 4), mask(7_000_003, 3)];
    for (let a = 0; a < masks.length; a++) {
      for (let b = a + 1; b < masks.length; b++) {
        let bothDropped = 0;
        for (let i = 0; i < x.size; i++) if (masks[a][i] === 0 && masks[b][i] === 0) bothDropped++;
        // Independent masks drop the same element with probability 0.3^2.
        const f = bothDropped / x.size;
        assert.ok(Math.abs(f - 0.09) < 0.004, `masks ${a} and ${b}: both dropped ${f}`);
      }
    }
    x.dispose();
  });

  it('has the gradient mask * dy / (1 - rate), with the forward pass mask', () => {
    for (const backend of ['wasm', 'cpu']) {
      const x = normal([4, 14, 14, 10], 5);
      const dy = normal([4, 14, 14, 10], 6);
      const { y, dx } = dropoutOn(backend, x, dy, 0.25, 3, 17);
      const xs = x.dataSync();
      const dys = dy.dataSync();
      const keep = Math.fround(0.75);
      let dropped = 0;
      for (let i = 0; i < xs.length; i++) {
        const m = y[i] === 0 ? 0 : 1;
        dropped += 1 - m;
        assert.equal(y[i], m * Math.fround(xs[i] / keep), `${backend} output ${i}`);
        assert.equal(dx[i], m * Math.fround(dys[i] / keep), `${backend} gradient ${i}`);
      }
      assert.ok(dropped > 0 && dropped < xs.length / 2);
      tf.dispose([x, dy]);
    }
  });

  it('SeededDropout: new mask at each training call, same sequence in every run, identity in inference', () => {
    tf.setBackend('wasm');
    const x = normal([8, 6, 6, 4], 9);
    const sequence = () => {
      const layer = new SeededDropout(123, { name: 'drop', rate: 0.3 });
      return [0, 1, 2].map(() => tf.tidy(() => (layer.apply(x, { training: true }) as tf.Tensor).dataSync() as Float32Array));
    };
    const [run1, run2] = [sequence(), sequence()];
    run1.forEach((y, i) => assertSameBits(run2[i], y, `call ${i}`));
    assert.notDeepEqual(run1[0], run1[1]);
    assert.notDeepEqual(run1[1], run1[2]);
    const other = new SeededDropout(124, { name: 'drop2', rate: 0.3 });
    assert.notDeepEqual(tf.tidy(() => (other.apply(x, { training: true }) as tf.Tensor).dataSync()), run1[0]);

    const layer = new SeededDropout(123, { name: 'drop3', rate: 0.3 });
    for (const kwargs of [{ training: false }, {}]) {
      assertSameBits(tf.tidy(() => (layer.apply(x, kwargs) as tf.Tensor).dataSync() as Float32Array), x.dataSync() as Float32Array, 'inference');
    }
    assert.equal(layer.getClassName(), 'Dropout');
    assert.equal(layer.getConfig()['rate'], 0.3);
    x.dispose();
  });

  it('leaves no tensors or buffers behind', () => {
    for (const backend of ['wasm', 'cpu']) {
      tf.setBackend(backend);
      const x = normal([4, 7, 7, 8], 1);
      withoutLeaks(() => {
        const layer = new SeededDropout(5, { name: 'drop', rate: 0.1 });
        for (let i = 0; i < 3; i++) {
          tf.tidy(() => {
            tf.grad((t: tf.Tensor) => tf.sum(tf.square(layer.apply(t, { training: true }) as tf.Tensor)))(x);
          });
        }
      });
      x.dispose();
    }
  });
});

describe('one-pass ReLU gradient', () => {
  before(async () => {
    await initEngine('wasm');
    reLU('relu_registers_the_gradient');
  });

  const special = [NaN, -0, 0, 1, -1, Infinity, -Infinity, 1e-45, -1e-45, 3.5];
  const cases: Record<string, () => [tf.Tensor, tf.Tensor]> = {
    'special values': () => [tf.tensor1d(special.concat(special)), tf.tensor1d([...special].reverse().concat(special.map((v) => -v)))],
    'a 4-d activation with a tail': () => [normal([3, 5, 7, 9], 1), normal([3, 5, 7, 9], 2)],
    'random with zeros': () => [tf.tidy(() => tf.relu(normal([4, 28, 28, 16], 3)).sub(0.1).relu()), normal([4, 28, 28, 16], 4)],
  };

  for (const [name, make] of Object.entries(cases)) {
    it(`equals tfjs's mul(dy, cast(step(x))) bit for bit on wasm and cpu: ${name}`, () => {
      const [x, dy] = make();
      for (const backend of ['wasm', 'cpu']) {
        tf.setBackend(backend);
        assert.ok(tf.getKernel(RELU_GRAD, backend) != null);
        const expected = tf.tidy(() => tf.mul(dy, tf.cast(tf.step(x), 'float32')).dataSync() as Float32Array);
        const viaGrad = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy).dataSync() as Float32Array);
        const kernel = tf.tidy(() => (tf.engine().runKernel(RELU_GRAD, { dy, x }, {}) as tf.Tensor).dataSync() as Float32Array);
        assertSameBits(viaGrad, expected, `${backend} gradient`);
        assertSameBits(kernel, expected, `${backend} kernel`);
        setSimdKernelsEnabled(false);
        const js = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy).dataSync() as Float32Array);
        setSimdKernelsEnabled(true);
        assertSameBits(js, expected, `${backend} without SIMD`);
      }
      tf.dispose([x, dy]);
    });
  }

  it('runs one kernel instead of step, cast and mul, and leaves nothing behind', async () => {
    tf.setBackend('wasm');
    const x = normal([2, 8, 8, 4], 1);
    const layer = reLU('relu_test');
    const before = { tensors: tf.memory().numTensors, ids: dataIds() };
    const info = await tf.profile(() => {
      tf.tidy(() => {
        tf.grad((t: tf.Tensor) => tf.sum(layer.apply(t) as tf.Tensor))(x);
      });
    });
    assert.ok(info.kernelNames.includes(RELU_GRAD), `kernels: ${info.kernelNames}`);
    assert.ok(!info.kernelNames.includes('Step'), `kernels: ${info.kernelNames}`);
    assert.equal(tf.memory().numTensors, before.tensors, 'tensors left behind');
    assert.equal(dataIds(), before.ids, 'backend buffers left behind');
    x.dispose();
  });
});
