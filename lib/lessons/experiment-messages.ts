import type { TrainConfig } from '../train/config';
import type { TrainEvent, TrainResult } from '../train/events';

/** Lesson -> the child process that trains one run. */
export interface ExperimentStartMessage {
  type: 'train';
  config: TrainConfig;
}

/** Child -> lesson. */
export type ExperimentProcessMessage =
  | { type: 'event'; event: TrainEvent }
  | { type: 'done'; result: Pick<TrainResult, 'epochs' | 'outcome' | 'diverged' | 'runDir'> }
  | { type: 'error'; message: string; kind: string };
