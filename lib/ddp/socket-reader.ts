import type { Socket } from 'node:net';

/** Reads exact byte counts from a socket, in order. */
export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiting: { bytes: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(private readonly socket: Socket, private readonly peer: string) {
    socket.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.buffered += data.length;
      this.settle();
    });
    const fail = (why: string) => {
      if (this.failure == null) this.failure = new Error(`connection to ${peer} ${why}`);
      this.settle();
    };
    socket.on('error', (e) => fail(`failed: ${e.message}`));
    socket.on('close', () => fail('closed (did that worker stop?)'));
  }

  read(bytes: number): Promise<Buffer> {
    if (this.waiting != null) throw new Error('SocketReader: one read at a time');
    return new Promise((resolve, reject) => {
      this.waiting = { bytes, resolve, reject };
      this.settle();
    });
  }

  private settle(): void {
    const w = this.waiting;
    if (w == null) return;
    if (this.buffered >= w.bytes) {
      this.waiting = null;
      w.resolve(this.take(w.bytes));
    } else if (this.failure != null) {
      this.waiting = null;
      w.reject(this.failure);
    }
  }

  private take(bytes: number): Buffer {
    const whole = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    this.chunks = whole.length > bytes ? [whole.subarray(bytes)] : [];
    this.buffered -= bytes;
    return whole.subarray(0, bytes);
  }
}

/** Writes and resolves once the data is handed to the kernel. */
export function write(socket: Socket, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(data, (e) => (e ? reject(e) : resolve()));
  });
}
