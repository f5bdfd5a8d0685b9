/**
 * The reducer (PyTorch's DDP Reducer, Li et al., VLDB 2020): gradients land in buckets as the
 * backward pass computes them (gradient-hooks.ts), each bucket's all-reduce starts on the
 * communication thread as soon as the bucket is complete, and the training thread waits at the end
 * of the backward pass only for what has not finished. Several backward passes may feed one step
 * (gradient accumulation, PyTorch's no_sync): their gradients are summed in the buckets and only
 * the last pass starts the all-reduces. A world of one runs the same reducer, with nothing to send.
 *
 * The last bucket (the model's first weights, the last the backward pass finishes) carries two more
 * things: the step's loss, and when each rank finished its backward pass (one float per rank, the
 * others' zero), from which every rank learns how long it waited for the slowest.
 */
import * as tf from '@tensorflow/tfjs';
import { assignBuckets, type BucketPlan } from './buckets';
import type { AsyncBucket, Communicator } from './communicator';
import type { GradientHook } from './gradient-hooks';

export interface ReducerOptions {
  /** Bucket size cap in MB (PyTorch's bucket_cap_mb); 0: one bucket, summed after the whole backward pass. */
  bucketCapMb: number;
  /** Start each bucket's all-reduce as soon as its gradients exist (false: all of them after the backward pass). */
  overlap: boolean;
}

export const DEFAULT_REDUCER_OPTIONS: ReducerOptions = { bucketCapMb: 25, overlap: true };

/** One bucket in one step, in performance.now() ms. */
export interface BucketTiming {
  floats: number;
  /** Its last gradient arrived. */
  readyAt: number;
  /** The communication thread started and finished its all-reduce. */
  startedAt: number;
  finishedAt: number;
}

/** Where one step's communication time went on this rank, in seconds. */
export interface StepCommunication {
  /** hidden + exposed. */
  communication: number;
  /** What the training thread waited for the buckets after its backward pass, less `slowestWait`. */
  exposed: number;
  /** The communication thread's time on buckets before the backward pass ended: hidden under it. */
  hidden: number;
  /** How much later than this rank the slowest rank finished its backward pass. */
  slowestWait: number;
}

export interface ReducedGradients {
  /** Averaged over the ranks, in the order of the model's trainable weights. */
  grads: tf.Tensor[];
  /** The loss averaged over the ranks. */
  loss: number;
  communication: StepCommunication;
}

/**
 * A timeline of one step on one rank, for charts, in ms from the start of its first backward pass
 * (the forward passes included): when the last pass ended, when the wait for the buckets ended, and
 * each bucket's readiness and all-reduce.
 */
export interface StepTimeline {
  backwardEnd: number;
  waitEnd: number;
  buckets: BucketTiming[];
}

export class Reducer {
  readonly plan: BucketPlan[];
  private readonly buckets: AsyncBucket[];
  /** Per parameter: its bucket and offset. */
  private readonly place: { bucket: number; offset: number; size: number }[];
  /** Gradients still missing from each bucket in this step's last pass. */
  private readonly missing: number[];
  /** Whether each parameter's gradient arrived in this pass. */
  private readonly seen: boolean[];
  private readonly readyAt: number[];
  private nextToStart = 0;
  private firstPass = true;
  private lastPass = true;
  private lossOfStep: () => number = () => 0;
  private backwardStart = 0;
  private clockZero = performance.now();
  /** The last step's timeline. */
  timeline: StepTimeline | null = null;

  constructor(private readonly shapes: number[][], private readonly comm: Communicator, readonly options: ReducerOptions) {
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    this.plan = assignBuckets(sizes, options.bucketCapMb);
    const extra = 1 + comm.size;
    this.buckets = this.plan.map((b, i) => comm.createBucket(b.floats + (i === this.plan.length - 1 ? extra : 0)));
    this.place = new Array(shapes.length);
    this.plan.forEach((b, bucket) => b.params.forEach((param, k) => {
      this.place[param] = { bucket, offset: b.offsets[k], size: sizes[param] };
    }));
    this.missing = this.plan.map((b) => b.params.length);
    this.seen = shapes.map(() => false);
    this.readyAt = this.plan.map(() => 0);
  }

  /** Bytes of gradients per bucket, in the order they are reduced. */
  get bucketBytes(): number[] {
    return this.plan.map((b) => b.floats * 4);
  }

  /** Times in the last bucket count from here (every rank sets it after the same barrier). */
  setClockZero(now = performance.now()): void {
    this.clockZero = now;
  }

