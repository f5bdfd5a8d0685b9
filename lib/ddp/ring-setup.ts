/** The ring's connections: to the next rank and from the previous, over the transport that fits. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { rendezvous, type Peer } from './rendezvous';
import { type Link, type LinkModel, SharedFileLink, SimulatedLink, TcpLink } from './links';
import { CHANNEL_BYTES, MappedLink } from './mapped-link';
import { PolledTcpLink } from './polled-tcp-link';
import { SocketReader, write } from './socket-reader';
import { socketCallsAvailable } from './socket-calls';
import { Ring } from './ring';
import { sharedDir } from './shared-buffers';
import { mapShared, reserveShared, sharedMappingAvailable } from './shared-mapping';
import type { World } from './world';

/**
 * Connects to the previous rank's listener: the socket this rank reads the ring's bytes from,
 * straight into the reader's targets (onread). Resolves when the previous rank has answered,
 * which it does once it has accepted this rank, after making its files.
 */
async function connectPrev(peer: Peer, rank: number, reader: SocketReader): Promise<net.Socket> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ port: peer.port, host: peer.host, onread: reader.onread });
    s.once('error', (e) => reject(new Error(`rank ${rank} could not connect to rank ${peer.rank} at ${peer.host}:${peer.port}: ${e.message}`)));
    s.once('connect', () => {
      s.setNoDelay(true);
      const hello = Buffer.alloc(4);
      hello.writeInt32LE(rank);
      s.write(hello);
      resolve(s);
    });
  });
  reader.watch(socket);
  await reader.readInto(new Uint8Array(1));
  return socket;
}

/**
 * Takes the next rank's connection (the socket this rank sends the ring's bytes on), reads its
 * 4-byte hello, whole, and answers it.
 */
async function acceptNext(connection: Promise<net.Socket>, listener: net.Server, expected: number): Promise<net.Socket> {
  const socket = await connection;
  listener.close();
  socket.setNoDelay(true);
  const hello = await new Promise<Buffer>((resolve, reject) => {
    let bytes = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      bytes = Buffer.concat([bytes, d]);
      if (bytes.length < 4) return;
      // Stop the flow until a reader listens (the file link's acknowledgements): bytes emitted
      // with no 'data' listener are lost (a hang at the first collective).
      socket.off('data', onData);
      socket.pause();
      if (bytes.length > 4) socket.unshift(bytes.subarray(4));
      resolve(bytes);
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`rank ${expected} closed its connection before saying which rank it is`)));
  });
  const from = hello.readInt32LE(0);
  if (from !== expected) throw new Error(`expected rank ${expected} on the ring, got rank ${from}`);
  // Written whole before the ring starts: the polled TCP link then writes to the socket itself.
  await write(socket, Uint8Array.of(1)).catch((e: Error) => {
    throw new Error(`connection to rank ${expected} failed before the ring started: ${e.message} (did that worker stop?)`);
  });
  return socket;
}

/**
 * How ranks on one machine pass chunks: mapped shared memory (the default), a file in /dev/shm
 * read and written with system calls (`file`), or loopback TCP, as between machines: moved by
 * the communication thread's own system calls (`tcp`) or by Node's sockets (`tcp-node`).
 */
type Transport = 'mapped' | 'file' | 'tcp' | 'tcp-node';
const TRANSPORTS: readonly Transport[] = ['mapped', 'file', 'tcp', 'tcp-node'];

function transportFromEnv(): Transport {
  const value = process.env.FASHION_MNIST_RING_TRANSPORT ?? 'mapped';
  if (!(TRANSPORTS as readonly string[]).includes(value)) throw new Error(`FASHION_MNIST_RING_TRANSPORT is ${TRANSPORTS.join(', ')} (got '${value}')`);
  return value as Transport;
}

/**
 * Meets the other ranks (rendezvous.ts) and connects this rank to the next and the previous;
 * null for a world of one.
 */
export async function connectRing(world: World, timeoutMs: number, simulatedLink: LinkModel | null = null): Promise<Ring | null> {
  const transport = transportFromEnv();
  const { peers, job, listener, connection } = await rendezvous(world, timeoutMs);
  if (world.worldSize === 1) {
    listener.close();
    return null;
  }
  const { rank, worldSize } = world;
  const next = peers[(rank + 1) % worldSize];
  const prevRank = (rank - 1 + worldSize) % worldSize;
  // Shared memory only when every rank is on this machine, so that both ends of every link agree.
  const oneMachine = peers.every((p) => p.host === peers[0].host) && transport !== 'tcp' && transport !== 'tcp-node';
  const mapped = oneMachine && transport !== 'file' && sharedMappingAvailable();
  const file = (from: number, to: number) => path.join(sharedDir(), `fashion-mnist-${job}-${from}-to-${to}`);
  const outFd = oneMachine ? fs.openSync(file(rank, next.rank), 'w+') : -1;
  let nextSocket: net.Socket;
  let prevSocket: net.Socket;
  const fromPrev = new SocketReader(`rank ${prevRank}`);
  try {
    if (mapped) {
      try {
        reserveShared(outFd, CHANNEL_BYTES);
      } catch (e) {
        throw new Error(`the ring's channel: ${(e as Error).message} in ${sharedDir()}: ` +
          `free space there (df -h ${sharedDir()}), or set FASHION_MNIST_RING_TRANSPORT=tcp`);
      }
    }
    [nextSocket, prevSocket] = await Promise.all([acceptNext(connection, listener, next.rank), connectPrev(peers[prevRank], rank, fromPrev)]);
  } catch (e) {
    // Set-up failed: this rank's channel file goes (the next rank would have removed it).
    if (oneMachine) fs.rmSync(file(rank, next.rank), { force: true });
    listener.close();
    throw e;
  }
  let link: Link;
  if (oneMachine) {
    // The previous rank made its file before it answered; once open, the name can go.
    const inFd = fs.openSync(file(prevRank, rank), mapped ? 'r+' : 'r');
    fs.unlinkSync(file(prevRank, rank));
    if (mapped) {
      const [outgoing, incoming] = [mapShared(outFd, CHANNEL_BYTES), mapShared(inFd, CHANNEL_BYTES)];
      fs.closeSync(outFd);
      fs.closeSync(inFd);
      link = new MappedLink(outgoing, incoming, nextSocket, prevSocket, `rank ${prevRank}`, `rank ${next.rank}`);
    } else {
      link = new SharedFileLink(outFd, inFd, nextSocket, prevSocket, fromPrev, `rank ${next.rank}`);
    }
  } else if (transport !== 'tcp-node' && socketCallsAvailable() && PolledTcpLink.canTake(nextSocket, prevSocket)) {
    prevSocket.pause();
    link = new PolledTcpLink(nextSocket, prevSocket, fromPrev.detach(), `rank ${prevRank}`, `rank ${next.rank}`);
  } else {
    link = new TcpLink(nextSocket, fromPrev, `rank ${next.rank}`);
  }
  return new Ring(rank, worldSize, simulatedLink ? new SimulatedLink(link, simulatedLink) : link);
}

