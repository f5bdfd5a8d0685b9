/**
 * Lesson 07 (hiding communication): where each step's time went, summarized over repeated runs,
 * the timeline of one step, and the cost model of lesson 01 extended with overlap.
 */
import type { StepTimeline } from '../ddp/reducer';
import type { LinkModel } from '../ddp/links';
import type { TimelineBar } from '../plot/charts';
import type { Experiment } from './experiment';
import { spread, type Spread } from './spread';

export { formatSpread, separated, spread, type Spread } from './spread';

/** Rank 0's milliseconds per step in a run's last epoch, and its throughput. */
export interface StepTimes {
  imagesPerSec: number;
  compute: number;
  wait: number;
  exposed: number;
  hidden: number;
  /** compute + wait + exposed: the step as the training thread lived it. */
  step: number;
}

export function stepTimes(e: Experiment): StepTimes {
  const m = e.epochs[e.epochs.length - 1];
  const globalBatch = e.config.numGpus * e.config.batchSize * e.config.accumulationSteps;
  const steps = (m.imagesPerSec * m.epochTime) / globalBatch;
  const ms = (s: number) => (1000 * s) / steps;
  const t = { imagesPerSec: m.imagesPerSec, compute: ms(m.computeSeconds), wait: ms(m.waitSeconds), exposed: ms(m.allReduceSeconds), hidden: ms(m.hiddenSeconds) };
  return { ...t, step: t.compute + t.wait + t.exposed };
}

/** Each field of StepTimes over the repeats of one configuration. */
export function summarize(repeats: Experiment[]): Record<keyof StepTimes, Spread> {
  const times = repeats.map(stepTimes);
  const keys = Object.keys(times[0]) as (keyof StepTimes)[];
  return Object.fromEntries(keys.map((k) => [k, spread(times.map((t) => t[k]))])) as Record<keyof StepTimes, Spread>;
}

/** The bars of one step's timeline (rank 0): the backward pass, each bucket's all-reduce, the wait. */
export function timelineBars(timeline: StepTimeline, run: string): TimelineBar[] {
  const bars: TimelineBar[] = [{ run, lane: 'training thread', what: 'forward and backward passes', start: 0, end: timeline.backwardEnd }];
  if (timeline.waitEnd > timeline.backwardEnd) bars.push({ run, lane: 'training thread', what: 'waiting for the all-reduces', start: timeline.backwardEnd, end: timeline.waitEnd });
  timeline.buckets.forEach((b, i) => {
    const lane = `bucket ${i} (${((b.floats * 4) / 1e6).toFixed(2)} MB)`;
    bars.push({ run, lane, what: 'gradients complete: waiting for its turn', start: b.readyAt, end: Math.max(b.readyAt, b.startedAt) });
    bars.push({ run, lane, what: 'all-reduce on the communication thread', start: b.startedAt, end: b.finishedAt });
  });
  return bars;
}

/** The ring all-reduce of `bytes` among `ranks` over `link`: 2 (N-1) messages of bytes / N (lesson 01's model). */
export function ringMs(bytes: number, ranks: number, link: LinkModel): number {
  if (ranks < 2) return 0;
  return 2 * (ranks - 1) * (link.latencyMs + ((bytes / ranks) * 8 * 1000) / link.bitsPerSecond);
}

/**
 * The exposed communication the cost model predicts for a step, from when its buckets were
 * complete: the communication thread reduces them one after another, each no earlier than it is
 * complete and than the previous one is done; what ends after the backward pass is exposed.
 * Without overlap, every bucket waits for the end of the backward pass.
 */
export function predictedExposedMs(timeline: StepTimeline, ranks: number, link: LinkModel, overlap: boolean): number {
  let free = 0;
  for (const b of timeline.buckets) {
    const ready = overlap ? b.readyAt : timeline.backwardEnd;
    free = Math.max(free, ready) + ringMs(b.floats * 4, ranks, link);
  }
  return Math.max(0, free - timeline.backwardEnd);
}
