import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CommState, type CommCommand, type CommShared, makeShared, readError, slotMessage } from './comm-protocol';
import type { LinkModel } from './links';
import type { World } from './world';

/**
 * A buffer that an all-reduce sums while the training thread goes on (PyTorch's gradient bucket
 * with its asynchronous work handle): fill `data`, `start()`, later `wait()`.
 */
export interface AsyncBucket {
  /** The floats to sum (shared with the communication thread). */
  readonly data: Float32Array;
  /** Starts summing `data` over all ranks and returns at once. Every rank starts its buckets in the same order. */
  start(): void;
  /** Blocks until the sum is in `data`; throws a CommError when the collective failed. */
  wait(): void;
  /** Whether the last started sum has finished (without waiting). */
  readonly done: boolean;
  /** When the communication thread started and finished the last sum, in performance.now() ms. */
  readonly startedAt: number;
  readonly finishedAt: number;
}

/** Collectives over all workers: blocking ones, and buckets summed in the background. */
export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /** A bucket of `floats` floats for background all-reduces. */
  createBucket(floats: number): AsyncBucket;
  /** Sums `data` over all ranks, in place; every rank gets the same bits. */
  allReduce(data: Float32Array): void;
  /** Copies rank `root`'s `data` to every rank. */
  broadcast(data: Float32Array, root?: number): void;
  /** Returns once every rank has called it. */
  barrier(): void;
  /** Seconds spent inside collectives so far (the communication time). */
  readonly seconds: number;
  /** What carries the collectives, for the log. */
  readonly description: string;
  close(): void;
  /**
   * After an error: ends the job where the engine must (MPI: every rank, through MPI_Abort, after
   * `message` is printed); elsewhere the same as close(), the peers noticing the closed sockets.
   */
  abort(message: string): void;
}

/** The engine under the collectives: the project's ring (the default), or the MPI the job was started with. */
export type DistBackend = 'ring' | 'mpi';

export class CommError extends Error {
  override name = 'CommError';
}

/** A world of one: the sum is the bucket itself, done as soon as it starts. */
class SoloBucket implements AsyncBucket {
  readonly data: Float32Array;
  readonly done = true;
  startedAt = 0;
  finishedAt = 0;

  constructor(floats: number) {
    this.data = new Float32Array(floats);
  }

  start(): void {
    this.startedAt = this.finishedAt = performance.now();
  }

  wait(): void {}
}

/** One process, nothing to exchange. */
export class SoloCommunicator implements Communicator {
  readonly rank = 0;
  readonly size = 1;
  readonly seconds = 0;
  readonly description = 'none (one process)';
  createBucket(floats: number): AsyncBucket {
    return new SoloBucket(floats);
  }
  allReduce(): void {}
  broadcast(): void {}
  barrier(): void {}
  close(): void {}
  abort(): void {}
}

/**
 * Talks to the other ranks through a communication thread (comm-thread.ts)
 * that runs the TCP rendezvous and the ring all-reduce, or MPI. The training thread
 * copies data into shared memory and blocks on Atomics.wait until the
 * collective is done, so that collectives also work inside synchronous
 * kernels. Blocking here costs nothing: the thread has nothing else to do.
 */
