/**
 * The communication thread of one worker: it owns the sockets (rendezvous,
 * ring), or MPI (--dist-backend mpi), and runs collectives on
 * SharedArrayBuffers (slots) while the training thread either waits on one
 * synchronously (Atomics.wait), so that collectives can be called from inside
 * synchronous tfjs code (synchronized BatchNorm), or goes on with the
 * backward pass (the reducer's gradient buckets).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LinkModel } from './links';
import type { Ring } from './ring';
import { connectRing } from './ring-setup';
import type { World } from './world';
import { CommState, type CommCommand, type CommShared, type SlotMessage, writeError } from './comm-protocol';
import { openSharedBuffer } from './shared-buffers';
import { adoptAddable } from './simd-add';
import { Mpi, type MpiRequest } from './mpi';

interface Init {
  world: World;
  timeoutMs: number;
  /** Slot 0. */
  shared: CommShared;
  /** The training thread's performance.timeOrigin. */
  timeOrigin: number;
  /** Slow every message down to this link's speed (lessons: a simulated link). */
  simulatedLink: LinkModel | null;
  /** The project's ring over sockets and shared memory, or the MPI library the process was launched with. */
  backend: 'ring' | 'mpi';
}

/** The slot a message describes, its shared buffer (if it lies in one) mapped here, its addable memory (if it lies in one) adopted. */
function slotFromMessage(message: SlotMessage): CommShared {
  if (message.data == null) return { ...message, data: openSharedBuffer(process.pid, message.bufferId) };
  return { ...message, data: message.memory == null ? message.data : adoptAddable(message.memory, message.data) };
}

interface Channel {
  signal(shared: CommShared, state: CommState): void;
  fail(shared: CommShared, e: unknown): void;
  now(): number;
  slots: Map<number, CommShared>;
}

/** The ring: one collective at a time, in the order the training thread posted them. */
function serveRing(ring: Ring | null, channel: Channel): void {
  // Every rank posts the same sequence, so the ring's messages pair up.
  let queue = Promise.resolve();
  parentPort?.on('message', (command: CommCommand) => {
    if (command.op === 'abort') return;
    if (command.op === 'close') {
      queue = queue.then(() => {
        ring?.close();
        process.exit(0);
      });
      return;
    }
    if (command.shared) channel.slots.set(command.slot, slotFromMessage(command.shared));
    const shared = channel.slots.get(command.slot) as CommShared;
    queue = queue.then(async () => {
      shared.times[0] = channel.now();
      await ring?.allReduce(shared.data.subarray(0, command.length));
      shared.times[1] = channel.now();
      channel.signal(shared, CommState.Done);
    }).catch((e: unknown) => channel.fail(shared, e));
  });
}

/**
 * While collectives are in flight the thread calls MPI_Test in rounds: back to back for the first
 * MPI_SPIN_MS of a wait (a small all-reduce needs several rounds of progress), then with naps of
 * MPI_NAP_MS between rounds, so that a long wait does not take a core from the training thread.
 */
const MPI_SPIN_MS = 0.3;
const MPI_NAP_MS = 0.05;

/**
 * MPI: each gradient bucket starts (MPI_Iallreduce) the moment it is posted, in posting order, so
 * that several are in flight at once; MPI_Test, called in rounds while any is, lets Open MPI make
 * progress (it has no progress thread of its own) and finds the finished ones. The blocking
 * collectives of slot 0 run as MPI_Allreduce, in the same order.
 */
