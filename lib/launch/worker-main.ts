/**
 * Entry point of a worker process started by the built-in launcher: it gets
 * its rank from the environment and its configuration over IPC, trains as
 * that rank, and reports events, the result or its error back.
 */
import { worldFromEnv } from '../ddp/world';
import { openCommunicator } from '../ddp/communicator';
import { parseLinkModel } from '../ddp/links';
import { trainRank } from '../train/loop';
import type { StartMessage, WorkerMessage } from './messages';
import { injectFaults } from './faults';
import { finishOpenRecords } from '../train/run-record';

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send == null) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}

/**
 * The launcher went away (killed, interrupted): say so in the run's end.json (rank 0 holds the
 * record). A peer that died with the launcher may have failed this rank's run first: that
 * failure was the launcher's loss too.
 */
const recordLauncherGone = () => finishOpenRecords(
  { outcome: 'interrupted', message: 'the launcher went away (killed?): the workers stopped' }, { causedFailures: true },
);

// Stop at once and leave nothing behind.
process.on('disconnect', () => {
  recordLauncherGone();
  process.exit(1);
});

process.once('message', (message: StartMessage) => {
  const world = worldFromEnv();
  const rank = world?.rank ?? 0;
  void (async () => {
    if (world == null) throw new Error('worker started without RANK/WORLD_SIZE');
    const link = message.config.simulatedLink;
    const comm = openCommunicator(world, process.env, link ? parseLinkModel(link) : null);
    const result = await trainRank(message.config, world, comm, (event) => {
      injectFaults(world.rank, event);
      void send({ type: 'event', rank, event });
    });
    comm.close();
    const { model, ...rest } = result;
    model?.dispose();
    await send({ type: 'done', rank, result: rest });
    process.exit(0);
  })().catch(async (e: unknown) => {
    const error = e instanceof Error ? e : new Error(String(e));
    await send({ type: 'error', rank, message: error.message, kind: error.name, stack: error.stack });
    if (!process.connected) recordLauncherGone();
    process.exit(1);
  });
});
