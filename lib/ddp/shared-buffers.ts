/**
 * Float buffers in shared memory that the next rank of the ring maps too, so that it reads a
 * chunk where it lies instead of out of a copy (mapped-link.ts sends a reference to it). Each is
 * a file in /dev/shm removed as soon as it is made: it lives while its owner holds it open, and
 * the owner's other threads and the next rank open it through /proc/OWNER/fd/N. Nothing is left
 * behind, however a process ends. The buffer's number is that file descriptor.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mapShared, reserveShared } from './shared-mapping';

/** Where ranks on one machine put their shared-memory files: FASHION_MNIST_SHM_DIR, else /dev/shm (tmpfs) where there is one. */
export function sharedDir(): string {
  return process.env.FASHION_MNIST_SHM_DIR ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
}

/** The buffers this process owns and has mapped, by their memory: their numbers. */
const registered = new WeakMap<ArrayBufferLike, number>();

/** The number of the buffer `data` lies in, if it lies in a shared buffer this process owns. */
export function sharedBufferId(data: Float32Array): number | undefined {
  return registered.get(data.buffer);
}

/** Maps shared buffer `id` of process `ownerPid` (this one or another) into this thread. */
export function openSharedBuffer(ownerPid: number, id: number): Float32Array {
  const own = ownerPid === process.pid;
  const fd = own ? id : fs.openSync(`/proc/${ownerPid}/fd/${id}`, 'r+');
  try {
    const memory = mapShared(fd, fs.fstatSync(fd).size);
    if (own) registered.set(memory.buffer, id);
    return new Float32Array(memory.buffer);
  } finally {
    if (!own) fs.closeSync(fd);
  }
}

let made = 0;

/** A new shared buffer of `floats` floats, owned by this process, and its number; throws when /dev/shm has no room. */
export function createSharedBuffer(floats: number): { id: number; data: Float32Array } {
  const file = path.join(sharedDir(), `fashion-mnist-${process.pid}-buffer-${++made}`);
  const fd = fs.openSync(file, 'w+');
  fs.rmSync(file);
  try {
    reserveShared(fd, Math.max(4, floats * 4));
  } catch (e) {
    fs.closeSync(fd);
    throw new Error(`${(e as Error).message} in ${sharedDir()}`);
  }
  return { id: fd, data: openSharedBuffer(process.pid, fd).subarray(0, floats) };
}
