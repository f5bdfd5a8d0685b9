import type { TrainConfig } from '../train/config';
import type { TrainEvent, TrainResult } from '../train/events';

/** Launcher -> worker. */
export interface StartMessage {
  type: 'train';
  config: TrainConfig;
}

/** Worker -> launcher. */
export type WorkerMessage =
  | { type: 'event'; rank: number; event: TrainEvent }
  | { type: 'done'; rank: number; result: Omit<TrainResult, 'model'> }
  | { type: 'error'; rank: number; message: string; kind: string; stack?: string };
