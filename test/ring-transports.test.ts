/**
 * The ring's transports on one machine (mapped shared memory, the default, with messages
 * copied into its channel or, from shared buffers, read in place; a file in /dev/shm; loopback
 * TCP, moved by the thread's own system calls or by Node's sockets) give every rank the same
 * bits, and the same bits as each other: the exact sum for integer inputs, and for fractional
 * ones the same rounding, since the ring adds every chunk in the same order whatever carries
 * it. No shared buffer is left in /dev/shm.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../lib/launch/launch';
import { sharedDir } from '../lib/ddp/shared-buffers';
import { sharedMappingAvailable } from '../lib/ddp/shared-mapping';
import { socketCallsAvailable } from '../lib/ddp/socket-calls';
import type { RingCheck } from './support/ring-rank';

/**
 * 1 float, fewer floats than ranks have chunks, one cache line short of a line per chunk for 3
 * ranks and one float past it, one 256 KB slot plus an odd tail, and enough to cycle the slots
 * many times.
 */
const SIZES = [1, 2, 47, 49, 65_536 + 7, 1_000_003];
/** FASHION_MNIST_RING_TRANSPORT, and whether the inputs lie in shared buffers. */
const TRANSPORTS = ['mapped', 'mapped in place', 'file', 'tcp', 'tcp-node'];

async function ringChecks(workers: number, variant: string): Promise<RingCheck[][]> {
  const port = await freePort();
  const [transport, inPlace] = [variant.split(' ')[0], variant.endsWith('in place')];
  const pids: number[] = [];
  const ranks = await Promise.all(Array.from({ length: workers }, (_, rank) => new Promise<RingCheck[]>((resolve, reject) => {
    const child = fork(path.join(__dirname, 'support', 'ring-rank.js'), ['--ring-check-rank'], {
      execArgv: [],
      env: {
        ...process.env, RANK: String(rank), WORLD_SIZE: String(workers), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port), FASHION_MNIST_RING_TRANSPORT: transport, RING_CHECK_SIZES: JSON.stringify(SIZES), RING_CHECK_SHARED: inPlace ? '1' : '0',
      },
    });
    if (child.pid !== undefined) pids.push(child.pid);
    let checks: RingCheck[] | null = null;
    child.on('message', (m) => {
      const reply = m as { checks: RingCheck[]; description: string };
      checks = reply.checks;
      // What carried the chunks: the transport asked for (mapped memory falls back to the file where koffi cannot load).
      const expected = {
        mapped: sharedMappingAvailable() ? 'mapped shared memory' : 'a file in shared memory',
        file: 'a file in shared memory',
        tcp: socketCallsAvailable() ? 'TCP through the thread\'s own system calls' : 'TCP through Node\'s sockets',
        'tcp-node': 'TCP through Node\'s sockets',
      }[transport];
      if (!reply.description.startsWith(expected ?? '?')) reject(new Error(`${variant}: the ring went over ${reply.description}`));
    });
    child.on('exit', (code) => (checks != null && code === 0 ? resolve(checks) : reject(new Error(`${variant} rank ${rank} exited with code ${code}`))));
  })));
  const left = fs.readdirSync(sharedDir()).filter((f) => pids.some((pid) => f.startsWith(`fashion-mnist-${pid}-`)));
  assert.deepEqual(left, [], `${variant}: files left in ${sharedDir()}`);
  return ranks;
}

describe('ring transports', { timeout: 180_000 }, () => {
  for (const workers of [2, 3]) {
    it(`${workers} ranks: every transport sums exactly, and all give identical bits`, async () => {
      const byTransport = new Map<string, RingCheck[]>();
      for (const transport of TRANSPORTS) {
        const ranks = await ringChecks(workers, transport);
        for (const [rank, checks] of ranks.entries()) {
          for (const check of checks) assert.ok(check.exact, `${transport}, rank ${rank}, ${check.floats} floats: not the exact sum`);
          assert.deepEqual(checks.map((c) => c.hash), ranks[0].map((c) => c.hash), `${transport}: rank ${rank} differs from rank 0`);
        }
        byTransport.set(transport, ranks[0]);
      }
      for (const transport of TRANSPORTS) {
        assert.deepEqual(byTransport.get(transport)?.map((c) => c.hash), byTransport.get('mapped')?.map((c) => c.hash), `${transport} differs from mapped`);
      }
    });
  }
});
