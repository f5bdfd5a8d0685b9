/**
 * What the training thread and its communication thread share. Each collective works on a slot:
 * slot 0 holds the blocking collectives (barrier, broadcast, BatchNorm statistics, validation),
 * the others are the reducer's gradient buckets, reduced while the training thread goes on.
 */
export interface CommShared {
  /** [0]: state (CommState); [1]: error length. */
  control: Int32Array;
  error: Uint8Array;
  /**
   * In a shared buffer (shared-buffers.ts) that the next rank reads in place; else in an addable
   * memory (simd-add.ts), where the ring adds what arrives over TCP in place; else on a
   * SharedArrayBuffer, from a cache line (aligned-memory.ts).
   */
  data: Float32Array;
  /** The shared buffer's number when `data` lies in one, else -1. */
  bufferId: number;
  /** The addable memory `data` lies in, if it does. */
  memory: WasmMemory | null;
  /** When the thread started and finished this slot's last collective: ms since performance.timeOrigin of the training thread. */
  times: Float64Array;
}

/**
 * A slot as it travels to the communication thread: SharedArrayBuffers are shared as they are; a
 * shared buffer is not (a message would copy it), the thread maps it by its number.
 */
export type SlotMessage = Omit<CommShared, 'data'> & { data: Float32Array | null };

export function slotMessage(shared: CommShared): SlotMessage {
  return { ...shared, data: shared.bufferId < 0 ? shared.data : null };
}

import { alignedSharedFloats } from './aligned-memory';
import { createSharedBuffer } from './shared-buffers';
import { addableFloats, type WasmMemory } from './simd-add';

export enum CommState {
  Pending = 0,
  Done = 1,
  Failed = 2,
}

export type CommCommand =
  /** Sums the first `length` floats of the slot's data across ranks. `shared` (re)places the slot's memory. */
  | { op: 'allreduce'; slot: number; length: number; shared?: SlotMessage }
  | { op: 'close' }
  /** MPI only: ends the whole job (MPI_Abort), as a failing MPI program must. */
  | { op: 'abort'; code: number };

let warnedFull = false;

/** A new shared buffer, or null (said once) when /dev/shm has no room: the slot then lies on a SharedArrayBuffer and is copied. */
function sharedBufferOrNull(floats: number): { id: number; data: Float32Array } | null {
  try {
    return createSharedBuffer(floats);
  } catch (e) {
    if (!warnedFull) console.warn(`${(e as Error).message}: gradient buckets are copied into the ring's channel instead of read in place (slower)`);
    warnedFull = true;
    return null;
  }
}

/** A slot of `floats` floats: with `inSharedBuffer`, in a new shared buffer where /dev/shm has room; else in an addable memory, or on a SharedArrayBuffer. */
export function makeShared(floats: number, inSharedBuffer = false): CommShared {
  const inFile = inSharedBuffer ? sharedBufferOrNull(floats) : null;
  const addable = inFile == null ? addableFloats(floats) : null;
  return {
    control: new Int32Array(new SharedArrayBuffer(8)),
    error: new Uint8Array(new SharedArrayBuffer(4096)),
    data: inFile?.data ?? addable?.data ?? alignedSharedFloats(floats),
    bufferId: inFile?.id ?? -1,
    memory: addable?.memory ?? null,
    times: new Float64Array(new SharedArrayBuffer(16)),
  };
}

export function writeError(shared: CommShared, message: string): void {
  const bytes = Buffer.from(message, 'utf8').subarray(0, shared.error.length);
  shared.error.set(bytes);
  Atomics.store(shared.control, 1, bytes.length);
}

export function readError(shared: CommShared): string {
  const length = Atomics.load(shared.control, 1);
  return Buffer.from(shared.error.slice(0, length)).toString('utf8');
}
