/**
 * Float buffers on a SharedArrayBuffer whose first float starts a cache line (64 bytes): the
 * ring's slots where no addable memory (simd-add.ts) can be had. The kernel's receive copy
 * (copy_to_user) ran at half speed on this project's AMD EPYC VMs when the destination started
 * 4 to 32 bytes into a cache line, and V8 places a large SharedArrayBuffer 16 bytes into a page
 * (past malloc's header): a ring chunk received over TCP into a plain SharedArrayBuffer took
 * twice as long as into an aligned one (bench/reference/link_exchange.cjs, OFFSET=16 against 0).
 */
import { libcLoader } from './libc';

export const CACHE_LINE_BYTES = 64;

/* eslint-disable @typescript-eslint/no-explicit-any */
interface Libc {
  koffi: any;
  /** memmove(p, p, 0) moves nothing and returns p: here, the address of an array's first byte. */
  memmove: (to: ArrayBufferView, from: ArrayBufferView, length: number) => unknown;
}

const load = libcLoader<Libc>((libc, koffi) => ({ koffi, memmove: libc.func('void *memmove(void *to, const void *from, size_t length)') }));

/** The address of `data`'s first byte, or null where koffi cannot load. */
export function addressOf(data: ArrayBufferView): number | null {
  const lib = load();
  if (lib == null || data.byteLength === 0) return null;
  return Number(lib.koffi.address(lib.memmove(data, data, 0)));
}

/** `floats` floats on a new SharedArrayBuffer, starting a cache line where the address can be read (else wherever V8 put them). */
export function alignedSharedFloats(floats: number): Float32Array {
  const memory = new SharedArrayBuffer(floats * 4 + CACHE_LINE_BYTES);
  const address = addressOf(new Uint8Array(memory, 0, CACHE_LINE_BYTES));
  const skip = address == null ? 0 : (CACHE_LINE_BYTES - (address % CACHE_LINE_BYTES)) % CACHE_LINE_BYTES;
  return new Float32Array(memory, skip, floats);
}
