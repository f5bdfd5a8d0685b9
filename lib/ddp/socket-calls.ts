/**
 * send(2), recv(2) and poll(2) on a socket's file descriptor, called through koffi, for a thread
 * that moves a message through a TCP connection itself instead of through Node's event loop
 * (polled-tcp-link.ts). Calls never block, except poll for its timeout.
 */
import { constants } from 'node:os';
import { libcLoader } from './libc';

const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const EAGAIN = 11;
const EINTR = 4;
/** Said when a failed call leaves errno 0, so that the failure is not taken for "try again". */
const EIO = 5;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;

/* eslint-disable @typescript-eslint/no-explicit-any */
interface Libc {
  koffi: any;
  send: (fd: number, bytes: Uint8Array, length: number, flags: number) => number;
  recv: (fd: number, target: Uint8Array, length: number, flags: number) => number;
  poll: (fds: Int16Array, count: number, timeoutMs: number) => number;
  dup: (fd: number) => number;
  close: (fd: number) => number;
}

// Without koffi or glibc the ring reads sockets through Node.
const load = libcLoader<Libc>((libc, koffi) => ({
  koffi,
  send: libc.func('long send(int fd, const void *bytes, size_t length, int flags)'),
  recv: libc.func('long recv(int fd, void *target, size_t length, int flags)'),
  poll: libc.func('int poll(void *fds, unsigned long count, int timeout)'),
  dup: libc.func('int dup(int fd)'),
  close: libc.func('int close(int fd)'),
}));

/** Whether sockets can be read and written here with system calls (koffi loads, libc has them). */
export function socketCallsAvailable(): boolean {
  return load() != null;
}

/** Bytes the kernel took from `bytes` (0 when the socket's buffer is full), or -errno. */
export function sendSome(fd: number, bytes: Uint8Array): number {
  const lib = load() as Libc;
  const n = lib.send(fd, bytes, bytes.length, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return n;
  const errno = lib.koffi.errno() || EIO;
  return errno === EAGAIN || errno === EINTR ? 0 : -errno;
}

/** Bytes that arrived into `target` (0: none yet), -1 when the peer closed, or -errno (errno > 1 then: EPERM is no socket's). */
export function receiveSome(fd: number, target: Uint8Array): number {
  const lib = load() as Libc;
  const n = lib.recv(fd, target, target.length, MSG_DONTWAIT);
  if (n > 0) return n;
  if (n === 0) return -1;
  const errno = lib.koffi.errno() || EIO;
  return errno === EAGAIN || errno === EINTR ? 0 : -errno;
}

/**
 * A file descriptor of this thread's own for the socket behind `fd`: it stays valid when Node
 * closes its own (a socket it ends on the peer's EOF), so that the number cannot come to name
 * another file; -1 when dup(2) fails.
 */
export function ownDescriptor(fd: number): number {
  return (load() as Libc).dup(fd);
}

export function closeDescriptor(fd: number): void {
  (load() as Libc).close(fd);
}

/** poll(2)'s entries, struct pollfd { int fd; short events; short revents; }, seen as shorts and as ints. */
const entries = new Int16Array(8);
const words = new Int32Array(entries.buffer);

/** Waits at most `ms` until one of the sockets is ready for what it asks (POLLIN, POLLOUT). */
export function waitReady(sockets: ReadonlyArray<[fd: number, events: number]>, ms: number): void {
  sockets.forEach(([fd, events], i) => {
    words[2 * i] = fd;
    entries[4 * i + 2] = events;
    entries[4 * i + 3] = 0;
  });
  (load() as Libc).poll(entries, sockets.length, Math.ceil(ms));
}

/** ECONNRESET for 104 (Linux), or "errno N". */
export function errnoName(errno: number): string {
  return Object.entries(constants.errno).find(([, value]) => value === errno)?.[0] ?? `errno ${errno}`;
}
