/**
 * `npm run bench:allreduce`: the ring all-reduce alone, between worker
 * processes on this machine, for the gradient sizes of the three models:
 * milliseconds per all-reduce and the bus bandwidth 2 (N-1)/N x bytes / time,
 * and the latency and bandwidth of the cost model
 * 2 (N-1) x latency + 2 (N-1)/N x bytes / bandwidth fitted to them.
 *
 *   node dist/bench/allreduce.js [--workers 2] [--repeats 20]
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { fitRingCostModel, measureAllReduce } from '../lib/launch/ring-benchmark';
import { MODELS } from '../lib/models';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { workers: { type: 'string', default: '2' }, repeats: { type: 'string', default: '20' } } });
  const workers = Number(values.workers);
  const repeats = Number(values.repeats);
  const sizes = [{ name: '(4 bytes)', floats: 1 }, ...Object.values(MODELS).map((m) => ({ name: m.name, floats: m.parameters + 1 }))];
  const timings = await measureAllReduce(workers, sizes, repeats);
  console.log(`Ring all-reduce between ${workers} processes on this machine (${os.cpus()[0]?.model ?? 'CPU'}), median of ${repeats}`);
  console.log('gradients of        MB        ms   bus GB/s');
  for (const t of timings) {
    const mb = (t.floats * 4) / 1e6;
    const bus = (((2 * (workers - 1)) / workers) * mb) / 1000 / (t.ms / 1000);
    console.log(`${t.name.padEnd(14)} ${mb.toFixed(2).padStart(8)} ${t.ms.toFixed(3).padStart(9)} ${bus.toFixed(2).padStart(10)}`);
  }
  const model = fitRingCostModel(timings);
  console.log(`cost model fit: latency ${(model.latencyMs * 1000).toFixed(0)} us per message, bandwidth ${(model.bytesPerMs / 1e6).toFixed(2)} GB/s per link`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
