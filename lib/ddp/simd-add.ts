/**
 * target[i] += source[i] for float32 arrays, four lanes at a time (WebAssembly SIMD, f32x4.add,
 * written with the wasm backend's assembler). WebAssembly reads only its own memory, so arrays
 * elsewhere go through it in slices: copy in, add, copy the sum out (copies run at memory speed);
 * even so, 512 KB take about 60 us here against 150-200 us in a JavaScript loop. Arrays that lie
 * in a memory of their own (addableFloats: the ring's slots over TCP) are added where they lie.
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
 * bytes is a positive multiple of 64; the addresses may lie anywhere (WebAssembly's loads take
 * any, aligned ones run faster).
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

/** A WebAssembly memory, as this module uses it: shared ones can be posted to another thread. */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}

/** The part of the WebAssembly API used here (Node's types do not declare it without the DOM's). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: { add: Kernel['add'] } };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

const wasmApi = () => (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

function loadKernel(): Kernel | null {
  if (process.env.FASHION_MNIST_SIMD === '0') return null;
  try {
    const wasm = wasmApi();
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

/** An addable memory's landing area, at its start: a whole number of pages. */
const OWN_LANDING_BYTES = SLICE_FLOATS * 4;
/**
 * Where its floats start: a cache line past the landing area, not at a page, since the ring
 * over loopback TCP ran slower sending from page-aligned chunks (1 MB all-reduce: 0.52-0.93 ms
 * from a page, 0.39-0.69 ms a cache line past one, in two runs of three interleaved rounds).
 */
const FLOATS_AT = OWN_LANDING_BYTES + 64;

/** The add instantiated on one addable memory, in this thread, and the memory's landing area. */
interface InPlaceKernel {
  add: Kernel['add'];
  landing: Uint8Array;
}

/** Addable memories this thread knows, by their buffer; the kernel is made on first use. */
const addable = new WeakMap<ArrayBufferLike, { memory: WasmMemory; kernel?: InPlaceKernel }>();
let sharedModule: object | undefined;

function inPlaceKernel(buffer: ArrayBufferLike): InPlaceKernel | null {
  const entry = addable.get(buffer);
  if (entry == null) return null;
  if (entry.kernel == null) {
    const wasm = wasmApi();
    sharedModule ??= new wasm.Module(encodeModule([addFunction()], true));
    const { exports } = new wasm.Instance(sharedModule, { env: { memory: entry.memory } });
    entry.kernel = { add: exports.add, landing: new Uint8Array(entry.memory.buffer, 0, OWN_LANDING_BYTES) };
  }
  return entry.kernel;
}

/**
 * `floats` floats on a new shared WebAssembly memory, after a landing area of its own (256 KB):
 * bytes received there are added into them in place, with no copy in or out. The floats start a
 * cache line. Null without SIMD, or where the engine will not make the memory (an address-space limit).
 */
export function addableFloats(floats: number): { memory: WasmMemory; data: Float32Array } | null {
  if (!simdAvailable()) return null;
  try {
    const pages = Math.ceil((FLOATS_AT + Math.max(1, floats) * 4) / PAGE_BYTES);
    const memory = new (wasmApi().Memory)({ initial: pages, maximum: pages, shared: true });
    addable.set(memory.buffer, { memory });
    return { memory, data: new Float32Array(memory.buffer, FLOATS_AT, floats) };
  } catch {
    return null;
  }
}

/**
 * The floats of `view` (a view of an addable memory, posted from another thread) on `memory` as
 * this thread has it, so that they are added in place here too.
 */
export function adoptAddable(memory: WasmMemory, view: Float32Array): Float32Array {
  if (!addable.has(memory.buffer)) addable.set(memory.buffer, { memory });
  return new Float32Array(memory.buffer, view.byteOffset, view.length);
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
 * The landing area (256 KB inside a kernel's memory) for bytes to be added into `target`: bytes
 * received here and added from a view of it skip the copy in, and where `target` lies in an
 * addable memory (its own landing area then) the copies of the target too. One owner per thread
 * and memory (the ring's TCP link); null without SIMD.
 */
export function landingArea(target?: Float32Array): Uint8Array | null {
  const own = target == null ? null : inPlaceKernel(target.buffer);
  if (own != null) return own.landing;
  return simdAvailable() ? (kernel as Kernel).landing : null;
}

/** target[i] += source[i] for every i (the arrays have equal lengths). */
export function addInto(target: Float32Array, source: Float32Array): void {
  if (source.length !== target.length) throw new Error(`addInto: ${source.length} floats added to ${target.length}`);
  const own = source.buffer === target.buffer ? inPlaceKernel(target.buffer) : null;
  if (own != null) {
    const whole = target.length - (target.length % 16);
    if (whole > 0) own.add(target.byteOffset, source.byteOffset, whole * 4);
    addLoop(target, source, whole, target.length);
    return;
  }
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