export class ThreadCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly description: string;
  private shared: CommShared;
  private readonly thread: Worker;
  private spent = 0;
  private slots = 0;
  private closed = false;
  /** Slots live in shared buffers (the ring over mapped memory), not on SharedArrayBuffers. */
  private sharedBuffers = false;
  /** Slot 0's memory changed since the thread last heard of it. */
  private slot0Moved = false;

  /**
   * Meets the other ranks (up to `rendezvousMs`); later collectives give up
   * after `operationMs` (a peer that died closes its sockets long before).
   */
  constructor(
    world: World, rendezvousMs: number, private readonly operationMs: number, simulatedLink: LinkModel | null = null,
    private readonly backend: DistBackend = 'ring',
  ) {
    this.rank = world.rank;
    this.size = world.worldSize;
    this.shared = makeShared(1 << 16);
    this.thread = new Worker(path.join(__dirname, 'comm-thread.js'), {
      workerData: { world, timeoutMs: rendezvousMs, shared: this.shared, timeOrigin: performance.timeOrigin, simulatedLink, backend },
    });
    this.thread.unref();
    // A little longer than the thread's own deadline, so that its message (who is missing) wins.
    this.await(backend === 'mpi' ? 'MPI_Init_thread' : 'rendezvous', rendezvousMs + 5000);
    if (backend === 'mpi') {
      // The thread leaves the shape MPI gave in slot 0 and the library's name in its text.
      const [, , localRank, localSize] = this.shared.data;
      const library = readError(this.shared).split(',')[0];
      this.description = `${library}: MPI_Iallreduce on the communication thread (local rank ${localRank} of ${localSize})`;
    } else {
      // The thread says in slot 0 what carries the ring, and whether the next rank reads shared buffers in place.
      this.sharedBuffers = this.shared.data[0] === 1;
      this.description = `the project's ring (${world.worldSize} ranks, ${readError(this.shared)})`;
      if (this.sharedBuffers) {
        this.shared = makeShared(1 << 16, true);
        this.slot0Moved = true;
      }
    }
  }

  get seconds(): number {
    return this.spent;
  }

  /** Blocks until the slot's collective is done; throws a CommError when it failed or timed out. */
  waitFor(shared: CommShared, what: string, timeoutMs = this.operationMs): void {
    const control = shared.control;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      Atomics.wait(control, 0, CommState.Pending, 200);
      const state = Atomics.load(control, 0);
      if (state === CommState.Done) return;
      if (state === CommState.Failed) throw new CommError(`rank ${this.rank}: ${what} failed: ${readError(shared)}`);
      if (Date.now() > deadline) {
        throw new CommError(`rank ${this.rank}: ${what} timed out after ${timeoutMs / 1000} s waiting for the other workers`);
      }
    }
  }

  private await(what: string, timeoutMs = this.operationMs): void {
    this.waitFor(this.shared, what, timeoutMs);
  }

  /** Posts a collective on a slot to the communication thread (which runs them in order). */
  post(command: CommCommand): void {
    this.thread.postMessage(command);
  }

  createBucket(floats: number): AsyncBucket {
    return new ThreadBucket(this, ++this.slots, makeShared(floats, this.sharedBuffers));
  }

  allReduce(data: Float32Array): void {
    const started = performance.now();
    if (data.length > this.shared.data.length) {
      this.shared = makeShared(Math.max(data.length, this.shared.data.length * 2), this.sharedBuffers);
      this.slot0Moved = true;
    }
    this.shared.data.set(data);
    Atomics.store(this.shared.control, 0, CommState.Pending);
    const command: CommCommand = { op: 'allreduce', slot: 0, length: data.length, shared: this.slot0Moved ? slotMessage(this.shared) : undefined };
    this.slot0Moved = false;
    this.thread.postMessage(command);
    this.await('all-reduce');
    data.set(this.shared.data.subarray(0, data.length));
    this.spent += (performance.now() - started) / 1000;
  }

  broadcast(data: Float32Array, root = 0): void {
    if (this.rank !== root) data.fill(0);
    this.allReduce(data);
  }

  barrier(): void {
    this.allReduce(new Float32Array(1));
  }

  abort(message: string): void {
    if (this.backend !== 'mpi') {
      this.close();
      return;
    }
    this.closed = true;
    console.error(`rank ${this.rank}: ${message}; aborting the MPI job (MPI_Abort)`);
    this.thread.postMessage({ op: 'abort', code: 1 } satisfies CommCommand);
    // MPI_Abort ends this process too; should it not, stop here anyway.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
    process.exit(1);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.shared.control, 0, CommState.Pending);
    this.thread.postMessage({ op: 'close' } satisfies CommCommand);
    // MPI must be finalised before the process exits; the ring's sockets need no wait.
    if (this.backend === 'mpi') this.await('MPI_Finalize', 30_000);
  }
}

/** A bucket of the thread communicator: its own slot of shared memory, summed by the communication thread. */
class ThreadBucket implements AsyncBucket {
  readonly data: Float32Array;
  private registered = false;

  constructor(private readonly comm: ThreadCommunicator, private readonly slot: number, private readonly shared: CommShared) {
    this.data = shared.data;
    Atomics.store(shared.control, 0, CommState.Done);
  }

  start(): void {
    Atomics.store(this.shared.control, 0, CommState.Pending);
    this.comm.post({ op: 'allreduce', slot: this.slot, length: this.data.length, shared: this.registered ? undefined : slotMessage(this.shared) });
    this.registered = true;
  }

  wait(): void {
    this.comm.waitFor(this.shared, `the all-reduce of gradient bucket ${this.slot}`);
  }

  get done(): boolean {
    return Atomics.load(this.shared.control, 0) === CommState.Done;
  }

  get startedAt(): number {
    return this.shared.times[0];
  }

  get finishedAt(): number {
    return this.shared.times[1];
  }
}

function secondsVar(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const seconds = Number(env[name] ?? fallback);
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : fallback) * 1000;
}

/**
 * The communicator for this process's place in the job. Waits set by
 * FASHION_MNIST_RENDEZVOUS_TIMEOUT (default 120 s) and
 * FASHION_MNIST_COLLECTIVE_TIMEOUT (default 1800 s), in seconds.
 */
export function openCommunicator(
  world: World, env: Record<string, string | undefined> = process.env, simulatedLink: LinkModel | null = null, backend: DistBackend = 'ring',
): Communicator {
  if (world.worldSize === 1) return new SoloCommunicator();
  return new ThreadCommunicator(
    world, secondsVar(env, 'FASHION_MNIST_RENDEZVOUS_TIMEOUT', 120), secondsVar(env, 'FASHION_MNIST_COLLECTIVE_TIMEOUT', 1800), simulatedLink, backend,
  );
}
