import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { addressOf } from '../lib/ddp/aligned-memory';
import { addableFloats, addInto, landingArea, simdAvailable } from '../lib/ddp/simd-add';

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

it('adds in place inside an addable memory, from its own landing area, with the same sums', () => {
  const made = addableFloats(200_003);
  assert.ok(made != null);
  const { data } = made;
  assert.equal(addressOf(data)! % 4096, 64, 'the floats start a cache line past a page');
  const own = landingArea(data)!;
  assert.equal(own.buffer, data.buffer, 'the landing area lies in the floats\' memory');
  assert.notEqual(own.buffer, landingArea()!.buffer);
  data.set(seeded(data.length, 21));
  for (const [at, offset, n] of [[0, 0, 65_536], [17, 4, 65_535], [199_000, 20, 1_003]]) {
    const source = new Float32Array(own.buffer, own.byteOffset + offset, n);
    source.set(seeded(n, at + 5));
    const target = data.subarray(at, at + n);
    const expected = Float32Array.from(target, (v, i) => v + source[i]);
    addInto(target, source);
    assert.deepEqual(new Uint32Array(target.slice().buffer), new Uint32Array(expected.buffer), `${n} floats at float ${at}`);
  }
});

it('adds in place in another thread, on an addable memory posted to it', async () => {
  const made = addableFloats(100_000)!;
  const { memory, data } = made;
  data.fill(1.5);
  const module = path.join(__dirname, '..', 'lib', 'ddp', 'simd-add.js');
  const script = `const { workerData: { memory, data } } = require('node:worker_threads'); const m = require(${JSON.stringify(module)});
    const here = m.adoptAddable(memory, data); const landing = m.landingArea(here);
    const source = new Float32Array(landing.buffer, landing.byteOffset, 50_000).fill(0.25);
    m.addInto(here.subarray(10_000, 60_000), source);`;
  await new Promise((resolve, reject) => new Worker(script, { eval: true, workerData: { memory, data } }).on('exit', resolve).on('error', reject));
  assert.deepEqual([data[9_999], data[10_000], data[59_999], data[60_000]], [1.5, 1.75, 1.75, 1.5]);
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
