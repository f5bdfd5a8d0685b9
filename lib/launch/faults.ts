import type { TrainEvent } from '../train/events';

/**
 * Failure injection for the tests of the launcher: FASHION_MNIST_FAULT =
 * "<rank>:<step>:<throw|exit|kill|hang|oom>[:<epoch>]" makes that rank fail that way
 * when it reaches that step of that epoch (default 1), in the first attempt only (not after
 * a --max-restarts restart); "<rank>:<ms>:slow" makes it sleep
 * that long after every step, so that it finishes each backward pass late.
 */
export function injectFaults(rank: number, event: TrainEvent, spec = process.env.FASHION_MNIST_FAULT): void {
  if (spec == null || event.type !== 'step') return;
  const [faultRank, faultStep, kind, faultEpoch = '1'] = spec.split(':');
  if (Number(faultRank) !== rank) return;
  if (kind === 'slow') {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(faultStep));
    return;
  }
  if (Number(process.env.TORCHELASTIC_RESTART_COUNT ?? 0) > 0) return;
  if (event.epoch !== Number(faultEpoch) || Number(faultStep) !== event.step) return;
  switch (kind) {
    case 'throw': throw new Error(`injected failure at step ${event.step}`);
    case 'exit': process.exit(7);
    // eslint-disable-next-line no-fallthrough
    case 'kill': process.kill(process.pid, 'SIGKILL'); break;
    case 'hang': for (;;) { /* a worker stuck in a loop */ }
    case 'oom': {
      const hog: number[][] = [];
      for (;;) hog.push(Array.from({ length: 1 << 20 }, Math.random));
    }
  }
}
