"""What loopback TCP itself gives two pinned processes: each sends N bytes to the other while it
receives N from it, with non-blocking send and recv in one loop (no poll: it retries at once), as
one step of a 2-rank ring does. Prints the median milliseconds of 12 exchanges. Both buffers
start cache lines, as the ring's chunks do (a large bytearray's bytes start 16 bytes into one,
where the kernel's receive copy ran at half speed on the project's AMD VMs), and the send buffer
starts 64 bytes into a page: on this one socket both ways, sends from a page-aligned buffer ran at
half speed there too (the ring's two connections did not show it).

    python3 bench/reference/socket_exchange.py 8388608
"""
import mmap
import os
import socket
import sys
import time


def exchange(s: socket.socket, out: memoryview, into: memoryview) -> None:
    sent = got = 0
    n = len(out)
    while sent < n or got < n:
        if sent < n:
            try:
                sent += s.send(out[sent:])
            except BlockingIOError:
                pass
        if got < n:
            try:
                k = s.recv_into(into[got:])
                if k == 0:
                    raise SystemExit('the other process closed its socket')
                got += k
            except BlockingIOError:
                pass


def main() -> None:
    n = int(sys.argv[1])
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    child = os.fork()
    if child == 0:
        os.sched_setaffinity(0, {1 % os.cpu_count()})
        s = socket.create_connection(('127.0.0.1', port))
    else:
        os.sched_setaffinity(0, {0})
        s, _ = listener.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out, into = memoryview(mmap.mmap(-1, n + 64))[64:], memoryview(mmap.mmap(-1, n))
    out[:] = b'\x01' * n
    into[:] = b'\x01' * n
    times = []
    for _ in range(12):
        s.setblocking(True)
        s.sendall(b'x')
        s.recv(1)
        s.setblocking(False)
        t = time.perf_counter()
        exchange(s, out, into)
        times.append((time.perf_counter() - t) * 1000)
    if child != 0:
        os.waitpid(child, 0)
        print(f'{n} bytes each way: median {sorted(times)[len(times) // 2]:.3f} ms')


if __name__ == '__main__':
    main()
