import { openCommunicator, SoloCommunicator } from '../ddp/communicator';
import { parseLinkModel } from '../ddp/links';
import { launchWorkers } from './launch';
import { SINGLE_WORLD, worldFromEnv } from '../ddp/world';
import type { TrainConfig } from '../train/config';
import type { TrainHooks, TrainResult } from '../train/events';
import { trainRank } from '../train/loop';
import { checkOutputPaths } from '../train/output-paths';
import { resumeConfig } from './resume';
import { loadCheckpoint } from '../train/checkpoint';

export type { TrainEvent, TrainHooks, TrainResult } from '../train/events';

/**
 * Trains with the course script's semantics. One device: in this process.
 * Several (`numGpus` x `numNodes` > 1): one worker process per device,
 * started here, gradients averaged every step. Inside a process started by
 * a launcher (RANK/WORLD_SIZE, mpirun, srun): as that rank. With
 * `resume`, the run continues from its last checkpoint.
 */
export async function train(requested: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const emit = hooks.onEvent ?? (() => undefined);
  const world = worldFromEnv();
  // --resume: the run's own settings and a checkpoint that reads back, checked before anything loads.
  const config = resumeConfig(requested);
  if (config.resume != null && (world?.rank ?? 0) === 0) loadCheckpoint(config.resume);
  // Rank 0 writes the run record and the model: check where, before anything loads.
  if ((world?.rank ?? 0) === 0 && world?.launcher !== 'builtin') checkOutputPaths(config);
  if (world != null) {
    const comm = openCommunicator(world, process.env, config.simulatedLink ? parseLinkModel(config.simulatedLink) : null);
    try {
      // Every rank computes the same metrics; rank 0 reports them, as in the course.
      return await trainRank(config, world, comm, world.rank === 0 ? emit : () => undefined);
    } finally {
      comm.close();
    }
  }
  // --max-restarts needs a supervisor, even for one worker.
  if (config.numGpus * config.numNodes > 1 || config.maxRestarts > 0) return launchWorkers(config, hooks);
  return trainRank(config, SINGLE_WORLD, new SoloCommunicator(), emit);
}
