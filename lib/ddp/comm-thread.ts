/**
 * The communication thread of one worker: it owns the sockets (rendezvous,
 * ring) and runs collectives on SharedArrayBuffers (slots) while the training
 * thread either waits on one synchronously (Atomics.wait), so that collectives
 * can be called from inside synchronous tfjs code (synchronized BatchNorm), or
 * goes on with the backward pass (the reducer's gradient buckets).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { rendezvous, type Peer } from './rendezvous';
import { type Link, type LinkModel, SharedFileLink, SimulatedLink, TcpLink } from './links';
import { Ring } from './ring';
import type { World } from './world';
import { CommState, type CommCommand, type CommShared, writeError } from './comm-protocol';

interface Init {
  world: World;
  timeoutMs: number;
  /** Slot 0. */
  shared: CommShared;
  /** The training thread's performance.timeOrigin. */
  timeOrigin: number;
  /** Slow every message down to this link's speed (lessons: a simulated link). */
  simulatedLink: LinkModel | null;
}

function connectNext(peer: Peer, rank: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(peer.port, peer.host);
    socket.once('error', (e) => reject(new Error(`rank ${rank} could not connect to rank ${peer.rank} at ${peer.host}:${peer.port}: ${e.message}`)));
    socket.once('connect', () => {
      socket.setNoDelay(true);
      const hello = Buffer.alloc(4);
      hello.writeInt32LE(rank);
      socket.write(hello);
      resolve(socket);
    });
  });
}

function acceptPrev(listener: net.Server, expected: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    listener.once('connection', (socket) => {
      socket.setNoDelay(true);
      socket.once('data', (d: Buffer) => {
        // Stop the flow until the link's reader listens: the previous rank may already be sending,
        // and bytes emitted with no 'data' listener are lost (a hang at the first collective).
        socket.pause();
        const from = d.readInt32LE(0);
        if (from !== expected) {
          reject(new Error(`expected rank ${expected} on the ring, got rank ${from}`));
          return;
        }
        if (d.length > 4) socket.unshift(d.subarray(4));
        listener.close();
        resolve(socket);
      });
    });
  });
}

/** Where ranks on one machine put their shared-memory files (tmpfs when there is one). */
function sharedDir(): string {
  return fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
}

async function setUp(init: Init): Promise<Ring | null> {
  const { world, timeoutMs } = init;
  const { peers, job, listener } = await rendezvous(world, timeoutMs);
  if (world.worldSize === 1) {
    listener.close();
    return null;
  }
  const { rank, worldSize } = world;
  const next = peers[(rank + 1) % worldSize];
  const prevRank = (rank - 1 + worldSize) % worldSize;
  // Shared memory only when every rank is on this machine, so that both ends of every link agree.
  const oneMachine = peers.every((p) => p.host === peers[0].host) && process.env.FASHION_MNIST_RING_TRANSPORT !== 'tcp';
  const file = (from: number, to: number) => path.join(sharedDir(), `fashion-mnist-${job}-${from}-to-${to}`);
  const outFd = oneMachine ? fs.openSync(file(rank, next.rank), 'w+') : -1;
  const [nextSocket, prevSocket] = await Promise.all([connectNext(next, rank), acceptPrev(listener, prevRank)]);
  let link: Link;
  if (oneMachine) {
    // The previous rank created its file before connecting; once open, the name can go.
    const inFd = fs.openSync(file(prevRank, rank), 'r');
    fs.unlinkSync(file(prevRank, rank));
    link = new SharedFileLink(outFd, inFd, nextSocket, prevSocket, `rank ${prevRank}`, `rank ${next.rank}`);
  } else {
    link = new TcpLink(nextSocket, prevSocket, `rank ${prevRank}`);
  }
  return new Ring(rank, worldSize, init.simulatedLink ? new SimulatedLink(link, init.simulatedLink) : link);
}

function main(): void {
  const init = workerData as Init;
  const slots = new Map<number, CommShared>([[0, init.shared]]);
  // performance.now() here counts from this thread's start: times are given on the training thread's clock.
  const clockOffset = performance.timeOrigin - init.timeOrigin;
  const now = () => performance.now() + clockOffset;
  const signal = (shared: CommShared, state: CommState) => {
    Atomics.store(shared.control, 0, state);
    Atomics.notify(shared.control, 0);
  };
  const fail = (shared: CommShared, e: unknown) => {
    writeError(shared, e instanceof Error ? e.message : String(e));
    signal(shared, CommState.Failed);
  };
  setUp(init).then((ring) => {
    signal(init.shared, CommState.Done);
    // One collective at a time, in the order the training thread posted them: every rank posts
    // the same sequence, so the ring's messages pair up.
    let queue = Promise.resolve();
    parentPort?.on('message', (command: CommCommand) => {
      if (command.op === 'close') {
        queue = queue.then(() => {
          ring?.close();
          process.exit(0);
        });
        return;
      }
      if (command.shared) slots.set(command.slot, command.shared);
      const shared = slots.get(command.slot) as CommShared;
      queue = queue.then(async () => {
        shared.times[0] = now();
        await ring?.allReduce(new Float32Array(shared.data.buffer, 0, command.length));
        shared.times[1] = now();
        signal(shared, CommState.Done);
      }).catch((e: unknown) => fail(shared, e));
    });
  }, (e: unknown) => fail(init.shared, e));
}

main();
