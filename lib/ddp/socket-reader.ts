import type { Socket } from 'node:net';

interface PendingRead {
  target: Uint8Array;
  filled: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Reads exact byte counts from a socket straight into the caller's memory, in order. */
export class SocketReader {
  private chunks: Buffer[] = [];
  private pending: PendingRead | null = null;
  private failure: Error | null = null;

  constructor(socket: Socket, peer: string) {
    socket.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.settle();
    });
    // A socket paused until now (comm-thread.ts's acceptPrev) flows again, the bytes it held first.
    socket.resume();
    const fail = (why: string) => {
      if (this.failure == null) this.failure = new Error(`connection to ${peer} ${why}`);
      this.settle();
    };
    socket.on('error', (e) => fail(`failed: ${e.message}`));
    socket.on('close', () => fail('closed (did that worker stop?)'));
  }

  /** Fills `target` with the next target.length bytes. */
  readInto(target: Uint8Array): Promise<void> {
    if (this.pending != null) throw new Error('SocketReader: one read at a time');
    return new Promise((resolve, reject) => {
      this.pending = { target, filled: 0, resolve, reject };
      this.settle();
    });
  }

  private settle(): void {
    const p = this.pending;
    if (p == null) return;
    while (p.filled < p.target.length && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, p.target.length - p.filled);
      p.target.set(n === chunk.length ? chunk : chunk.subarray(0, n), p.filled);
      p.filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    if (p.filled === p.target.length) {
      this.pending = null;
      p.resolve();
    } else if (this.failure != null) {
      this.pending = null;
      p.reject(this.failure);
    }
  }
}

/** Writes and resolves once the kernel has taken the data (the memory may then change). */
export function write(socket: Socket, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(data, (e) => (e ? reject(e) : resolve()));
  });
}
