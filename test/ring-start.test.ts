/**
 * The ring starts reliably. A rank whose ring was up could send its first bytes before its
 * neighbour's link listened; those bytes were dropped and both ranks waited forever (about half of
 * the 2-process rings over TCP hung in their first collectives before the fix).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { measureAllReduce } from '../lib/launch/ring-benchmark';

it('starts 6 rings of 2 processes over TCP and finishes 50 all-reduces of 0.9 MB on each', { timeout: 240_000 }, async () => {
  const previous = process.env.FASHION_MNIST_RING_TRANSPORT;
  process.env.FASHION_MNIST_RING_TRANSPORT = 'tcp';
  try {
    for (let ring = 0; ring < 6; ring++) {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`ring ${ring} did not finish in 30 s`)), 30_000); });
      const [timing] = await Promise.race([measureAllReduce(2, [{ name: 'cnn', floats: 225_034 }], 50), hung]);
      clearTimeout(timer);
      assert.ok(timing.ms > 0, `ring ${ring}: ${JSON.stringify(timing)}`);
    }
  } finally {
    if (previous === undefined) delete process.env.FASHION_MNIST_RING_TRANSPORT;
    else process.env.FASHION_MNIST_RING_TRANSPORT = previous;
  }
});
