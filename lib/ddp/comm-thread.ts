/**
 * The communication thread of one worker: it owns the sockets (rendezvous,
 * ring) and runs collectives on a SharedArrayBuffer while the training
 * thread waits on it synchronously (Atomics.wait). Collectives can then be
 * called from inside synchronous tfjs code (synchronized BatchNorm).
 */
import * as net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { rendezvous, type Peer } from './rendezvous';
import { Ring } from './ring';
import type { World } from './world';
import { CommState, type CommCommand, type CommShared, writeError } from './comm-protocol';

interface Init {
  world: World;
  timeoutMs: number;
  shared: CommShared;
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

async function setUp(init: Init): Promise<Ring | null> {
  const { world, timeoutMs } = init;
  const { peers, listener } = await rendezvous(world, timeoutMs);
  if (world.worldSize === 1) {
    listener.close();
    return null;
  }
  const next = peers[(world.rank + 1) % world.worldSize];
  const prevRank = (world.rank - 1 + world.worldSize) % world.worldSize;
  const [nextSocket, prevSocket] = await Promise.all([connectNext(next, world.rank), acceptPrev(listener, prevRank)]);
  return new Ring(world.rank, world.worldSize, nextSocket, prevSocket);
}

function main(): void {
  const init = workerData as Init;
  let shared = init.shared;
  const signal = (state: CommState) => {
    Atomics.store(shared.control, 0, state);
    Atomics.notify(shared.control, 0);
  };
  const fail = (e: unknown) => {
    writeError(shared, e instanceof Error ? e.message : String(e));
    signal(CommState.Failed);
  };
  setUp(init).then((ring) => {
    signal(CommState.Done);
    let queue = Promise.resolve();
    parentPort?.on('message', (command: CommCommand) => {
      queue = queue.then(async () => {
        if (command.op === 'close') {
          ring?.close();
          process.exit(0);
        }
        if (command.shared) shared = command.shared;
        const data = new Float32Array(shared.data.buffer, 0, command.length);
        await ring?.allReduce(data);
        signal(CommState.Done);
      }).catch(fail);
    });
  }, fail);
}

main();
