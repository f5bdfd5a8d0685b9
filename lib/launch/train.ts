import { openCommunicator, SoloCommunicator } from '../ddp/communicator';
import { parseLinkModel } from '../ddp/links';
import { LaunchError, launchWorkers } from './launch';
import { injectFaults } from './faults';
import { SINGLE_WORLD, worldFromEnv } from '../ddp/world';
import type { TrainConfig } from '../train/config';
import type { TrainHooks, TrainResult } from '../train/events';
import { trainRank } from '../train/loop';
import { checkOutputPaths } from '../train/output-paths';
import { resumeConfig } from './resume';
import { loadCheckpoint } from '../train/checkpoint';
import { checkMpiLoadable } from '../ddp/mpi';

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
    if (config.distBackend === 'mpi' && world.worldSize > 1) checkMpiLoadable();
    const comm = openCommunicator(world, process.env, config.simulatedLink ? parseLinkModel(config.simulatedLink) : null, config.distBackend);
    let result: TrainResult;
    try {
      // Every rank computes the same metrics; rank 0 reports them, as in the course.
      result = await trainRank(config, world, comm, (event) => {
        injectFaults(world.rank, event);
        if (world.rank === 0) emit(event);
      });
    } catch (e) {
      comm.abort(e instanceof Error ? e.message : String(e));
      throw e;
    }
    comm.close();
    return result;
  }
  if (config.distBackend === 'mpi' && config.numGpus * config.numNodes > 1) {
    throw new LaunchError(`--dist-backend mpi: mpirun starts the ranks, not this launcher; run ` +
      `mpirun -np ${config.numGpus * config.numNodes} npx fashion-mnist --dist-backend mpi ... (the same flags without --num-gpus)`);
  }
  // --max-restarts needs a supervisor, even for one worker.
  if (config.numGpus * config.numNodes > 1 || config.maxRestarts > 0) return launchWorkers(config, hooks);
  return trainRank(config, SINGLE_WORLD, new SoloCommunicator(), emit);
}
