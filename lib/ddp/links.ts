import * as fs from 'node:fs';
import type { Socket } from 'node:net';
import { addInto } from './simd-add';
import { SocketReader, write } from './socket-reader';

/** One direction of the ring: this rank sends to the next and receives from the previous. */
export interface Link {
  /**
   * Sends `outgoing` to the next rank while the previous rank's message arrives into `incoming`,
   * added to it (`reduce`) or copied over it; resolves once both are done and `outgoing` may change.
   */
  exchange(outgoing: Float32Array, incoming: Float32Array, reduce: boolean): Promise<void>;
  close(): void;
  /** What carries the bytes, for the log. */
  readonly description: string;
  /** Whether the next rank reads messages that lie in shared buffers where they lie (mapped-link.ts). */
  readonly readsSharedBuffers?: boolean;
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A link that moves bytes in order (a socket, a file): a message to add arrives in a scratch buffer first. */
abstract class ByteLink implements Link {
  private scratch = new Float32Array(0);

  abstract readonly description: string;
  protected abstract send(bytes: Uint8Array): Promise<void>;
  protected abstract receiveInto(target: Uint8Array): Promise<void>;
  abstract close(): void;

  async exchange(outgoing: Float32Array, incoming: Float32Array, reduce: boolean): Promise<void> {
    if (!reduce) {
      await Promise.all([this.receiveInto(bytesOf(incoming)), this.send(bytesOf(outgoing))]);
      return;
    }
    if (this.scratch.length < incoming.length) this.scratch = new Float32Array(incoming.length);
    const arrived = this.scratch.subarray(0, incoming.length);
    await Promise.all([this.receiveInto(bytesOf(arrived)), this.send(bytesOf(outgoing))]);
    addInto(incoming, arrived);
  }
}

/** Bytes through the TCP connections themselves (between machines). */
export class TcpLink extends ByteLink {
  readonly description = 'TCP through Node\'s sockets';
  private readonly reader: SocketReader;

  /** `fromPrev` reads the previous rank's socket; `nextName` names the next rank in errors. */
  constructor(private readonly next: Socket, fromPrev: SocketReader, private readonly nextName: string) {
    super();
    this.reader = fromPrev;
    // Nothing comes from the next rank, but its socket's failure must be heard (an unheard 'error'
    // would end the thread), and the write that met it says so.
    next.on('error', () => undefined);
    next.resume();
  }

  protected async send(bytes: Uint8Array): Promise<void> {
    try {
      await write(this.next, bytes);
    } catch (e) {
      throw new Error(`connection to ${this.nextName} failed: ${(e as Error).message} (did that worker stop?)`);
    }
  }

  protected receiveInto(target: Uint8Array): Promise<void> {
    return this.reader.readInto(target);
  }

  close(): void {
    this.next.destroy();
  }
}

/**
 * Bytes through a file in shared memory (tmpfs) between two processes of
 * one machine, written and read with system calls: the fallback where
 * mapped memory (mapped-link.ts) is not available (no koffi binary for this
 * platform). The TCP connections carry only a 4-byte doorbell
 * (the length) forward and a 1-byte acknowledgement back, so that a sender
 * never overwrites a message its receiver has not read.
 */
export class SharedFileLink extends ByteLink {
  readonly description = 'a file in shared memory, read and written with system calls';
  private readonly doorbells: SocketReader;
  private readonly acks: SocketReader;
  private sent = 0;
  private readonly header = new Uint32Array(1);
  private readonly ack = new Uint8Array(1);

  /** `fromPrev` reads the previous rank's socket (the doorbells). */
  constructor(
    private readonly outFd: number,
    private readonly inFd: number,
    private readonly next: Socket,
    private readonly prev: Socket,
    fromPrev: SocketReader,
    nextName: string,
  ) {
    super();
    this.doorbells = fromPrev;
    this.acks = new SocketReader(nextName).listen(next);
  }

  protected async send(bytes: Uint8Array): Promise<void> {
    if (this.sent > 0) await this.acks.readInto(this.ack);
    fs.writeSync(this.outFd, bytes, 0, bytes.length, 0);
    this.sent++;
    await write(this.next, new Uint8Array(Uint32Array.of(bytes.length).buffer));
  }

  protected async receiveInto(target: Uint8Array): Promise<void> {
    await this.doorbells.readInto(new Uint8Array(this.header.buffer));
    const length = this.header[0];
    if (length !== target.length) throw new Error(`ring message of ${length} bytes where ${target.length} were expected`);
    fs.readSync(this.inFd, target, 0, length, 0);
    await write(this.prev, Uint8Array.of(1));
  }

  close(): void {
    this.next.destroy();
    fs.closeSync(this.outFd);
    fs.closeSync(this.inFd);
  }
}

/** A link's speed, for a simulated link: bandwidth each way and latency per message. */
export interface LinkModel {
  bitsPerSecond: number;
  latencyMs: number;
}

/**
 * A slower link simulated over a real one, for lessons on a single machine: every message takes
 * at least latency + bytes / bandwidth to send (the real transfer runs inside that time).
 */
export class SimulatedLink implements Link {
  readonly description: string;
  readonly readsSharedBuffers: boolean;

  constructor(private readonly inner: Link, private readonly model: LinkModel) {
    this.description = `${inner.description}, slowed to a simulated link of ${describeLinkModel(model)}`;
    this.readsSharedBuffers = inner.readsSharedBuffers === true;
  }

  async exchange(outgoing: Float32Array, incoming: Float32Array, reduce: boolean): Promise<void> {
    const ms = this.model.latencyMs + (outgoing.byteLength * 8 * 1000) / this.model.bitsPerSecond;
    await Promise.all([this.inner.exchange(outgoing, incoming, reduce), new Promise((resolve) => setTimeout(resolve, ms))]);
  }

  close(): void {
    this.inner.close();
  }
}

const RATE_UNITS: Record<string, number> = { kbit: 1e3, mbit: 1e6, gbit: 1e9 };

/**
 * Reads "100mbit" or "1gbit,0.5ms" (rate with kbit, mbit or gbit; latency per message, default
 * 0); throws a message naming `flag` otherwise.
 */
export function parseLinkModel(text: string, flag = '--simulated-link'): LinkModel {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(kbit|mbit|gbit)\s*(?:,\s*(\d+(?:\.\d+)?)\s*ms)?\s*$/i.exec(text);
  const rate = m ? Number(m[1]) * RATE_UNITS[m[2].toLowerCase()] : NaN;
  if (!m || !(rate > 0)) {
    throw new Error(`${flag} takes a rate and an optional latency, e.g. 100mbit or 1gbit,0.5ms (got '${text}')`);
  }
  return { bitsPerSecond: rate, latencyMs: m[3] ? Number(m[3]) : 0 };
}

/** "100 Mbit/s each way, 0.5 ms per message" */
export function describeLinkModel(model: LinkModel): string {
  const [value, unit] = model.bitsPerSecond >= 1e9 ? [model.bitsPerSecond / 1e9, 'Gbit/s'] : model.bitsPerSecond >= 1e6 ? [model.bitsPerSecond / 1e6, 'Mbit/s'] : [model.bitsPerSecond / 1e3, 'kbit/s'];
  return `${+value.toPrecision(4)} ${unit} each way${model.latencyMs > 0 ? `, ${model.latencyMs} ms per message` : ''}`;
}
