import { encodeModule, FunctionBuilder } from './wasm-asm';

/**
 * Instantiates small generated SIMD modules on the wasm backend's own memory
 * (Emscripten exports it as asm.memory), so they read and write tensors in
 * place. Returns null where that is not possible; callers then keep their
 * previous path (JS loops or XNNPACK).
 */

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: abstract new (...args: never[]) => object;
  validate(bytes: Uint8Array): boolean;
}

interface EmscriptenModuleLike {
  asm?: { memory?: unknown };
  wasmExports?: { memory?: unknown };
  HEAPU8: Uint8Array;
}

/** Anything with the wasm backend's `wasm` field. */
export interface HeapOwner {
  wasm: unknown;
}

export type SimdFunction = (...args: number[]) => number | void;
export type SimdFunctions = Record<string, SimdFunction>;

const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
let enabled = true;
let supported: boolean | null = null;
const cache = new WeakMap<object, Map<string, SimdFunctions | null>>();

/** Turns the SIMD kernels off (or back on), e.g. to compare them with the JS loops. */
export function setSimdKernelsEnabled(on: boolean): void {
  enabled = on;
}

function simdSupported(): boolean {
  if (supported == null) {
    const probe = new FunctionBuilder('probe', ['i32']);
    probe.get(0).get(0).load('v128').store('v128');
    supported = api != null && api.validate(encodeModule([probe]));
  }
  return supported;
}

function heapMemory(owner: HeapOwner): object | null {
  if (api == null) return null;
  const module = owner.wasm as EmscriptenModuleLike;
  const memory = module.asm?.memory ?? module.wasmExports?.memory;
  if (!(memory instanceof api.Memory)) return null;
  return (memory as { buffer: ArrayBuffer }).buffer === module.HEAPU8.buffer ? memory : null;
}

/**
 * The exports of the module that `build` describes, instantiated once per
 * backend memory and `key` (which must determine everything `build` bakes in).
 */
export function simdFunctions(owner: HeapOwner, key: string, build: () => FunctionBuilder[]): SimdFunctions | null {
  if (!enabled || !simdSupported()) return null;
  const memory = heapMemory(owner);
  if (memory == null || api == null) return null;
  let modules = cache.get(memory);
  if (modules == null) {
    modules = new Map();
    cache.set(memory, modules);
  }
  let functions = modules.get(key);
  if (functions === undefined) {
    functions = instantiate(api, memory, build);
    modules.set(key, functions);
  }
  return functions;
}

/** The module's exports, or null where it cannot link (a shared memory: the multi-threaded backend). */
function instantiate(wasm: WasmApi, memory: object, build: () => FunctionBuilder[]): SimdFunctions | null {
  try {
    return new wasm.Instance(new wasm.Module(encodeModule(build())), { env: { memory } }).exports as SimdFunctions;
  } catch {
    return null;
  }
}
