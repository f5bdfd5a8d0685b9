/**
 * The ring's buffers over TCP start cache lines, and so do its chunks: the kernel's receive copy
 * into a destination 4-32 bytes into a cache line ran at half speed on this project's VMs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { addressOf, alignedSharedFloats, CACHE_LINE_BYTES } from '../lib/ddp/aligned-memory';
import type { Link } from '../lib/ddp/links';
import { Ring } from '../lib/ddp/ring';

/** Records where every chunk the ring hands it lies, and moves nothing. */
class ChunkRecorder implements Link {
  readonly description = 'a recorder';
  readonly chunks: { address: number | null; floats: number }[] = [];

  async exchange(outgoing: Float32Array, incoming: Float32Array): Promise<void> {
    for (const chunk of [outgoing, incoming]) this.chunks.push({ address: addressOf(chunk), floats: chunk.length });
  }

  close(): void {}
}

describe('cache-line-aligned ring buffers', () => {
  it('alignedSharedFloats gives shared floats that start a cache line, at small and large sizes', () => {
    for (const floats of [1, 7, 1000, 65_536 + 7, 262_144, 4_194_304]) {
      const data = alignedSharedFloats(floats);
      assert.ok(data.buffer instanceof SharedArrayBuffer);
      assert.equal(data.length, floats);
      assert.equal(addressOf(data)! % CACHE_LINE_BYTES, 0, `${floats} floats`);
    }
  });

  it('a slot lies in an addable memory, and on an aligned SharedArrayBuffer where the address space is limited (ulimit -v)', () => {
    const lib = path.join(__dirname, '..', 'lib', 'ddp');
    const script = `const { makeShared } = require(${JSON.stringify(path.join(lib, 'comm-protocol.js'))});
      const { addressOf } = require(${JSON.stringify(path.join(lib, 'aligned-memory.js'))});
      const slot = makeShared(100_000); slot.data.fill(2);
      process.stdout.write(JSON.stringify([slot.memory != null, addressOf(slot.data) % 64, slot.data.length, slot.data[99_999]]));`;
    // A shared WebAssembly memory reserves about 10 GB of addresses; 6 GB leave room for Node, not for it.
    for (const [limit, addable] of [['unlimited', true], ['6000000', false]] as const) {
      const run = spawnSync('bash', ['-c', `ulimit -v ${limit} && exec "$0" -e "$1"`, process.execPath, script], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), [addable, 0, 100_000, 2], `ulimit -v ${limit}`);
    }
  });

  it('the ring cuts a buffer into chunks that start cache lines and cover it once, when each chunk can have one', async () => {
    for (const size of [2, 3, 4]) {
      for (const floats of [16 * size, 16 * size + 1, 225_034, 1_000_003]) {
        const link = new ChunkRecorder();
        await new Ring(1, size, link).allReduce(alignedSharedFloats(floats));
        for (const { address, floats: n } of link.chunks) assert.equal(address! % CACHE_LINE_BYTES, 0, `${size} ranks, ${floats} floats: a chunk of ${n}`);
        // Each step sends one chunk and receives another; over the reduce-scatter every chunk but one is received once.
        const received = link.chunks.filter((_, i) => i % 2 === 1).slice(0, size - 1);
        const sent = link.chunks[0];
        assert.equal(received.reduce((sum, c) => sum + c.floats, 0) + sent.floats, floats, `${size} ranks, ${floats} floats`);
      }
    }
  });
});
