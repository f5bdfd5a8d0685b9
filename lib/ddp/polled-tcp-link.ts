import type { Socket } from 'node:net';
import type { Link } from './links';
import { addInto, landingArea } from './simd-add';
import { closeDescriptor, errnoName, ownDescriptor, POLLIN, POLLOUT, receiveSome, sendSome, waitReady } from './socket-calls';

/**
 * One direction of the ring over TCP, moved by this thread's own system calls (socket-calls.ts)
 * rather than by Node's event loop: in one loop it sends what the next rank's socket takes and
 * receives what the previous rank's has, straight into the chunk (copying) or into a scratch
 * buffer whose arrived part it adds into the chunk a slice at a time, while the rest is still on
 * its way. With nothing to do it tries again for SPIN_MS (FLOWING_SPIN_MS once bytes have moved
 * in this exchange: the other side is mid-transfer, and waking a sleeping thread costs tens of
 * microseconds in a VM), then sleeps in poll(2) until a socket is ready, and after SLEEP_MS of
 * waiting lets the event loop run. A message through Node's sockets pays a turn of the event
 * loop; here it pays a system call.
 */
const SPIN_MS = 0.03;
const FLOWING_SPIN_MS = 0.5;
const SLEEP_MS = 2;
/**
 * A message to add arrives in a scratch buffer this small, so that it is still in the cache when
 * it is added (an 8 MB scratch made the add itself take 1 GB/s on this VM); ADD_BYTES at least
 * are added at a time.
 */
const SCRATCH_BYTES = 256 * 1024;
const ADD_BYTES = 64 * 1024;

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Where the previous rank's message lands: the chunk itself, when it is copied; else the scratch
 * buffer, from which the floats that have arrived whole are added into the chunk.
 */
class Arrival {
  private readonly bytes: number;
  /** Bytes of the message received so far. */
  private received = 0;
  /** Scratch bytes filled, and added, since the scratch last started over. */
  private filled = 0;
  private added = 0;

  constructor(private readonly chunk: Float32Array, private readonly scratch: Uint8Array | null) {
    this.bytes = chunk.byteLength;
  }

  done(): boolean {
    return this.received === this.bytes;
  }

  /** Where the next bytes go. */
  space(): Uint8Array {
    const left = this.bytes - this.received;
    if (this.scratch == null) return bytesOf(this.chunk).subarray(this.received);
    return this.scratch.subarray(this.filled, Math.min(this.scratch.length, this.filled + left));
  }

  /** Counts `n` bytes as arrived in space(), and adds what is due. */
  landed(n: number): void {
    this.received += n;
    if (this.scratch == null || n === 0) return;
    this.filled += n;
    const whole = this.filled & ~3;
    if (whole - this.added < ADD_BYTES && !this.done() && this.filled < this.scratch.length) return;
    // The scratch's first byte is the message's byte received - filled.
    const at = (this.received - this.filled + this.added) >> 2;
    const floats = (whole - this.added) >> 2;
    addInto(this.chunk.subarray(at, at + floats), new Float32Array(this.scratch.buffer, this.scratch.byteOffset + this.added, floats));
    this.added = whole;
    if (this.filled === this.scratch.length) this.filled = this.added = 0;
  }

  /** Takes what it can of `early` (bytes read before the link took the socket); returns the rest. */
  take(early: Uint8Array[]): Uint8Array[] {
    const rest = [...early];
    while (rest.length > 0 && !this.done()) {
      const space = this.space();
      const n = Math.min(space.length, rest[0].length);
      space.set(rest[0].subarray(0, n));
      this.landed(n);
      if (n === rest[0].length) rest.shift();
      else rest[0] = rest[0].subarray(n);
    }
    return rest;
  }
}

const fdOf = (socket: Socket): number => (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;

export class PolledTcpLink implements Link {
  readonly description = 'TCP through the thread\'s own system calls';
  /** Where a chunk to add arrives without WebAssembly SIMD; with it, landingArea says where. */
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);
  private readonly nextFd: number;
  private readonly prevFd: number;
  /** Bytes that Node read from the previous rank before this link took its socket over. */
  private early: Uint8Array[];

  /** Whether both sockets have file descriptors this thread can use (TCP sockets on Unix do). */
  static canTake(next: Socket, prev: Socket): boolean {
    return fdOf(next) >= 0 && fdOf(prev) >= 0;
  }

  /**
   * Takes over `next` and `prev` (no write pending on `next`, `prev` paused), through descriptors
   * of its own; `early` holds the bytes already read from `prev`.
   */
  constructor(private readonly next: Socket, private readonly prev: Socket, early: Uint8Array[], private readonly prevName: string, private readonly nextName: string) {
    this.nextFd = ownDescriptor(fdOf(next));
    this.prevFd = ownDescriptor(fdOf(prev));
    if (this.nextFd < 0 || this.prevFd < 0) throw new Error('the ring\'s TCP link could not duplicate its sockets\' descriptors (dup)');
    this.early = early;
    // Node reads neither socket any more (nothing but an end comes from the next rank); its
    // errors must still be heard, or they would end the thread.
    (next as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
    for (const socket of [next, prev]) socket.on('error', () => undefined);
  }

  async exchange(outgoing: Float32Array, incoming: Float32Array, reduce: boolean): Promise<void> {
    const out = bytesOf(outgoing);
    // In the add kernel's memory, so that the add reads it in place; a chunk of an addable memory
    // (the slots) has a landing area of its own, where the chunk itself is added in place too.
    const arrival = new Arrival(incoming, reduce ? landingArea(incoming) ?? this.scratch : null);
    this.early = arrival.take(this.early);
    let sent = 0;
    let idleSince = 0;
    let flowing = false;
    while (sent < out.length || !arrival.done()) {
      let moved = false;
      if (sent < out.length) {
        const n = sendSome(this.nextFd, out.subarray(sent));
        if (n < 0) throw new Error(`connection to ${this.nextName} failed: ${errnoName(-n)} (did that worker stop?)`);
        sent += n;
        moved ||= n > 0;
      }
      if (!arrival.done()) {
        const n = receiveSome(this.prevFd, arrival.space());
        if (n === -1) throw new Error(`connection to ${this.prevName} closed (did that worker stop?)`);
        if (n < 0) throw new Error(`connection to ${this.prevName} failed: ${errnoName(-n)} (did that worker stop?)`);
        arrival.landed(n);
        moved ||= n > 0;
      }
      if (moved) {
        flowing = true;
        idleSince = 0;
        continue;
      }
      if (idleSince === 0) idleSince = performance.now();
      if (performance.now() - idleSince < (flowing ? FLOWING_SPIN_MS : SPIN_MS)) continue;
      const waiting: [number, number][] = [];
      if (sent < out.length) waiting.push([this.nextFd, POLLOUT]);
      if (!arrival.done()) waiting.push([this.prevFd, POLLIN]);
      waitReady(waiting, SLEEP_MS);
      if (performance.now() - idleSince >= SLEEP_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        idleSince = 0;
        flowing = false;
      }
    }
  }

  close(): void {
    closeDescriptor(this.nextFd);
    closeDescriptor(this.prevFd);
    this.next.destroy();
    this.prev.destroy();
  }
}
