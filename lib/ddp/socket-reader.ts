import type { Socket } from 'node:net';

interface PendingRead {
  target: Uint8Array;
  filled: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * Reads exact byte counts from a socket into the caller's memory, in order. On a socket that
 * net.connect made with `onread: reader.onread`, the kernel's bytes land straight in the pending
 * read's memory (no buffer allocated per read, no copy); on any other socket they come as 'data'.
 */
export class SocketReader {
  private chunks: Uint8Array[] = [];
  private pending: PendingRead | null = null;
  private failure: Error | null = null;
  /** Where bytes land when no read is pending (copied out at once: the next read reuses it). */
  private readonly spare = new Uint8Array(64 * 1024);

  /** For net.connect's `onread`. */
  readonly onread = {
    buffer: (): Uint8Array => {
      const p = this.pending;
      return p != null && this.chunks.length === 0 ? p.target.subarray(p.filled) : this.spare;
    },
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      if (buffer === this.spare) this.chunks.push(this.spare.slice(0, bytes));
      else if (this.pending != null) this.pending.filled += bytes;
      this.settle();
      return true;
    },
  };

  constructor(private readonly peer: string) {}

  /** Reads `socket`'s 'data' events. */
  listen(socket: Socket): this {
    socket.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.settle();
    });
    // A socket paused until now (ring-setup.ts's acceptNext) flows again, the bytes it held first.
    socket.resume();
    return this.watch(socket);
  }

  /** Notices when `socket` fails or closes (pending and later reads then reject). */
  watch(socket: Socket): this {
    const fail = (why: string) => {
      if (this.failure == null) this.failure = new Error(`connection to ${this.peer} ${why}`);
      this.settle();
    };
    socket.on('error', (e) => fail(`failed: ${e.message}`));
    socket.on('close', () => fail('closed (did that worker stop?)'));
    return this;
  }

  /**
   * Hands over the bytes read but not yet asked for, for a reader of the socket's own (the socket
   * paused first, so that no more arrive here).
   */
  detach(): Uint8Array[] {
    if (this.pending != null) throw new Error('SocketReader: detached during a read');
    const early = this.chunks;
    this.chunks = [];
    return early;
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
