/**
 * Entry point of a child process that trains one of a lesson's runs, so that independent runs
 * (seeds) use the machine's cores side by side: the configuration comes over IPC, the events,
 * the result or the error go back.
 */
import { train } from '../launch/train';
import { finishOpenRecords } from '../train/run-record';
import type { ExperimentProcessMessage, ExperimentStartMessage } from './experiment-messages';

function send(message: ExperimentProcessMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send == null) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}

// The notebook's kernel went away: the run is interrupted, and nothing stays behind.
process.on('disconnect', () => {
  finishOpenRecords({ outcome: 'interrupted', message: 'the notebook kernel that started this run went away' });
  process.exit(1);
});

process.once('message', (message: ExperimentStartMessage) => {
  void (async () => {
    const result = await train(message.config, { onEvent: (event) => void send({ type: 'event', event }) });
    result.model?.dispose();
    await send({ type: 'done', result: { epochs: result.epochs, outcome: result.outcome, diverged: result.diverged, runDir: result.runDir } });
    process.exit(0);
  })().catch(async (e: unknown) => {
    const error = e instanceof Error ? e : new Error(String(e));
    await send({ type: 'error', message: error.message, kind: error.name });
    process.exit(1);
  });
});
