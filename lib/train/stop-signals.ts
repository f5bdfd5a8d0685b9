/**
 * What a training process does on SIGINT or SIGTERM, so that the run's end.json says it was
 * interrupted. Alone (the command line, a notebook kernel) it finishes the step, records the end
 * and stops with an InterruptedError: the kernel lives on. Under torchrun, mpirun or srun it
 * records the end and exits at once, as those launchers expect. The built-in launcher's workers
 * keep the default (die at once): the launcher records the end of the run for them.
 */
import type { World } from '../ddp/world';
import { finishOpenRecords } from './run-record';

/** Training stopped by a signal; the run folder keeps its last checkpoint. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const SIGNAL_NUMBERS: Record<(typeof SIGNALS)[number], number> = { SIGINT: 2, SIGTERM: 15 };

export interface StopWatch {
  /** The signal that asked this process to stop, if one did. */
  readonly requested: string | null;
  dispose(): void;
}

export function watchStopSignals(world: World): StopWatch {
  let requested: string | null = null;
  if (world.launcher === 'builtin') return { requested: null, dispose: () => undefined };
  const alone = world.launcher === 'single';
  const handlers = SIGNALS.map((signal) => {
    const handler = () => {
      requested ??= signal;
      if (alone) return;
      finishOpenRecords({ outcome: 'interrupted', message: `stopped by ${signal} (rank ${world.rank})` });
      process.exit(128 + SIGNAL_NUMBERS[signal]);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return {
    get requested() { return requested; },
    dispose: () => { for (const [signal, handler] of handlers) process.off(signal, handler); },
  };
}
