import * as fs from 'node:fs';
import type { Socket } from 'node:net';
import { SocketReader, write } from './socket-reader';

/** One direction of the ring: this rank sends to the next and receives from the previous. */
export interface Link {
  send(bytes: Uint8Array): Promise<void>;
  receiveInto(target: Uint8Array): Promise<void>;
  close(): void;
}

/** Bytes through the TCP connections themselves (between machines). */
export class TcpLink implements Link {
  private readonly reader: SocketReader;

  constructor(private readonly next: Socket, prev: Socket, prevName: string) {
    this.reader = new SocketReader(prev, prevName);
  }

  send(bytes: Uint8Array): Promise<void> {
    return write(this.next, bytes);
  }

  receiveInto(target: Uint8Array): Promise<void> {
    return this.reader.readInto(target);
  }

  close(): void {
    this.next.destroy();
  }
}

/**
 * Bytes through a file in shared memory (tmpfs) between two processes of
 * one machine: two memory copies instead of the loopback TCP stack, about
 * 20 times faster here. The TCP connections carry only a 4-byte doorbell
 * (the length) forward and a 1-byte acknowledgement back, so that a sender
 * never overwrites a message its receiver has not read.
 */
export class SharedFileLink implements Link {
  private readonly doorbells: SocketReader;
  private readonly acks: SocketReader;
  private sent = 0;
  private readonly header = new Uint32Array(1);
  private readonly ack = new Uint8Array(1);

  constructor(
    private readonly outFd: number,
    private readonly inFd: number,
    private readonly next: Socket,
    private readonly prev: Socket,
    prevName: string,
    nextName: string,
  ) {
    this.doorbells = new SocketReader(prev, prevName);
    this.acks = new SocketReader(next, nextName);
  }

  async send(bytes: Uint8Array): Promise<void> {
    if (this.sent > 0) await this.acks.readInto(this.ack);
    fs.writeSync(this.outFd, bytes, 0, bytes.length, 0);
    this.sent++;
    await write(this.next, new Uint8Array(Uint32Array.of(bytes.length).buffer));
  }

  async receiveInto(target: Uint8Array): Promise<void> {
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