function serveMpi(mpi: Mpi, channel: Channel): void {
  const inFlight: { request: MpiRequest; shared: CommShared }[] = [];
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let closing = false;
  let polling = false;
  let waitingSince = 0;
  const testAll = () => {
    for (let i = 0; i < inFlight.length;) {
      const { request, shared } = inFlight[i];
      let finished = false;
      try {
        finished = mpi.test(request);
      } catch (e) {
        inFlight.splice(i, 1);
        channel.fail(shared, e);
        continue;
      }
      if (finished) {
        shared.times[1] = channel.now();
        inFlight.splice(i, 1);
        channel.signal(shared, CommState.Done);
      } else {
        i++;
      }
    }
  };
  const poll = () => {
    const before = inFlight.length;
    testAll();
    while (inFlight.length > 0 && inFlight.length === before && performance.now() - waitingSince < MPI_SPIN_MS) testAll();
    if (inFlight.length !== before) waitingSince = performance.now();
    if (inFlight.length > 0) {
      if (performance.now() - waitingSince >= MPI_SPIN_MS) Atomics.wait(nap, 0, 0, MPI_NAP_MS);
      setImmediate(poll);
      return;
    }
    polling = false;
    if (closing) {
      // mpirun counts a rank that exits without MPI_Finalize as failed: the training thread waits for this.
      mpi.finalize();
      channel.signal(channel.slots.get(0) as CommShared, CommState.Done);
      process.exit(0);
    }
  };
  const ensurePolling = () => {
    waitingSince = performance.now();
    if (polling) return;
    polling = true;
    setImmediate(poll);
  };
  parentPort?.on('message', (command: CommCommand) => {
    if (command.op === 'abort') mpi.abort(command.code);
    if (command.op === 'close') {
      closing = true;
      ensurePolling();
      return;
    }
    if (command.shared) channel.slots.set(command.slot, slotFromMessage(command.shared));
    const shared = channel.slots.get(command.slot) as CommShared;
    const data = shared.data.subarray(0, command.length);
    try {
      shared.times[0] = channel.now();
      if (command.slot === 0) {
        // A blocking collective (the training thread waits for it, nothing to overlap): MPI_Allreduce,
        // which Open MPI runs 2-2.5x faster than its MPI_Iallreduce; it also progresses the buckets in flight.
        mpi.allReduce(data);
        shared.times[1] = channel.now();
        channel.signal(shared, CommState.Done);
        return;
      }
      inFlight.push({ request: mpi.startAllReduce(data), shared });
      ensurePolling();
    } catch (e) {
      channel.fail(shared, e);
    }
  });
}

/** MPI, initialised here, checked against the ranks the launcher's variables gave. */
function setUpMpi(world: World): Mpi {
  const mpi = new Mpi();
  const { rank, size } = mpi.shape;
  if (rank !== world.rank || size !== world.worldSize) {
    throw new Error(`MPI says this process is rank ${rank} of ${size}, the launcher's variables say ${world.rank} of ${world.worldSize}: ` +
      'start the job with mpirun (or srun --mpi=pmix) alone');
  }
  return mpi;
}

function main(): void {
  const init = workerData as Init;
  // performance.now() here counts from this thread's start: times are given on the training thread's clock.
  const clockOffset = performance.timeOrigin - init.timeOrigin;
  const channel: Channel = {
    slots: new Map<number, CommShared>([[0, slotFromMessage(init.shared)]]),
    now: () => performance.now() + clockOffset,
    signal: (shared, state) => {
      Atomics.store(shared.control, 0, state);
      Atomics.notify(shared.control, 0);
    },
    fail: (shared, e) => {
      writeError(shared, e instanceof Error ? e.message : String(e));
      channel.signal(shared, CommState.Failed);
    },
  };
  if (init.backend === 'mpi') {
    let mpi: Mpi;
    try {
      mpi = setUpMpi(init.world);
    } catch (e) {
      channel.fail(init.shared, e);
      return;
    }
    // The shape MPI gives, for the training thread's log: rank, size, local rank, local size.
    init.shared.data.set([mpi.shape.rank, mpi.shape.size, mpi.shape.localRank, mpi.shape.localSize]);
    writeError(init.shared, mpi.version);
    channel.signal(init.shared, CommState.Done);
    serveMpi(mpi, channel);
    return;
  }
  connectRing(init.world, init.timeoutMs, init.simulatedLink).then((ring) => {
    init.shared.data[0] = ring?.readsSharedBuffers === true ? 1 : 0;
    writeError(init.shared, ring?.description ?? 'one rank');
    channel.signal(init.shared, CommState.Done);
    serveRing(ring, channel);
  }, (e: unknown) => channel.fail(init.shared, e));
}

main();
