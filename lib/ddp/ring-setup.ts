/** The ring's connections: to the next rank and from the previous, over the transport that fits. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { rendezvous, type Peer } from './rendezvous';
import { type Link, type LinkModel, SharedFileLink, SimulatedLink, TcpLink } from './links';
import { CHANNEL_BYTES, MappedLink } from './mapped-link';
import { Ring } from './ring';
import { sharedDir } from './shared-buffers';
import { mapShared, sharedMappingAvailable } from './shared-mapping';
import type { World } from './world';

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


/**
 * How ranks on one machine pass chunks: mapped shared memory (the default), a file in /dev/shm
 * read and written with system calls (`file`), or loopback TCP (`tcp`), as between machines.
 */
type Transport = 'mapped' | 'file' | 'tcp';

function transportFromEnv(): Transport {
  const value = process.env.FASHION_MNIST_RING_TRANSPORT ?? 'mapped';
  if (value !== 'mapped' && value !== 'file' && value !== 'tcp') throw new Error(`FASHION_MNIST_RING_TRANSPORT is mapped, file or tcp (got '${value}')`);
  return value;
}

/**
 * Meets the other ranks (rendezvous.ts) and connects this rank to the next and the previous;
 * null for a world of one.
 */
export async function connectRing(world: World, timeoutMs: number, simulatedLink: LinkModel | null = null): Promise<Ring | null> {
  const transport = transportFromEnv();
  const { peers, job, listener } = await rendezvous(world, timeoutMs);
  if (world.worldSize === 1) {
    listener.close();
    return null;
  }
  const { rank, worldSize } = world;
  const next = peers[(rank + 1) % worldSize];
  const prevRank = (rank - 1 + worldSize) % worldSize;
  // Shared memory only when every rank is on this machine, so that both ends of every link agree.
  const oneMachine = peers.every((p) => p.host === peers[0].host) && transport !== 'tcp';
  const mapped = oneMachine && transport !== 'file' && sharedMappingAvailable();
  const file = (from: number, to: number) => path.join(sharedDir(), `fashion-mnist-${job}-${from}-to-${to}`);
  const outFd = oneMachine ? fs.openSync(file(rank, next.rank), 'w+') : -1;
  if (mapped) fs.ftruncateSync(outFd, CHANNEL_BYTES);
  const [nextSocket, prevSocket] = await Promise.all([connectNext(next, rank), acceptPrev(listener, prevRank)]);
  let link: Link;
  if (oneMachine) {
    // The previous rank created its file before connecting; once open, the name can go.
    const inFd = fs.openSync(file(prevRank, rank), mapped ? 'r+' : 'r');
    fs.unlinkSync(file(prevRank, rank));
    if (mapped) {
      const [outgoing, incoming] = [mapShared(outFd, CHANNEL_BYTES), mapShared(inFd, CHANNEL_BYTES)];
      fs.closeSync(outFd);
      fs.closeSync(inFd);
      link = new MappedLink(outgoing, incoming, nextSocket, prevSocket, `rank ${prevRank}`, `rank ${next.rank}`);
    } else {
      link = new SharedFileLink(outFd, inFd, nextSocket, prevSocket, `rank ${prevRank}`, `rank ${next.rank}`);
    }
  } else {
    link = new TcpLink(nextSocket, prevSocket, `rank ${prevRank}`);
  }
  return new Ring(rank, worldSize, simulatedLink ? new SimulatedLink(link, simulatedLink) : link);
}

