import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { isLoopback, type World } from './world';

export interface Peer {
  rank: number;
  host: string;
  port: number;
}

export class RendezvousError extends Error {
  override name = 'RendezvousError';
}

function readLine(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('utf8');
      const end = text.indexOf('\n');
      if (end >= 0) {
        socket.off('data', onData);
        resolve(text.slice(0, end));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before answering')));
  });
}

/**
 * Rank 0's store: waits for every rank's ring address, then sends the whole
 * table, and a name for the job, to all. Listens on MASTER_ADDR:MASTER_PORT only.
 */
export function hostStore(world: World, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const joined = new Map<number, { peer: Peer; socket: net.Socket }>();
    const job = randomBytes(6).toString('hex');
    const server = net.createServer();
    const finish = (error: Error | null) => {
      clearTimeout(timer);
      server.close();
      for (const { socket } of joined.values()) {
        socket.end(JSON.stringify(error ? { error: error.message } : { peers: [...joined.values()].map((j) => j.peer), job }) + '\n');
      }
      if (error) reject(error); else resolve();
    };
    const timer = setTimeout(() => {
      const missing = Array.from({ length: world.worldSize }, (_, r) => r).filter((r) => !joined.has(r));
      finish(new RendezvousError(`rendezvous timed out after ${timeoutMs / 1000} s at ${world.masterAddr}:${world.masterPort}: ` +
        `rank(s) ${missing.join(', ')} of ${world.worldSize} never arrived. Start every worker (same WORLD_SIZE, MASTER_ADDR, MASTER_PORT), ` +
        'or raise the timeout with FASHION_MNIST_RENDEZVOUS_TIMEOUT (seconds)'));
    }, timeoutMs);
    server.on('connection', (socket) => {
      readLine(socket).then((line) => {
        const hello = JSON.parse(line) as Peer & { worldSize: number };
        if (hello.worldSize !== world.worldSize) {
          finish(new RendezvousError(`rank ${hello.rank} says WORLD_SIZE=${hello.worldSize}, rank 0 says ${world.worldSize}: start all workers with the same world size`));
          return;
        }
        if (joined.has(hello.rank)) {
          finish(new RendezvousError(`two workers claim rank ${hello.rank}: give each worker its own RANK`));
          return;
        }
        joined.set(hello.rank, { peer: { rank: hello.rank, host: hello.host, port: hello.port }, socket });
        if (joined.size === world.worldSize) finish(null);
      }, () => undefined);
    });
    server.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'EADDRINUSE') {
        reject(new RendezvousError(`MASTER_PORT ${world.masterPort} is already in use on ${world.masterAddr}: choose another port (--master-port or MASTER_PORT), or stop what holds it`));
      } else if (e.code === 'EADDRNOTAVAIL') {
        reject(new RendezvousError(`MASTER_ADDR ${world.masterAddr} is not an address of this machine: rank 0 must run on the MASTER_ADDR host`));
      } else {
        reject(new RendezvousError(`rank 0 cannot listen on ${world.masterAddr}:${world.masterPort}: ${e.message}`));
      }
    });
    server.listen(world.masterPort, world.masterAddr);
  });
}

/** Connects to rank 0's store, retrying while it starts, until the deadline. */
async function connectStore(world: World, deadline: number): Promise<net.Socket> {
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(world.masterPort, world.masterAddr);
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) {
        throw new RendezvousError(`rank ${world.rank} could not reach rank 0 at ${world.masterAddr}:${world.masterPort} ` +
          `(${(e as Error).message}): is rank 0 running, and are MASTER_ADDR and MASTER_PORT right?`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Opens this rank's ring listener and swaps addresses with every other rank
 * through rank 0's store. On one machine everything binds 127.0.0.1.
 */
export async function rendezvous(world: World, timeoutMs: number): Promise<{ peers: Peer[]; job: string; listener: net.Server; connection: Promise<net.Socket> }> {
  const deadline = Date.now() + timeoutMs;
  const store = world.rank === 0 ? hostStore(world, timeoutMs) : null;
  store?.catch(() => undefined);
  const socket = await Promise.race([connectStore(world, deadline), ...(store ? [store.then(() => never())] : [])]);
  const host = isLoopback(world.masterAddr) ? '127.0.0.1' : socket.localAddress ?? '0.0.0.0';
  const listener = net.createServer();
  // Caught from the start: the next rank may connect before this rank has read rank 0's answer.
  const connection = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, host, () => resolve());
  });
  const port = (listener.address() as net.AddressInfo).port;
  socket.write(JSON.stringify({ rank: world.rank, worldSize: world.worldSize, host, port }) + '\n');
  const answer = readLine(socket);
  if (store) await store;
  let reply: { peers?: Peer[]; job?: string; error?: string };
  try {
    reply = JSON.parse(await answer) as typeof reply;
  } catch (e) {
    listener.close();
    throw new RendezvousError(`rank ${world.rank}: rank 0's store at ${world.masterAddr}:${world.masterPort} went away during rendezvous (${(e as Error).message})`);
  }
  socket.destroy();
  if (reply.error != null || reply.peers == null) {
    listener.close();
    throw new RendezvousError(reply.error ?? 'rendezvous failed');
  }
  return { peers: reply.peers.sort((a, b) => a.rank - b.rank), job: reply.job ?? 'job', listener, connection };
}

function never(): Promise<never> {
  return new Promise(() => undefined);
}
