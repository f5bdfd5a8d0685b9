import { initEngine, type EngineName } from '../backend/select';
import { DEFAULT_CONFIG, type BackendChoice, type ModelName } from '../train/config';
import { buildTrainer } from '../train/loop';
import { activationBudget } from '../train/memory';
import type { Batch } from '../train/trainer';

export interface ProbeOptions {
  /** The engine a run would ask for (its `backend` setting); default 'auto', as `train` does. */
  backend?: BackendChoice;
  /** Stop timing once this many seconds have passed (default 2); at least one timed step always runs. */
  budgetSeconds?: number;
  /** ...or once this many timed steps have run (default 50). */
  maxSteps?: number;
}

/** Training throughput of one model and batch on this process's engine. */
export interface ThroughputProbe {
  engine: EngineName;
  engineDescription: string;
  model: ModelName;
  batchSize: number;
  /** Largest batch one forward/backward pass took (the batch is split above it). */
  microBatch: number;
  imagesPerSec: number;
  timedSteps: number;
  timedSeconds: number;
  warmupSteps: number;
  warmupSeconds: number;
}

/**
 * The second step still runs ~1.6x slower than later ones on wasm (cnn, wideresnet-dw):
 * two untimed steps, unless the first alone took longer than this factor x the budget.
 */
const WARMUP_STEPS = 2;
const WARMUP_BUDGET_FACTOR = 5;

const probes = new Map<string, ThroughputProbe>();

function randomBatch(size: number): Batch {
  const images = new Float32Array(size * 784);
  for (let i = 0; i < images.length; i++) images[i] = Math.random();
  const labels = new Int32Array(size);
  for (let i = 0; i < size; i++) labels[i] = Math.floor(Math.random() * 10);
  return { images, labels };
}

const secondsSince = (start: number) => (performance.now() - start) / 1000;

/**
 * Images per second one worker trains (forward, backward and SGD update, as
 * `train` runs them) on the engine `train` would start, measured on random
 * images: warm-up steps, then timed steps until the budget or maxSteps is
 * reached. Measured once per engine, model and batch in this process.
 */
export async function measureImagesPerSec(model: ModelName, batchSize: number, options: ProbeOptions = {}): Promise<ThroughputProbe> {
  const engine = await initEngine(options.backend ?? 'auto');
  const key = `${engine.name}/${model}/${batchSize}`;
  const cached = probes.get(key);
  if (cached) return cached;

  const budgetSeconds = options.budgetSeconds ?? 2;
  const maxSteps = options.maxSteps ?? 50;
  const trainer = buildTrainer({ ...DEFAULT_CONFIG, model, batchSize }, activationBudget(engine, { localWorkers: 1, deviceMemoryGb: null }).bytes);
  try {
    const batch = randomBatch(batchSize);
    const step = () => {
      const { grads } = trainer.computeGradients(batch);
      trainer.applyGradients(grads, DEFAULT_CONFIG.baseLr);
    };
    const warmupStart = performance.now();
    let warmupSteps = 0;
    do {
      step();
      warmupSteps++;
    } while (warmupSteps < WARMUP_STEPS && secondsSince(warmupStart) < WARMUP_BUDGET_FACTOR * budgetSeconds);
    const warmupSeconds = secondsSince(warmupStart);
    const timedStart = performance.now();
    let timedSteps = 0;
    do {
      step();
      timedSteps++;
    } while (timedSteps < maxSteps && secondsSince(timedStart) < budgetSeconds);
    // The loss is read back every step; reading a weight also waits for an asynchronous engine's update.
    trainer.params[trainer.params.length - 1].dataSync();
    const timedSeconds = secondsSince(timedStart);
    const probe: ThroughputProbe = {
      engine: engine.name, engineDescription: engine.description, model, batchSize, microBatch: trainer.microBatch,
      imagesPerSec: (timedSteps * batchSize) / timedSeconds, timedSteps, timedSeconds, warmupSteps, warmupSeconds,
    };
    probes.set(key, probe);
    return probe;
  } finally {
    trainer.optimizer.dispose();
    trainer.model.dispose();
  }
}
