import type { Socket } from 'node:net';
import type { Link } from './links';
import { openSharedBuffer, sharedBufferId } from './shared-buffers';
import { futexWait, futexWake, type SharedMemory } from './shared-mapping';
import { addInto } from './simd-add';

/**
 * One direction of the ring between two processes of one machine, through memory both have
 * mapped (shared-mapping.ts): a channel of SLOTS slices. The sender copies a slice of its message
 * into a free slot and publishes it by raising a counter; the receiver, seeing the counter, adds
 * the slot into its chunk (or copies it) and frees the slot by raising a counter of its own. One
 * copy in, one sum or copy out, and the receiver works on slice k while the sender fills slice
 * k+1. A side with nothing to do sleeps on the counter it waits for (a futex) after flagging so,
 * and the other side wakes it after raising that counter. The TCP connections carry nothing:
 * they tell each side that the other process has gone (their sockets close).
 *
 * A message that lies in a shared buffer (shared-buffers.ts: the gradient buckets and the
 * blocking collectives' slot are) goes as a reference instead: one slot names the buffer, the
 * offset and the length, the receiver maps that buffer once and adds or copies the chunk from
 * where it lies, and the sender waits until it has before it changes the buffer. One copy fewer.
 */
/** A power of two (slot = count & (SLOTS - 1) stays right when the counters wrap). */
const SLOTS = 4;
/** Floats per slot (256 KB). */
const SLICE_FLOATS = 65_536;
/**
 * Header, as 32-bit words on lines of their own: slices published (written by the sender),
 * slices consumed (by the receiver), receiver asleep, sender asleep, the sender's process id;
 * then per slot its floats, and for a reference the buffer's number + 1 and the offset (else 0).
 */
const HEADER_BYTES = 512;
const PUBLISHED = 0;
const CONSUMED = 16;
const RECEIVER_ASLEEP = 32;
const SENDER_ASLEEP = 48;
const SENDER_PID = 64;
const LENGTHS = 80;
const BUFFER = 88;
const OFFSET = 96;

/** Bytes of one channel's file. */
export const CHANNEL_BYTES = HEADER_BYTES + SLOTS * SLICE_FLOATS * 4;

/**
 * While nothing moves the thread checks the counters back to back for SPIN_MS (the other side is
 * usually a few microseconds behind), then sleeps on the futex for at most SLEEP_MS at a time;
 * after SLEEP_MS of waiting it lets the event loop run, which is where a closed socket (a rank
 * that died) is noticed.
 */
const SPIN_MS = 0.03;
const SLEEP_MS = 2;

/** How far counter `a` is ahead of `b`, right across the wrap of 32-bit counters. */
const ahead = (a: number, b: number) => (a - b) | 0;

class Channel {
  protected readonly header: Int32Array;
  protected readonly slots: Float32Array[];
  /** Slices this end has published (sending) or consumed (receiving). */
  protected count = 0;

  constructor(private readonly memory: SharedMemory) {
    this.header = new Int32Array(memory.buffer, 0, HEADER_BYTES / 4);
    this.slots = Array.from({ length: SLOTS }, (_, s) => new Float32Array(memory.buffer, HEADER_BYTES + s * SLICE_FLOATS * 4, SLICE_FLOATS));
  }

  /** Raises the counter at `word` to this end's count, waking the other end if it sleeps on it. */
  protected raise(word: number, asleep: number): void {
    Atomics.store(this.header, word, this.count);
    if (Atomics.load(this.header, asleep) !== 0) futexWake(this.memory.address + word * 4);
  }

  /** Sleeps (at most SLEEP_MS) while the counter at `word` still holds `stale`. */
  protected sleepWhile(word: number, asleep: number, stale: (value: number) => boolean): void {
    Atomics.store(this.header, asleep, 1);
    const value = Atomics.load(this.header, word);
    if (stale(value)) futexWait(this.memory.address + word * 4, value, SLEEP_MS);
    Atomics.store(this.header, asleep, 0);
  }
}

class SendingEnd extends Channel {
  /** The count at which the last reference is consumed (the receiver is done with the sender's buffer). */
  private referenceDone = 0;

  constructor(memory: SharedMemory) {
    super(memory);
    Atomics.store(this.header, SENDER_PID, process.pid);
  }

  /**
   * Sends the next part of `message` from `offset` if a slot is free: all of it as a reference
   * when it lies in a shared buffer, else a slice copied into the slot. Returns the floats sent
   * (0: no slot free).
   */
  trySend(message: Float32Array, offset: number): number {
    if (ahead(this.count, Atomics.load(this.header, CONSUMED)) >= SLOTS) return 0;
    const slot = this.count & (SLOTS - 1);
    const buffer = offset === 0 ? sharedBufferId(message) : undefined;
    let n: number;
    if (buffer !== undefined) {
      n = message.length;
      this.header[BUFFER + slot] = buffer + 1;
      this.header[OFFSET + slot] = message.byteOffset / 4;
    } else {
      n = Math.min(SLICE_FLOATS, message.length - offset);
      this.slots[slot].set(message.subarray(offset, offset + n));
      this.header[BUFFER + slot] = 0;
    }
    this.header[LENGTHS + slot] = n;
    this.count = (this.count + 1) | 0;
    if (buffer !== undefined) this.referenceDone = this.count;
    this.raise(PUBLISHED, RECEIVER_ASLEEP);
    return n;
  }

