import { DEFAULT_OPTIMIZER_SPEC, type OptimizerName, type OptimizerSpec } from '../optim/factory';
import type { ScaleRule } from './schedule';
import type { DistBackend } from '../ddp/communicator';

/** Names of the models in `lib/models`. */
export const MODEL_NAMES = ['cnn', 'wideresnet-dw', 'wideresnet'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Engines in order of preference; `auto` picks the first that works. */
export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_NAMES)[number];

/** Everything one training run needs; the command line and notebooks fill it in. */
export interface TrainConfig extends Omit<OptimizerSpec, 'name'> {
  model: ModelName;
  backend: BackendChoice;
  /** Passes over the training set (the course's `--epochs`). */
  epochs: number;
  /** Images per device per step (the course's `--batch-size`). */
  batchSize: number;
  /** Learning rate before any scaling rule (the course's `--base-lr`). */
  baseLr: number;
  /** sgd (the course), novograd, lamb or lars; its settings are OptimizerSpec's fields. */
  optimizer: OptimizerName;
  /** How the learning rate grows with the workers: lr = base-lr x N (linear), x sqrt(N), or not. */
  scaleLr: ScaleRule;
  /** Warm up every step (Goyal et al.) instead of every epoch (the course). */
  warmupPerIteration: boolean;
  /** The warmup's first factor (null: 1 / workers, as in the course's LinearLR(start_factor=1/num_gpus)). */
  warmupStartFactor: number | null;
  /** Devices (worker processes) per node. */
  numGpus: number;
  numNodes: number;
  nodeId: number;
  /** Epochs of LinearLR warmup from 1/N of the learning rate (0 = none). */
  warmupEpochs: number;
  /** Early stop once the last `patience` validation accuracies all reach this. */
  targetAccuracy: number;
  patience: number;
  seed: number;
  /** Train on the first N shuffled training images only (null = all 60,000). */
  trainSubset: number | null;
  /** Validate on the first N test images only (null = all 10,000). */
  valSubset: number | null;
  /** Also validate every this many steps within an epoch (null = at the ends of epochs only). */
  validateEvery: number | null;
  /** Those validations within an epoch use the first N validation images. */
  validateEveryImages: number;
  /** Folder with the four IDX files (null = the project's `data/`). */
  dataDir: string | null;
  /** Folder to save the trained model in tfjs format (null = do not save). */
  save: string | null;
  /** Parent folder of per-run records (`runs/<run-id>/`). */
  runsDir: string;
  /** Show in-epoch progress (on a terminal). */
  progress: boolean;
  /** Allow more workers than devices (teaching only: they compete for the same cores). */
  oversubscribe: boolean;
  /** Rank 0's rendezvous address and port (null: 127.0.0.1 and a free port on one node, 29500 across nodes). */
  masterAddr: string | null;
  masterPort: number | null;
  /** Gradient bucket size cap in MB (PyTorch's bucket_cap_mb); 0: one bucket after the whole backward pass. */
  bucketCapMb: number;
  /** Start each bucket's all-reduce during the backward pass (false: --no-overlap, all after it). */
  overlap: boolean;
  /** Forward/backward passes per optimizer step, gradients summed locally, all-reduced on the last (PyTorch's no_sync). */
  accumulationSteps: number;
  /** What carries the collectives: the project's ring (TCP, shared memory on one machine) or the job's MPI (under mpirun). */
  distBackend: DistBackend;
  /** Slow the ring's every message down to this link ("100mbit", "1gbit,0.5ms"): a simulated link, for lessons. */
  simulatedLink: string | null;
  /** Largest batch one forward/backward pass takes (null: what fits the engine's memory). */
  microBatch: number | null;
  /** Memory each worker's activations may take, in GB (null: from the device where the engine can tell). */
  deviceMemoryGb: number | null;
  /** Dropout rate in the WideResNets' blocks (the course uses 0.01). */
  dropout: number;
  /** Average BatchNorm statistics across workers (PyTorch's SyncBatchNorm). */
  syncBn: boolean;
  /** The run's folder name under runsDir (null: date, model and a random suffix), e.g. a scheduler's job id. */
  runId: string | null;
  /** A run folder (or a run id under runsDir) to continue from its last checkpoint (null: a new run). */
  resume: string | null;
  /** Times the launcher restarts all workers from the last checkpoint when one dies (torchrun's --max-restarts). */
  maxRestarts: number;
  /** Keep every epoch's checkpoint, not only the last. */
  keepCheckpoints: boolean;
}

/** An optimizer spec's settings, without its name. */
function optimizerSettings(spec: Readonly<OptimizerSpec>): Omit<OptimizerSpec, 'name'> {
  const { name: _name, ...settings } = spec;
  return settings;
}

export const DEFAULT_CONFIG: TrainConfig = {
  model: 'cnn',
  backend: 'auto',
  epochs: 40,
  batchSize: 32,
  baseLr: 0.01,
  optimizer: DEFAULT_OPTIMIZER_SPEC.name,
  ...optimizerSettings(DEFAULT_OPTIMIZER_SPEC),
  scaleLr: 'none',
  warmupPerIteration: false,
  warmupStartFactor: null,
  numGpus: 1,
  numNodes: 1,
  nodeId: 0,
  warmupEpochs: 0,
  targetAccuracy: 0.85,
  patience: 2,
  seed: 0,
  trainSubset: null,
  valSubset: null,
  validateEvery: null,
  validateEveryImages: 2000,
  dataDir: null,
  save: null,
  runsDir: 'runs',
  progress: true,
  oversubscribe: false,
  masterAddr: null,
  masterPort: null,
  syncBn: false,
  dropout: 0.01,
  microBatch: null,
  deviceMemoryGb: null,
  bucketCapMb: 25,
  overlap: true,
  accumulationSteps: 1,
  simulatedLink: null,
  distBackend: 'ring',
  runId: null,
  resume: null,
  maxRestarts: 0,
  keepCheckpoints: false,
};

/** The optimizer part of a configuration. */
export function optimizerSpecOf(c: TrainConfig): OptimizerSpec {
  return {
    name: c.optimizer, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov, beta1: c.beta1,
    beta2: c.beta2, eps: c.eps, gradAveraging: c.gradAveraging, amsgrad: c.amsgrad, trustCoefficient: c.trustCoefficient,
  };
}
