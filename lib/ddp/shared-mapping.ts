/**
 * Memory shared between processes of one machine: a file in /dev/shm mapped into each process
 * (mmap, MAP_SHARED, called through koffi), seen from JavaScript as an ArrayBuffer. Stores one
 * process makes are loads the other sees, with no system call in between. A process that has
 * nothing to do until the other stores sleeps in the kernel on that word (a futex), which the
 * other wakes: waiting takes no core from the threads that train.
 */
import { libcLoader } from './libc';

const PROT_READ_WRITE = 0x1 | 0x2;
const MAP_SHARED = 0x1;
const MAP_FAILED = 0xffffffffffffffffn;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Mmap = (addr: null, length: number, prot: number, flags: number, fd: number, offset: number) => unknown;
type Syscall = (number: number, addr: number, op: number, value: number, timeout: Buffer | null, addr2: number, value3: number) => number;

interface Libc {
  koffi: any;
  mmap: Mmap;
  syscall: Syscall;
  fallocate: (fd: number, offset: number, length: number) => number;
}

// Without koffi or glibc the ring falls back to file reads and writes.
const load = libcLoader<Libc>((libc, koffi) => ({
  koffi,
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)') as Mmap,
  // syscall(2) is variadic; with integer arguments only, the fixed prototype passes them alike on Linux's ABIs.
  syscall: libc.func('long syscall(long number, uintptr_t addr, int op, int value, void *timeout, uintptr_t addr2, int value3)') as Syscall,
  fallocate: libc.func('int posix_fallocate(int fd, int64_t offset, int64_t length)') as Libc['fallocate'],
}));

/** Whether files can be mapped here (koffi loads and libc has mmap). */
export function sharedMappingAvailable(): boolean {
  return load() != null;
}

/**
 * Makes the file `fd` `bytes` long with its pages taken now: tmpfs grants ftruncate's length
 * lazily, and a store into a page it then has no room for kills the process (SIGBUS); this
 * fails instead, with ENOSPC, when /dev/shm is too small.
 */
export function reserveShared(fd: number, bytes: number): void {
  const lib = load();
  if (lib == null) throw new Error('shared mapping needs the npm package koffi (npm ci installs it)');
  const code = lib.fallocate(fd, 0, bytes);
  if (code !== 0) throw new Error(`no room for ${bytes} bytes of shared memory (${code === 28 ? 'ENOSPC' : `errno ${code}`})`);
}

/** Memory mapped from a file: the bytes, and their address (for futexes). */
export interface SharedMemory {
  buffer: ArrayBuffer;
  address: number;
}

/**
 * Maps `bytes` of the open file `fd` (already that long) into this process. The mapping lives
 * until the process exits: the ArrayBuffer must never outlive it, so it is never unmapped.
 */
export function mapShared(fd: number, bytes: number): SharedMemory {
  const lib = load();
  if (lib == null) throw new Error('shared mapping needs the npm package koffi (npm ci installs it)');
  const pointer = lib.mmap(null, bytes, PROT_READ_WRITE, MAP_SHARED, fd, 0);
  if (pointer == null || lib.koffi.address(pointer) === MAP_FAILED) throw new Error(`mmap of ${bytes} bytes failed (errno ${lib.koffi.errno()})`);
  // User-space addresses on Linux fit in 47 bits, well inside a double's exact integers.
  return { buffer: lib.koffi.view(pointer, bytes) as ArrayBuffer, address: Number(lib.koffi.address(pointer)) };
}

const SYS_FUTEX = process.arch === 'arm64' ? 98 : 202;
const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const timeout = Buffer.alloc(16);

/**
 * Sleeps while the 32-bit word at `address` holds `expected`, for at most `ms` (returns at once
 * when it holds something else). Not FUTEX_PRIVATE: the word is shared between processes.
 */
export function futexWait(address: number, expected: number, ms: number): void {
  timeout.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  timeout.writeBigInt64LE(BigInt(Math.round((ms % 1000) * 1e6)), 8);
  (load() as Libc).syscall(SYS_FUTEX, address, FUTEX_WAIT, expected, timeout, 0, 0);
}

/** Wakes the process sleeping on the word at `address`, if one is. */
export function futexWake(address: number): void {
  (load() as Libc).syscall(SYS_FUTEX, address, FUTEX_WAKE, 1, null, 0, 0);
}
