import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { activationBudget, microBatchSizes, maxMicroBatch } from '../lib/train/memory';
import { permutation } from '../lib/train/random';
import { shardBatches, stepsPerEpoch } from '../lib/train/sampler';

describe('sharding like DistributedSampler', () => {
  const base = { datasetSize: 1000, batchSize: 16, seed: 3, epoch: 1 };

  it('gives each rank disjoint batches of the per-device size, dropping the incomplete last step', () => {
    const N = 4;
    const shards = Array.from({ length: N }, (_, rank) => shardBatches({ ...base, numReplicas: N, rank }));
    const steps = stepsPerEpoch(1000, N, 16);
    assert.equal(steps, 15);
    const seen = new Set<number>();
    for (const batches of shards) {
      assert.equal(batches.length, steps);
      for (const b of batches) {
        assert.equal(b.length, 16);
        for (const i of b) {
          assert.ok(!seen.has(i), `index ${i} given twice`);
          seen.add(i);
        }
      }
    }
    assert.equal(seen.size, steps * N * 16);
  });

  it("makes the ranks' k-th batches together the single worker's k-th batch of N x b", () => {
    const N = 3;
    const single = shardBatches({ ...base, numReplicas: 1, rank: 0, batchSize: 16 * N });
    const shards = Array.from({ length: N }, (_, rank) => shardBatches({ ...base, numReplicas: N, rank }));
    assert.equal(single.length, shards[0].length);
    single.forEach((big, k) => {
      const union = shards.flatMap((s) => Array.from(s[k])).sort((a, b) => a - b);
      assert.deepEqual(union, Array.from(big).sort((a, b) => a - b));
    });
  });

  it('reshuffles every epoch from seed + epoch, reproducibly', () => {
    const e1 = shardBatches({ ...base, numReplicas: 2, rank: 0 });
    const e1again = shardBatches({ ...base, numReplicas: 2, rank: 0 });
    const e2 = shardBatches({ ...base, numReplicas: 2, rank: 0, epoch: 2 });
    assert.deepEqual(e1, e1again);
    assert.notDeepEqual(e1, e2);
  });

  it('rejects a rank outside the world', () => {
    assert.throws(() => shardBatches({ ...base, numReplicas: 2, rank: 2 }), /rank 2/);
  });

  it('permutation is a permutation', () => {
    const p = Array.from(permutation(500, 9)).sort((a, b) => a - b);
    assert.deepEqual(p, Array.from({ length: 500 }, (_, i) => i));
  });
});

describe('micro-batches', () => {
  it('splits a batch into the fewest near-equal parts', () => {
    assert.deepEqual(microBatchSizes(128, 128), [128]);
    assert.deepEqual(microBatchSizes(128, 32), [32, 32, 32, 32]);
    assert.deepEqual(microBatchSizes(100, 32), [25, 25, 25, 25]);
    assert.deepEqual(microBatchSizes(10, 4), [4, 3, 3]);
  });

  it('keeps the WideResNets inside wasm32 memory and leaves the small cnn whole', () => {
    const wideResNetFloats = 3_818_586;
    const budget = activationBudget({ name: 'wasm', gpu: null }, { localWorkers: 1, deviceMemoryGb: null, totalMemory: 16e9 }).bytes;
    const wasm = maxMicroBatch(budget, wideResNetFloats);
    assert.ok(wasm >= 16 && wasm < 64, `wasm micro-batch ${wasm}`);
    assert.ok(maxMicroBatch(budget, 38_906) >= 256);
  });

  it("takes the budget from the device where the engine can tell, else from the flag, and shares the RAM among a machine's workers", () => {
    const gpu = activationBudget({ name: 'tensorflow-gpu', gpu: '5' }, { localWorkers: 8, deviceMemoryGb: null, gpuMemory: (g) => (g === '5' ? 80e9 : null) });
    assert.equal(gpu.bytes, 56e9);
    assert.match(gpu.source, /GPU 5's 80\.0 GB \(nvidia-smi\)/);
    const unknown = activationBudget({ name: 'tensorflow-gpu', gpu: '0' }, { localWorkers: 1, deviceMemoryGb: null, gpuMemory: () => null });
    assert.match(unknown.source, /set --device-memory-gb/);
    assert.equal(activationBudget({ name: 'tensorflow-gpu', gpu: '0' }, { localWorkers: 1, deviceMemoryGb: 12, gpuMemory: () => null }).bytes, 12e9);
    // 16 GB of RAM, 8 workers: 1 GB each, under wasm's 2 GB and the CPU engine's 8 GB.
    for (const name of ['wasm', 'tensorflow'] as const) {
      assert.equal(activationBudget({ name, gpu: null }, { localWorkers: 8, deviceMemoryGb: null, totalMemory: 16e9 }).bytes, 1e9);
    }
    assert.equal(activationBudget({ name: 'tensorflow', gpu: null }, { localWorkers: 1, deviceMemoryGb: null, totalMemory: 64e9 }).bytes, 8e9);
  });
});