  /** Whether the receiver is done with every reference sent (the sender's buffers may change). */
  released(): boolean {
    return ahead(this.referenceDone, Atomics.load(this.header, CONSUMED)) <= 0;
  }

  /** Sleeps until the receiver frees a slot or is done with the last reference. */
  sleep(): void {
    this.sleepWhile(CONSUMED, SENDER_ASLEEP, (consumed) => ahead(this.count, consumed) >= SLOTS || ahead(this.referenceDone, consumed) > 0);
  }
}

class ReceivingEnd extends Channel {
  /** The sender's shared buffers this end has mapped, by number. */
  private readonly peerBuffers = new Map<number, Float32Array>();

  /** Maps the sender's buffer, the first time it names it. */
  private peerBuffer(id: number): Float32Array {
    let data = this.peerBuffers.get(id);
    if (data === undefined) {
      data = openSharedBuffer(Atomics.load(this.header, SENDER_PID), id);
      this.peerBuffers.set(id, data);
    }
    return data;
  }

  /** Adds (reduce) or copies the next slice into `message` at `offset` if one has arrived; returns the floats received. */
  tryReceive(message: Float32Array, offset: number, reduce: boolean): number {
    if (Atomics.load(this.header, PUBLISHED) === this.count) return 0;
    const slot = this.count & (SLOTS - 1);
    const n = this.header[LENGTHS + slot];
    if (n <= 0 || n > message.length - offset) {
      throw new Error(`ring slice of ${n} floats where ${message.length - offset} were left to receive: the ranks are out of step`);
    }
    const target = message.subarray(offset, offset + n);
    const buffer = this.header[BUFFER + slot] - 1;
    const source = buffer >= 0 ? this.peerBuffer(buffer).subarray(this.header[OFFSET + slot], this.header[OFFSET + slot] + n)
      : n === SLICE_FLOATS ? this.slots[slot] : this.slots[slot].subarray(0, n);
    if (reduce) addInto(target, source);
    else target.set(source);
    this.count = (this.count + 1) | 0;
    this.raise(CONSUMED, SENDER_ASLEEP);
    return n;
  }

  /** Sleeps until the sender publishes a slice. */
  sleep(): void {
    this.sleepWhile(PUBLISHED, RECEIVER_ASLEEP, (published) => published === this.count);
  }
}

export class MappedLink implements Link {
  readonly description = 'mapped shared memory';
  readonly readsSharedBuffers = true;
  private readonly out: SendingEnd;
  private readonly in: ReceivingEnd;
  /** Why the previous (index 0) or the next rank (1) is gone, once it is. */
  private readonly gone: [Error | null, Error | null] = [null, null];

  /** `outgoing` is the channel to the next rank, `incoming` the one from the previous rank. */
  constructor(outgoing: SharedMemory, incoming: SharedMemory, private readonly next: Socket, prev: Socket, prevName: string, nextName: string) {
    this.out = new SendingEnd(outgoing);
    this.in = new ReceivingEnd(incoming);
    for (const [side, socket, peer] of [[0, prev, prevName], [1, next, nextName]] as const) {
      const fail = (why: string) => { this.gone[side] ??= new Error(`connection to ${peer} ${why}`); };
      socket.on('error', (e) => fail(`failed: ${e.message}`));
      socket.on('close', () => fail('closed (did that worker stop?)'));
      socket.resume();
    }
  }

  async exchange(outgoing: Float32Array, incoming: Float32Array, reduce: boolean): Promise<void> {
    let sent = 0;
    let received = 0;
    let idleSince = 0;
    while (sent < outgoing.length || received < incoming.length || !this.out.released()) {
      const s = sent < outgoing.length ? this.out.trySend(outgoing, sent) : 0;
      const r = received < incoming.length ? this.in.tryReceive(incoming, received, reduce) : 0;
      sent += s;
      received += r;
      if (s + r > 0) {
        idleSince = 0;
        continue;
      }
      if (idleSince === 0) idleSince = performance.now();
      if (performance.now() - idleSince < SPIN_MS) continue;
      // Whatever this rank still receives, the previous rank is sending (it is awake): wait for
      // that first. Only when everything has arrived can a full outgoing channel be all there is.
      if (received < incoming.length) this.in.sleep();
      else this.out.sleep();
      if (performance.now() - idleSince >= SLEEP_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        // Only a rank this exchange still needs counts: at the end of a job the others leave first.
        const prevNeeded = received < incoming.length;
        const nextNeeded = sent < outgoing.length || !this.out.released();
        const gone = (prevNeeded ? this.gone[0] : null) ?? (nextNeeded ? this.gone[1] : null);
        if (gone != null) throw gone;
        idleSince = 0;
      }
    }
  }

  close(): void {
    this.next.destroy();
  }
}
