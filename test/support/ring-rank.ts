/**
 * One rank of a ring for test/ring-transports.test.ts: all-reduces seeded buffers of the sizes it
 * is given and reports, per size, a hash of the result and whether it equals the exact sum.
 */
import { createHash } from 'node:crypto';
import { connectRing } from '../../lib/ddp/ring-setup';
import { createSharedBuffer } from '../../lib/ddp/shared-buffers';
import { worldFromEnv } from '../../lib/ddp/world';

export interface RingCheck {
  floats: number;
  /** sha256 of the summed buffer's bytes. */
  hash: string;
  /** Integer-valued inputs summed in any order give exactly the sum of every rank's input. */
  exact: boolean;
}

/**
 * Rank `rank`'s input: small integers (exact sums) or, with `fractional`, seeded floats; in a
 * shared buffer (which the mapped link sends as a reference) with `shared`.
 */
export function rankInput(rank: number, floats: number, fractional: boolean, shared = false): Float32Array {
  const data = shared ? createSharedBuffer(floats).data : new Float32Array(floats);
  let state = (rank + 1) * 2654435761;
  for (let i = 0; i < floats; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = fractional ? state / 2 ** 32 - 0.5 : (state % 2001) - 1000;
  }
  return data;
}

async function main(): Promise<void> {
  const world = worldFromEnv();
  if (world == null) throw new Error('ring-rank runs with RANK and WORLD_SIZE set');
  const ring = await connectRing(world, 30_000);
  if (ring == null) throw new Error('ring-rank needs 2 ranks at least');
  const sizes = JSON.parse(process.env.RING_CHECK_SIZES ?? '[]') as number[];
  const checks: RingCheck[] = [];
  for (const fractional of [false, true]) {
    for (const floats of sizes) {
      const data = rankInput(world.rank, floats, fractional, process.env.RING_CHECK_SHARED === '1');
      await ring.allReduce(data);
      let exact = true;
      if (!fractional) {
        const expected = new Float64Array(floats);
        for (let r = 0; r < world.worldSize; r++) rankInput(r, floats, false).forEach((v, i) => { expected[i] += v; });
        exact = data.every((v, i) => v === expected[i]);
      }
      checks.push({ floats, hash: createHash('sha256').update(new Uint8Array(data.buffer)).digest('hex'), exact });
    }
  }
  const description = ring.description;
  ring.close();
  process.send?.({ checks, description }, () => process.exit(0));
}

if (process.argv.includes('--ring-check-rank')) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
