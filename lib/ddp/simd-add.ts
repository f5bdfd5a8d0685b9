/**
 * target[i] += source[i] for float32 arrays, four lanes at a time (WebAssembly SIMD, f32x4.add,
 * written with the wasm backend's assembler). WebAssembly reads only its own memory, so both
 * arrays go through it in slices: copy in, add, copy the sum out (copies run at memory speed);
 * even so, 512 KB take about 60 us here against 150-200 us in a JavaScript loop.
 * Each lane is one IEEE float32 addition, exactly what `target[i] += source[i]` rounds to, so the
 * sums are bit-identical to the loop's. Where WebAssembly SIMD is missing the loop does the work.
 */

import { encodeModule, FunctionBuilder } from '../backend/wasm-kernels/wasm-asm';

/**
 * Floats per slice; three slices of this size live in the module's memory (3 x 256 KB): the
 * target's, the source's, and a landing area where a caller can receive what it will add, so that
 * its source needs no copy in.
 */
const SLICE_FLOATS = 65_536;
const PAGE_BYTES = 65_536;

/**
 * add(dst, src, bytes): adds 64 bytes (16 floats, four f32x4 lanes) per round from src into dst;
 * bytes is a positive multiple of 64 and both addresses are 16-byte aligned.
 */
function addFunction(): FunctionBuilder {
  const f = new FunctionBuilder('add', ['i32', 'i32', 'i32']);
  const [dst, src, bytes] = [0, 1, 2];
  const end = f.local('i32');
  f.get(dst).get(bytes).i32Add().set(end);
  f.doWhile(dst, 64, { local: end }, () => {
    for (const offset of [0, 16, 32, 48]) f.get(dst).get(dst).load('v128', offset).get(src).load('v128', offset).simd('f32x4.add').store('v128', offset);
    f.addTo(src, 64);
  });
  return f;
}

interface Kernel {
  add: (dst: number, src: number, bytes: number) => void;
  dst: Float32Array;
  src: Float32Array;
  landing: Uint8Array;
}

/** The part of the WebAssembly API used here (Node's types do not declare it without the DOM's). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: { add: Kernel['add'] } };
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
}

function loadKernel(): Kernel | null {
  if (process.env.FASHION_MNIST_SIMD === '0') return null;
  try {
    const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;
    const memory = new wasm.Memory({ initial: Math.ceil((3 * SLICE_FLOATS * 4) / PAGE_BYTES) });
    const { exports } = new wasm.Instance(new wasm.Module(encodeModule([addFunction()])), { env: { memory } });
    return {
      add: exports.add,
      dst: new Float32Array(memory.buffer, 0, SLICE_FLOATS),
      src: new Float32Array(memory.buffer, SLICE_FLOATS * 4, SLICE_FLOATS),
      landing: new Uint8Array(memory.buffer, 2 * SLICE_FLOATS * 4, SLICE_FLOATS * 4),
    };
  } catch {
    return null; // no WebAssembly SIMD on this engine or CPU
  }
}

let kernel: Kernel | null | undefined;

/** Whether the SIMD kernel runs here (false: the JavaScript loop). */
export function simdAvailable(): boolean {
  if (kernel === undefined) kernel = loadKernel();
  return kernel != null;
}

function addLoop(target: Float32Array, source: Float32Array, from: number, to: number): void {
  for (let i = from; i < to; i++) target[i] += source[i];
}

/**
 * The landing area (256 KB inside the kernel's memory): bytes received here and added from a view
 * of it skip the copy in. One owner per thread (the ring's TCP link); null without SIMD.
 */
export function landingArea(): Uint8Array | null {
  return simdAvailable() ? (kernel as Kernel).landing : null;
}

/** target[i] += source[i] for every i (the arrays have equal lengths). */
export function addInto(target: Float32Array, source: Float32Array): void {
  if (source.length !== target.length) throw new Error(`addInto: ${source.length} floats added to ${target.length}`);
  const k = simdAvailable() ? (kernel as Kernel) : null;
  const whole = k == null ? 0 : target.length - (target.length % 16);
  const inMemory = k != null && source.buffer === k.dst.buffer;
  for (let start = 0; start < whole; start += SLICE_FLOATS) {
    const n = Math.min(SLICE_FLOATS, whole - start);
    const dst = n === SLICE_FLOATS ? k!.dst : k!.dst.subarray(0, n);
    dst.set(target.subarray(start, start + n));
    if (!inMemory) k!.src.set(source.subarray(start, start + n));
    k!.add(0, inMemory ? source.byteOffset + start * 4 : SLICE_FLOATS * 4, n * 4);
    target.set(dst, start);
  }
  addLoop(target, source, whole, target.length);
}
