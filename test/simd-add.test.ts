import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { it } from 'node:test';
import { addInto, landingArea, simdAvailable } from '../lib/ddp/simd-add';

const seeded = (n: number, seed: number) => {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 10 ** ((s % 7) - 3);
  });
};

it('runs the WebAssembly SIMD kernel here', () => {
  assert.equal(simdAvailable(), true);
});

it('adds bit for bit like target[i] += source[i], at every length around the lanes and the slices', () => {
  for (const n of [0, 1, 15, 16, 17, 63, 64, 65, 1000, 65_535, 65_536, 65_537, 200_003]) {
    const target = seeded(n, n + 1);
    const source = seeded(n, n + 2);
    const expected = target.slice();
    for (let i = 0; i < n; i++) expected[i] += source[i];
    addInto(target, source);
    assert.deepEqual(new Uint32Array(target.buffer), new Uint32Array(expected.buffer), `${n} floats`);
  }
});

it('adds into shared memory and from views at odd offsets', () => {
  const target = new Float32Array(new SharedArrayBuffer(4 * 70_000)).subarray(3);
  const source = seeded(70_003, 9).subarray(6, 70_003);
  target.set(seeded(69_997, 8));
  const expected = Float32Array.from(target, (v, i) => v + source[i]);
  addInto(target, source);
  assert.deepEqual(Array.from(target), Array.from(expected));
});

it('adds from views of its landing area in place, at offsets that are not 16-byte aligned, with the same sums', () => {
  const landing = landingArea();
  assert.ok(landing != null && landing.byteLength === 256 * 1024);
  const cases: [offset: number, floats: number][] = [[0, 65_536], [4, 65_535], [20, 1_000], [131_072, 32_768], [262_140, 1]];
  for (const [offset, n] of cases) {
    const source: Float32Array = new Float32Array(landing.buffer, landing.byteOffset + offset, n);
    source.set(seeded(n, offset + 3));
    const before: Float32Array = source.slice();
    const target = seeded(n, offset + 4);
    const expected: Float32Array = Float32Array.from(target, (v: number, i: number) => v + before[i]);
    addInto(target, source);
    assert.deepEqual(new Uint32Array(target.buffer), new Uint32Array(expected.buffer), `${n} floats at byte ${offset}`);
    assert.deepEqual(source, before, 'the landing area was changed');
  }
});

it('refuses arrays of different lengths', () => {
  assert.throws(() => addInto(new Float32Array(3), new Float32Array(4)), /4 floats added to 3/);
});

it('falls back to the loop, with the same sums, where SIMD is off', () => {
  const module = path.join(__dirname, '..', 'lib', 'ddp', 'simd-add.js');
  const script = `const m = require(${JSON.stringify(module)}); const a = new Float32Array(1000).map((_, i) => i / 7), b = a.map((v) => v * 3);
    m.addInto(a, b); process.stdout.write(JSON.stringify([m.simdAvailable(), Array.from(a.slice(0, 50))]));`;
  const run = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, FASHION_MNIST_SIMD: '0' }, encoding: 'utf8' });
  const [simd, values] = JSON.parse(run.stdout) as [boolean, number[]];
  assert.equal(simd, false);
  const a = new Float32Array(1000).map((_, i) => i / 7);
  const b = a.map((v) => v * 3);
  addInto(a, b);
  assert.deepEqual(values, Array.from(a.slice(0, 50)));
});
