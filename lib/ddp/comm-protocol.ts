/**
 * What the training thread and its communication thread share. Each collective works on a slot:
 * slot 0 holds the blocking collectives (barrier, broadcast, BatchNorm statistics, validation),
 * the others are the reducer's gradient buckets, reduced while the training thread goes on.
 */
export interface CommShared {
  /** [0]: state (CommState); [1]: error length. */
  control: Int32Array;
  error: Uint8Array;
  data: Float32Array;
  /** When the thread started and finished this slot's last collective: ms since performance.timeOrigin of the training thread. */
  times: Float64Array;
}

export enum CommState {
  Pending = 0,
  Done = 1,
  Failed = 2,
}

export type CommCommand =
  /** Sums the first `length` floats of the slot's data across ranks. `shared` (re)places the slot's memory. */
  | { op: 'allreduce'; slot: number; length: number; shared?: CommShared }
  | { op: 'close' }
  /** MPI only: ends the whole job (MPI_Abort), as a failing MPI program must. */
  | { op: 'abort'; code: number };

export function makeShared(floats: number): CommShared {
  return {
    control: new Int32Array(new SharedArrayBuffer(8)),
    error: new Uint8Array(new SharedArrayBuffer(4096)),
    data: new Float32Array(new SharedArrayBuffer(floats * 4)),
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
