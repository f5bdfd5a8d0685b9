import { CACHE_LINE_BYTES } from './aligned-memory';
import type { Link } from './links';

const ALIGN_FLOATS = CACHE_LINE_BYTES / 4;

/**
 * Ring all-reduce (Patarasuk & Yuan 2009; Baidu's allreduce; NCCL's ring):
 * the buffer is cut into N chunks; in N-1 reduce-scatter steps each rank
 * sends one chunk to the next rank and adds the chunk arriving from the
 * previous one, after which rank r holds the full sum of chunk r+1; N-1
 * all-gather steps then pass the finished chunks around the ring.
 * Each rank sends and receives 2 (N-1)/N of the buffer, whatever N is:
 * time ~ 2 (N-1) latency + 2 (N-1)/N bytes / bandwidth.
 * Every chunk is summed in the same order on one rank and then copied, so
 * all ranks end with bit-identical results.
 */
export class Ring {
  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly link: Link,
  ) {}

  /**
   * Chunk `chunk`'s floats: whole cache lines (ALIGN_FLOATS) each, where every chunk gets one,
   * so that a chunk of a buffer that starts a cache line starts one too (aligned-memory.ts).
   */
  private bounds(chunk: number, length: number): [number, number] {
    const c = ((chunk % this.size) + this.size) % this.size;
    const unit = length >= ALIGN_FLOATS * this.size ? ALIGN_FLOATS : 1;
    const units = Math.ceil(length / unit);
    const base = Math.floor(units / this.size);
    const extra = units % this.size;
    const start = (c * base + Math.min(c, extra)) * unit;
    return [start, Math.min(length, start + (base + (c < extra ? 1 : 0)) * unit)];
  }

  private exchange(data: Float32Array, sendChunk: number, recvChunk: number, reduce: boolean): Promise<void> {
    const [s0, s1] = this.bounds(sendChunk, data.length);
    const [r0, r1] = this.bounds(recvChunk, data.length);
    return this.link.exchange(data.subarray(s0, s1), data.subarray(r0, r1), reduce);
  }

  get description(): string {
    return this.link.description;
  }

  get readsSharedBuffers(): boolean {
    return this.link.readsSharedBuffers === true;
  }

  /** Sums `data` across all ranks, in place. */
  async allReduce(data: Float32Array): Promise<void> {
    const { rank, size } = this;
    if (size === 1) return;
    for (let step = 0; step < size - 1; step++) await this.exchange(data, rank - step, rank - step - 1, true);
    for (let step = 0; step < size - 1; step++) await this.exchange(data, rank + 1 - step, rank - step, false);
  }

  close(): void {
    this.link.close();
  }
}
