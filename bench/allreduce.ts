/**
 * `npm run bench:allreduce`: the ring all-reduce alone, between worker
 * processes on this machine, for the gradient sizes of the three models:
 * milliseconds per all-reduce and the bus bandwidth 2 (N-1)/N x bytes / time,
 * next to the cost model 2 (N-1) x latency + 2 (N-1)/N x bytes / bandwidth.
 *
 *   node dist/bench/allreduce.js [--workers 2] [--repeats 20]
 */
import { fork } from 'node:child_process';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { freePort } from '../lib/ddp/launch';
import { MODELS } from '../lib/models';
import { RingCommunicator } from '../lib/ddp/communicator';
import { worldFromEnv } from '../lib/ddp/world';

const SIZES = Object.values(MODELS).map((m) => ({ name: m.name, floats: m.parameters + 1 }));

async function runWorker(): Promise<void> {
  const world = worldFromEnv();
  if (world == null) throw new Error('no RANK/WORLD_SIZE');
  const comm = new RingCommunicator(world, 60_000, 60_000);
  const repeats = Number(process.env.REPEATS);
  const results: { name: string; ms: number }[] = [];
  for (const size of SIZES) {
    const data = new Float32Array(size.floats).fill(world.rank + 1);
    comm.allReduce(data);
    comm.barrier();
    const times: number[] = [];
    for (let i = 0; i < (size.floats > 1e7 ? Math.max(3, repeats / 4) : repeats); i++) {
      const t = performance.now();
      comm.allReduce(data);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    results.push({ name: size.name, ms: times[Math.floor(times.length / 2)] });
  }
  comm.close();
  process.send?.(results);
  process.exit(0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { workers: { type: 'string', default: '2' }, repeats: { type: 'string', default: '20' } } });
  const workers = Number(values.workers);
  const port = await freePort();
  const outputs = await Promise.all(Array.from({ length: workers }, (_, rank) => new Promise<{ name: string; ms: number }[]>((resolve, reject) => {
    const child = fork(__filename, ['--worker'], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(workers), MASTER_PORT: String(port), REPEATS: values.repeats },
    });
    child.on('message', (m) => resolve(m as { name: string; ms: number }[]));
    child.on('exit', (code) => { if (code !== 0) reject(new Error(`rank ${rank} exited with ${code}`)); });
  })));
  console.log(`Ring all-reduce between ${workers} processes on this machine (${os.cpus()[0]?.model ?? 'CPU'}), median of ${values.repeats}`);
  console.log('gradients of      MB      ms   bus GB/s');
  outputs[0].forEach((r, i) => {
    const mb = (SIZES[i].floats * 4) / 1e6;
    const bus = ((2 * (workers - 1)) / workers) * mb / 1000 / (r.ms / 1000);
    console.log(`${r.name.padEnd(14)} ${mb.toFixed(2).padStart(6)} ${r.ms.toFixed(2).padStart(7)} ${bus.toFixed(2).padStart(9)}`);
  });
}

if (process.argv.includes('--worker')) void runWorker();
else main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