  /**
   * Starts one backward pass of a step: `first` and `last` say which of the step's passes it is;
   * `loss` gives the step's loss summed so far, this pass included (read once the last bucket is complete).
   */
  beginPass(first: boolean, last: boolean, loss: () => number): void {
    if (first) this.backwardStart = performance.now();
    this.firstPass = first;
    this.lastPass = last;
    this.lossOfStep = loss;
    this.seen.fill(false);
    if (first) {
      this.nextToStart = 0;
      this.plan.forEach((b, i) => { this.missing[i] = b.params.length; });
    }
  }

  /** For GradientTap: adds a weight's gradient of this pass into its bucket; starts complete buckets. */
  readonly hook: GradientHook = (param, grad) => {
    if (this.seen[param]) {
      throw new Error(`trainable weight ${param} was read twice in one forward pass: the reducer cannot tell when its gradient is complete`);
    }
    this.seen[param] = true;
    const { bucket, offset, size } = this.place[param];
    const values = grad.dataSync() as Float32Array;
    const slice = this.buckets[bucket].data.subarray(offset, offset + size);
    if (this.firstPass) slice.set(values);
    else for (let i = 0; i < size; i++) slice[i] += values[i];
    if (!this.lastPass) return;
    if (--this.missing[bucket] === 0) {
      this.readyAt[bucket] = performance.now();
      if (this.options.overlap) this.startReady();
    }
  };

  /** Starts, in bucket order (the same on every rank), each complete bucket not yet started. */
  private startReady(): void {
    while (this.nextToStart < this.buckets.length && this.missing[this.nextToStart] === 0) {
      const index = this.nextToStart++;
      if (index === this.buckets.length - 1) this.fillLastBucket();
      this.buckets[index].start();
    }
  }

  private fillLastBucket(): void {
    const last = this.buckets[this.buckets.length - 1];
    const floats = this.plan[this.plan.length - 1].floats;
    last.data[floats] = this.lossOfStep();
    const ends = last.data.subarray(floats + 1, floats + 1 + this.comm.size);
    ends.fill(0);
    ends[this.comm.rank] = (performance.now() - this.clockZero) / 1000;
  }

  /**
   * Ends the step after its last backward pass: starts what is left, waits for every bucket and
   * returns the averaged gradients (which the caller disposes) and loss.
   */
  finish(): ReducedGradients {
    // A weight whose gradient never came (unused in this forward pass) gets a zero gradient.
    this.seen.forEach((seen, param) => {
      const { bucket, offset, size } = this.place[param];
      if (!seen && this.firstPass) this.buckets[bucket].data.fill(0, offset, offset + size);
    });
    const backwardEnd = performance.now();
    this.missing.forEach((missing, i) => { if (missing > 0) this.readyAt[i] = backwardEnd; });
    this.missing.fill(0);
    this.startReady();
    for (const b of this.buckets) b.wait();
    const waitEnd = performance.now();

    const scale = 1 / this.comm.size;
    const last = this.buckets[this.buckets.length - 1].data;
    const floats = this.plan[this.plan.length - 1].floats;
    const loss = last[floats] * scale;
    const ends = last.subarray(floats + 1, floats + 1 + this.comm.size);
    const slowestWait = Math.max(0, Math.max(...ends) - ends[this.comm.rank]);
    const grads = this.shapes.map((shape, param) => {
      const { bucket, offset, size } = this.place[param];
      const slice = this.buckets[bucket].data.subarray(offset, offset + size);
      if (scale !== 1) for (let i = 0; i < size; i++) slice[i] *= scale;
      return tf.tensor(slice, shape, 'float32');
    });

    const buckets = this.buckets.map((b, i) => ({ floats: this.plan[i].floats, readyAt: this.readyAt[i], startedAt: b.startedAt, finishedAt: b.finishedAt }));
    const t0 = this.backwardStart;
    this.timeline = {
      backwardEnd: backwardEnd - t0, waitEnd: waitEnd - t0,
      buckets: buckets.map((b) => ({ floats: b.floats, readyAt: b.readyAt - t0, startedAt: b.startedAt - t0, finishedAt: b.finishedAt - t0 })),
    };
    // What the communication thread did before this rank's backward pass ended was hidden under it.
    const hidden = buckets.reduce((s, b) => s + Math.max(0, Math.min(b.finishedAt, backwardEnd) - b.startedAt), 0) / 1000;
    const waited = (waitEnd - backwardEnd) / 1000;
    const skew = Math.min(waited, slowestWait);
    const exposed = waited - skew;
    return { grads, loss, communication: { communication: hidden + exposed, exposed, hidden, slowestWait: skew } };
  }
}
