/*
 * Loopback TCP from C, to see where in its pages a buffer should lie: two processes pinned to
 * CPUs 0 and 1, on one connection, each sends N bytes to the other while receiving N, with
 * non-blocking send and recv in one loop, sending from SEND_OFFSET and receiving at OFFSET bytes
 * past the start of a page (default 0), at most CHUNK bytes per call (default: all that is left).
 * Prints the median and the fastest of ROUNDS exchanges (default 20).
 *
 *   gcc -O2 -o /tmp/tcp_offsets bench/reference/tcp_offsets.c
 *   for o in 0 16 32 48; do OFFSET=$o SEND_OFFSET=64 /tmp/tcp_offsets 8388608; done
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static long setting(const char *name, long otherwise) {
  const char *value = getenv(name);
  return value ? atol(value) : otherwise;
}

#include "timing.h"

/* `bytes` bytes `offset` bytes past the start of a fresh mapping (a page), filled with 1s. */
static char *placed(size_t bytes, long offset) {
  char *page = mmap(0, bytes + offset, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) { perror("mmap"); exit(1); }
  memset(page + offset, 1, bytes);
  return page + offset;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], 0, 10) : 0;
  if (n == 0) { fprintf(stderr, "usage: tcp_offsets BYTES\n"); return 2; }
  long offset = setting("OFFSET", 0), send_offset = setting("SEND_OFFSET", 0), chunk = setting("CHUNK", 0);
  int rounds = (int) setting("ROUNDS", 20);
  if (rounds < 1 || rounds > 1000) { fprintf(stderr, "ROUNDS is 1 to 1000\n"); return 2; }

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t length = sizeof address;
  bind(listener, (void *) &address, sizeof address);
  listen(listener, 1);
  getsockname(listener, (void *) &address, &length);
  pid_t child = fork();
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(child == 0 ? 1 : 0, &cpus);
  sched_setaffinity(0, sizeof cpus, &cpus);
  int s = child == 0 ? socket(AF_INET, SOCK_STREAM, 0) : accept(listener, 0, 0);
  if (child == 0 && connect(s, (void *) &address, sizeof address) != 0) { perror("connect"); return 1; }
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  char *out = placed(n, send_offset), *in = placed(n, offset), token;
  double times[1000];
  for (int r = 0; r < rounds; r++) {
    fcntl(s, F_SETFL, 0);
    if (write(s, "x", 1) != 1 || read(s, &token, 1) != 1) return 1;
    fcntl(s, F_SETFL, O_NONBLOCK);
    double start = now_ms();
    size_t sent = 0, got = 0;
    while (sent < n || got < n) {
      if (sent < n) {
        size_t k = chunk > 0 && n - sent > (size_t) chunk ? (size_t) chunk : n - sent;
        ssize_t m = send(s, out + sent, k, 0);
        if (m > 0) sent += (size_t) m;
      }
      if (got < n) {
        size_t k = chunk > 0 && n - got > (size_t) chunk ? (size_t) chunk : n - got;
        ssize_t m = recv(s, in + got, k, 0);
        if (m > 0) got += (size_t) m;
        else if (m == 0) return 1;
      }
    }
    times[r] = now_ms() - start;
  }
  if (child != 0) {
    waitpid(child, 0, 0);
    qsort(times, (size_t) rounds, sizeof(double), by_value);
    printf("%zu bytes each way, sent from %ld, received at %ld bytes into a page: median %.2f ms, fastest %.2f ms\n",
           n, send_offset, offset, times[rounds / 2], times[0]);
  }
  return 0;
}
